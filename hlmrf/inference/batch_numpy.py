"""Many small models solved together by consensus ADMM in numpy, each stopping on its own test.

The algorithm and the per-model rules of :func:`hlmrf.inference.torch_admm.solve_batch` (its own
``rho``, adaptation schedule, residual stopping rule and certified duality gap per model, finished
models compacted out of the working arrays, uncertified stops polished and continued on the CPU),
with the iterates of :func:`hlmrf.inference.admm.solve_admm` (the same floating-point operations in
the same order, so each model takes the iterations it would take alone). The models are stacked
block-diagonally (:class:`~hlmrf.model.batch.ModelBatch`); sums over a term's or a variable's
copies are ``np.bincount`` and sums per model ``np.add.reduceat`` over its consecutive copies,
terms or variables, so there is no Python loop over models or terms. It exists so the CPU path of
a batched caller (the VQA mask pipeline) needs no ``import torch``: nothing here imports torch.
Deliberately not here: GPUs, float32, a working-set size limit (the torch solver's ``max_copies``),
and the per-kind math, which is read from :data:`hlmrf.model.terms.TABLE`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np

from hlmrf.errors import SettingsError
from hlmrf.inference.batch_layout import (batch_layout, batch_results, finish_uncertified, polish_after,
                                          stack_starts)
from hlmrf.inference.result import Result
from hlmrf.inference.settings import AdmmSettings
from hlmrf.model.batch import ModelBatch
from hlmrf.model.hlmrf import HLMRF
from hlmrf.model.terms import Coefficients, prox_at

__all__ = ["solve_batch_numpy"]

SOLVER_NAME = "numpy-batch"


@dataclass
class _Work:
    """The rows, copies and variables of the models still being solved.

    Copies ``(L,)`` are ordered by term, terms ``(m,)`` by model and, within a model, by (kind,
    exponent) as :func:`hlmrf.inference.admm.layout` orders them; variables ``(n,)`` are those
    with a copy (the others never move); models ``(B,)``.
    """

    # copies
    a: np.ndarray
    var: np.ndarray  # working variable
    term: np.ndarray  # working term
    cmodel: np.ndarray  # working model
    u: np.ndarray  # scaled dual
    zv: np.ndarray  # z[var]
    # terms
    c: np.ndarray
    w: np.ndarray
    co: Coefficients  # the kind table's row coefficients (compacted field by field)
    wsoft: np.ndarray  # w on soft rows, 0 on hard ones (energy)
    qcoef: np.ndarray  # 1/(4w) on squared rows with w > 0, else 0 (dual bound)
    tmodel: np.ndarray
    grow: np.ndarray  # the term's row in the stacked model
    # variables
    z: np.ndarray
    deg: np.ndarray  # copies per variable (float)
    inv_deg: np.ndarray
    vmodel: np.ndarray
    gvar: np.ndarray  # index in the stacked model
    # models
    rho: np.ndarray
    gid: np.ndarray  # index in the batch
    sqrtL: np.ndarray
    Lb: np.ndarray  # copies (float)
    nc: np.ndarray  # segment lengths: copies,
    nt: np.ndarray  # terms
    nv: np.ndarray  # and working variables per model
    has_hard: np.ndarray
    next_adapt: np.ndarray
    interval: np.ndarray
    done: np.ndarray
    polish_after: np.ndarray
    nonconvex: np.ndarray

    @property
    def B(self) -> int:
        return len(self.rho)

    def starts(self):
        """First copy, term and variable of each model (for ``reduceat``; no segment is empty)."""
        return tuple(np.r_[0, np.cumsum(n)[:-1]] for n in (self.nc, self.nt, self.nv))


_COPY = ("a", "var", "term", "cmodel", "u", "zv")
_TERM = ("c", "w", "co", "wsoft", "qcoef", "tmodel", "grow")
_VAR = ("z", "deg", "inv_deg", "vmodel", "gvar")
_MODEL = ("rho", "gid", "sqrtL", "Lb", "nc", "nt", "nv", "has_hard", "next_adapt", "interval", "done",
          "polish_after", "nonconvex")
assert set(_COPY + _TERM + _VAR + _MODEL) == {f.name for f in fields(_Work)}


def _build(batch: ModelBatch, z0: np.ndarray, st: AdmmSettings) -> _Work:
    """The stacked model as working arrays (every model, including those with no copies)."""
    lay = batch_layout(batch)
    B = len(batch)
    Lb = lay.copies
    z = z0[lay.keep_var].copy()
    deg = lay.deg.astype(np.float64)
    nt = np.diff(batch.row_ptr).astype(np.int64)
    co, w, row_batch = lay.co, lay.w, lay.row_batch
    return _Work(
        a=lay.a, var=lay.var, term=lay.term, cmodel=row_batch[lay.term], u=np.zeros(len(lay.a)), zv=z[lay.var],
        c=lay.c, w=w, co=co, wsoft=np.where(co.soft, w, 0.0), qcoef=lay.qcoef(),
        tmodel=row_batch, grow=lay.perm,
        z=z, deg=deg, inv_deg=1.0 / np.maximum(deg, 1.0), vmodel=batch.var_batch[lay.keep_var], gvar=lay.keep_var,
        rho=np.full(B, float(st.rho)), gid=np.arange(B), sqrtL=np.sqrt(Lb), Lb=Lb, nc=Lb.astype(np.int64),
        nt=nt, nv=np.bincount(batch.var_batch[lay.keep_var], minlength=B),
        has_hard=np.bincount(row_batch[~co.soft], minlength=B) > 0,
        next_adapt=np.full(B, st.adapt_every, np.int64), interval=np.full(B, st.adapt_every, np.int64),
        done=Lb == 0, polish_after=polish_after(np.diff(batch.var_ptr), nt, Lb),
        nonconvex=np.bincount(row_batch[w < 0], minlength=B) > 0)


def _compact(W: _Work) -> _Work:
    """Drop the models marked done with their terms, copies and variables (order kept, so each
    remaining model's sums run in the same order as before)."""
    keep = ~W.done
    masks = {"copy": keep[W.cmodel], "term": keep[W.tmodel], "var": keep[W.vmodel], "model": keep}
    index = {k: np.flatnonzero(v) for k, v in masks.items()}
    new = {k: np.cumsum(v) - 1 for k, v in masks.items()}
    out = {}
    for names, level in ((_COPY, "copy"), (_TERM, "term"), (_VAR, "var"), (_MODEL, "model")):
        for name in names:
            x = getattr(W, name)
            if name == "co":
                out[name] = Coefficients(**{f.name: getattr(x, f.name)[index[level]] for f in fields(x)})
            else:
                out[name] = x[index[level]]
    out["var"], out["term"] = new["var"][out["var"]], new["term"][out["term"]]
    for name in ("cmodel", "tmodel", "vmodel"):
        out[name] = new["model"][out[name]]
    return _Work(**out)


def _segsum(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(x, starts) if len(x) else np.zeros(len(starts))


def _certificate(W: _Work, theta: np.ndarray, tptr, vptr):
    """Per working model at ``z``: largest hard violation, soft energy, and the Lagrangian bound
    :func:`hlmrf.model.terms.dual_bound` of the dual-feasible ``theta = rho t``, per model."""
    d = np.bincount(W.term, weights=W.a * W.zv, minlength=len(W.c)) - W.c
    co = W.co
    viol = np.maximum.reduceat(np.where(co.leq, np.maximum(d, 0.0), np.where(co.eq, np.abs(d), 0.0)), tptr)
    h = np.maximum(d, co.lb)
    energy = _segsum(W.wsoft * np.where(co.sq, h * h, h), tptr)
    g = np.minimum(np.bincount(W.var, weights=theta[W.term] * W.a, minlength=len(W.z)), 0.0)
    bound = _segsum(g, vptr) - _segsum(theta * W.c + theta * theta * W.qcoef, tptr)
    return viol, energy, bound


class _Records:
    """What is known of each model once it is done (indexed by batch position)."""

    def __init__(self, z0: np.ndarray, B: int, m: int, rho: float):
        self.y = z0.copy()
        self.theta = np.zeros(m)  # multipliers of uncertified stops, stacked row order
        self.it = np.zeros(B, np.int64)
        self.r, self.s, self.bound = np.zeros(B), np.zeros(B), np.zeros(B)
        self.rho = np.full(B, float(rho))
        self.conv = np.zeros(B, bool)

    def record(self, W: _Work, mask, it, r, s, bound, converged: bool, theta=None) -> None:
        if not mask.any():
            return
        gid = W.gid[mask]
        self.it[gid] = it
        self.r[gid], self.s[gid], self.bound[gid] = r[mask], s[mask], bound[mask]
        self.rho[gid] = W.rho[mask]
        self.conv[gid] = converged
        vm = mask[W.vmodel]
        self.y[W.gvar[vm]] = W.z[vm]
        if theta is not None:
            tm = mask[W.tmodel]
            self.theta[W.grow[tm]] = theta[tm]


def _run(batch: ModelBatch, st: AdmmSettings, z0: np.ndarray, compact_share: float) -> list[Result]:
    t0 = time.perf_counter()
    W = _build(batch, z0, st)
    rec = _Records(z0, len(batch), batch.model.m, st.rho)
    rec.conv |= W.done  # models without copies are solved by their start, as in solve_admm
    W = _compact(W) if W.done.any() else W
    alpha = float(st.alpha)
    prox = rho_t = None
    it = 0
    while W.B and it < st.max_iter:
        it += 1
        if prox is None:  # only when rho or the working set changes
            cptr, tptr, vptr = W.starts()
            rho_t = W.rho[W.tmodel]
            prox = prox_at(W.co, W.w, rho_t)
            t = np.empty(len(W.c))
        # solve_admm's iteration, operation for operation, on the stacked arrays.
        v = W.zv - W.u
        d = np.bincount(W.term, weights=W.a * v, minlength=len(W.c)) - W.c
        prox.step(d, out=t)
        x = v - np.take(t, W.term) * W.a
        xh = alpha * x + (1.0 - alpha) * W.zv if alpha != 1.0 else x
        z_old = W.z
        W.z = np.bincount(W.var, weights=xh + W.u, minlength=len(z_old)) * W.inv_deg
        np.clip(W.z, 0.0, 1.0, out=W.z)
        W.zv = W.z[W.var]
        W.u += xh - W.zv
        check = it % st.check_every == 0 or it == st.max_iter
        adapt = st.adaptive_rho and bool((W.next_adapt <= it).any())
        if check or adapt:
            r = np.sqrt(_segsum(np.square(x - W.zv), cptr))
            dz = W.z - z_old
            s = W.rho * np.sqrt(_segsum(W.deg * dz * dz, vptr))
        if check:
            if not (np.isfinite(r).all() and np.isfinite(s).all()):
                from hlmrf.inference.admm import _diverged

                b = int(W.gid[~(np.isfinite(r) & np.isfinite(s))][0])
                raise _diverged(batch.models[b], it)
            xn = np.sqrt(_segsum(x * x, cptr))
            zn = np.sqrt(_segsum(W.zv * W.zv, cptr))
            un = np.sqrt(_segsum(W.u * W.u, cptr))
            eps_pri = W.sqrtL * st.eps_abs + st.eps_rel * np.maximum(xn, zn)
            eps_dual = W.sqrtL * st.eps_abs + st.eps_rel * W.rho * un
            gate = (r < eps_pri) & (s < eps_dual) & ~W.done
            last = it == st.max_iter
            if last or gate.any():
                theta = rho_t * t  # dual feasible (see hlmrf.model.terms.dual_bound)
                viol, energy, bound = _certificate(W, theta, tptr, vptr)
                conv = gate & (~W.has_hard | (viol <= st.constraint_tol))
                conv &= (energy - bound <= st.gap_rel * np.abs(energy) + st.gap_abs) | W.nonconvex
                # Small residuals but no certificate: leave to be polished after the run once the
                # work done pays for a polish (torch_admm's pacing, per model).
                unsure = ~conv & ~W.done & (last | (gate & ~W.nonconvex & (W.polish_after <= it) & st.polish))
                rec.record(W, conv, it, r, s, bound, True)
                rec.record(W, unsure, it, r, s, bound, False, theta if st.polish else None)
                W.done |= conv | unsure
                if W.Lb[W.done].sum() >= compact_share * W.Lb.sum():
                    keep = ~W.done
                    r, s = r[keep], s[keep]
                    W = _compact(W)
                    prox = None
                    if not W.B:
                        break
        if adapt:
            due = W.next_adapt <= it
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where((r > 0) & (s > 0), r / s, 1.0)
            change = due & ((ratio > 10.0) | (ratio < 0.1))
            W.interval = np.where(change, 2 * W.interval, W.interval)
            W.next_adapt = np.where(due, it + W.interval, W.next_adapt)
            if change.any():
                scale = np.where(change, np.clip(np.sqrt(ratio), 0.1, 10.0), 1.0)
                W.rho = W.rho * scale
                W.u /= scale[W.cmodel]
                prox = None
    results = batch_results(batch, rec.y, rec.it, rec.conv, rec.r, rec.s, rec.rho, rec.bound,
                            time.perf_counter() - t0, SOLVER_NAME)
    if st.polish:
        results = finish_uncertified(batch, results, rec.theta, st, t0)
    return results


def solve_batch_numpy(models: Sequence[HLMRF] | ModelBatch, settings: AdmmSettings | None = None,
                      y0: Sequence[np.ndarray | None] | None = None, *,
                      compact_share: float = 0.25) -> list[Result]:
    """Solve many models together, as one block-diagonal batch, by consensus ADMM in numpy.

    Parameters
    ----------
    models : the models, or a :class:`~hlmrf.model.batch.ModelBatch` of them.
    settings : :class:`AdmmSettings` shared by all models; each model still has its own ``rho``
        and stops by its own residuals, constraint check and duality gap.
    y0 : optional warm starts, one per model (``None`` entries start at zeros).
    compact_share : finished models leave the working arrays once they hold this share of their
        local copies (0: at every check that finds one; 1: only when every model is done).

    Returns
    -------
    One :class:`Result` per model, in order, as :func:`hlmrf.inference.torch_admm.solve_batch`
    returns them (``seconds`` is the wall time of the whole batch; ``extra["lower_bound"]`` a
    certified lower bound; ``extra["batch_size"]`` the number of models solved together).
    """
    st = settings or AdmmSettings()
    if not 0.0 <= compact_share <= 1.0:
        raise SettingsError(f"compact_share must lie in [0, 1], got {compact_share}")
    batch = models if isinstance(models, ModelBatch) else ModelBatch.from_models(list(models))
    z0 = stack_starts(batch, y0)
    return _run(batch, st, z0, compact_share)

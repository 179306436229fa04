"""What both batched ADMM solvers share: the flat layout they iterate on and the per-model results.

:func:`batch_layout` orders each model's rows by (kind, exponent) as
:func:`hlmrf.inference.admm.layout` does, so every sum runs over the same terms in the same order
as a solve of the model alone (degenerate linear-hinge models are sensitive to rounding), numbers
the variables that have copies, and reads each row's prox coefficients from
:mod:`hlmrf.model.terms`. The numpy batched solver keeps these arrays; the torch solver moves
them to tensors. :func:`batch_results` and :func:`finish_uncertified` turn the solvers' records
(numpy arrays) into one :class:`Result` per model. Nothing here iterates; no torch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from hlmrf.errors import SettingsError
from hlmrf.inference.polish import WORK_PER_COPY_ITERATION, WORK_PER_ITERATION, WORK_PER_KKT_ROW2, WORK_PER_POLISH
from hlmrf.inference.result import Result, Status
from hlmrf.inference.settings import AdmmSettings
from hlmrf.model.batch import ModelBatch
from hlmrf.model.terms import Coefficients, Kind, coefficients, term_energy, term_violation


@dataclass(frozen=True)
class BatchLayout:
    """Rows (terms), local copies and variables of a stacked batch, model after model.

    Attributes
    ----------
    perm : (m,) the stacked model's row of each term.
    term, var, a : (L,) each copy's term, (renumbered) variable and coefficient.
    aa, c, w, co : per term: ``|a|^2``, constant, weight, prox coefficients.
    row_batch : (m,) each term's model.
    keep_var : the stacked model's variables that have copies, in the new numbering's order.
    deg : (len(keep_var),) copies per kept variable.
    copies : (B,) local copies per model (0 for a model without rows).
    """

    perm: np.ndarray
    term: np.ndarray
    var: np.ndarray
    a: np.ndarray
    aa: np.ndarray
    c: np.ndarray
    w: np.ndarray
    co: Coefficients
    row_batch: np.ndarray
    keep_var: np.ndarray
    deg: np.ndarray
    copies: np.ndarray

    def qcoef(self) -> np.ndarray:
        """``1/(4w)`` where a term is squared with ``w > 0`` (the dual bound's quadratic), else 0."""
        with np.errstate(divide="ignore"):
            return np.where(self.co.sq & (self.w > 0), 1.0 / (4.0 * np.where(self.w > 0, self.w, 1.0)), 0.0)


def batch_layout(batch: ModelBatch) -> BatchLayout:
    mod = batch.model
    perm = np.lexsort((mod.kind.astype(np.int64) * 4 + mod.p.astype(np.int64), batch.row_batch))
    A = mod.A[perm]
    A.sort_indices()
    row_batch = batch.row_batch[perm]
    term = np.repeat(np.arange(mod.m, dtype=np.int64), np.diff(A.indptr))
    var_g = A.indices.astype(np.int64)
    deg_g = np.bincount(var_g, minlength=mod.n)
    keep_var = np.flatnonzero(deg_g > 0)
    new_var = np.full(mod.n, -1, np.int64)
    new_var[keep_var] = np.arange(len(keep_var))
    a = A.data.astype(np.float64)
    aa = np.bincount(term, weights=a * a, minlength=mod.m)
    w = mod.w[perm].astype(np.float64)
    return BatchLayout(perm=perm, term=term, var=new_var[var_g], a=a, aa=aa,
                       c=mod.c[perm].astype(np.float64), w=w,
                       co=coefficients(mod.kind[perm], mod.p[perm], w, aa), row_batch=row_batch,
                       keep_var=keep_var, deg=deg_g[keep_var],
                       copies=np.bincount(row_batch[term], minlength=len(batch)).astype(np.float64))


def polish_after(n: np.ndarray, m: np.ndarray, L: np.ndarray) -> np.ndarray:
    """Iterations after which a model's ADMM work pays for one polish, in the work units of
    :mod:`hlmrf.inference.polish` (its KKT system has at most ``n + m`` rows; ``L`` copies)."""
    cost = WORK_PER_POLISH + WORK_PER_KKT_ROW2 * (n + m).astype(np.float64) ** 2
    return np.ceil(cost / (WORK_PER_ITERATION + WORK_PER_COPY_ITERATION * L)).astype(np.int64)


def stack_starts(batch: ModelBatch, y0) -> np.ndarray:
    """One warm start per model (``None``: zeros), clipped to [0, 1], stacked; checked against the
    models' sizes."""
    ns = np.diff(batch.var_ptr)
    if y0 is None:
        return np.zeros(int(batch.var_ptr[-1]))
    if len(y0) != len(ns):
        raise SettingsError(f"y0 has {len(y0)} warm starts for {len(ns)} models; give one per model")
    starts = [np.zeros(int(n)) if z is None else np.clip(np.asarray(z, np.float64).reshape(-1), 0.0, 1.0)
              for z, n in zip(y0, ns)]
    for b, (n, z) in enumerate(zip(ns, starts)):
        if z.shape != (int(n),):
            raise SettingsError(f"y0[{b}] has {z.shape[0]} values; model {b} has {int(n)} variables")
    return np.concatenate(starts) if starts else np.zeros(0)


def batch_results(batch: ModelBatch, y: np.ndarray, its: np.ndarray, conv: np.ndarray, r: np.ndarray,
                  s: np.ndarray, rho: np.ndarray, bound: np.ndarray, seconds: float,
                  name: str) -> list[Result]:
    """Energies and violations of all models at once on the stacked model, then one Result each
    (a model with a negative soft weight gets no bound: its energy is not convex)."""
    mod = batch.model
    B = len(batch)
    d = mod.distance(y)
    energy = np.bincount(batch.row_batch, weights=term_energy(d, mod.w, mod.p, mod.kind), minlength=B)
    viol = np.zeros(B)
    nonempty = np.flatnonzero(np.diff(batch.row_ptr) > 0)
    if len(nonempty):
        viol[nonempty] = np.maximum.reduceat(term_violation(d, mod.kind), batch.row_ptr[nonempty])
    ys = batch.split(y)
    nonconvex = np.bincount(batch.row_batch[(mod.w < 0) & (mod.kind <= Kind.HINGE)], minlength=B) > 0
    bound = np.where(nonconvex, np.nan, bound)
    return [Result(ys[b], Status.CONVERGED if conv[b] else Status.ITERATION_LIMIT, int(its[b]),
                   float(r[b]), float(s[b]), float(energy[b]), float(viol[b]), seconds, name,
                   rho=float(rho[b]), extra={"lower_bound": float(bound[b]), "batch_size": B},
                   lower_bound=float(bound[b]))
            for b in range(B)]


def finish_uncertified(batch: ModelBatch, results: list[Result], theta: np.ndarray, st: AdmmSettings,
                       t0: float) -> list[Result]:
    """Polish, on the CPU, each model that stopped without a certificate (``theta``: the stacked
    rows' multipliers at its stop); one that still has none and iterations left goes on with
    :func:`~hlmrf.inference.admm.solve_admm` from the polished state."""
    todo = [b for b, r in enumerate(results) if r.status != Status.CONVERGED and r.lower_bound == r.lower_bound]
    if not todo:
        return results
    from hlmrf.inference.admm import solve_admm
    from hlmrf.inference.polish import certificate, improve

    tol = (st.gap_rel, st.gap_abs, st.constraint_tol)
    out = list(results)
    for b in todo:
        r, model = results[b], batch.models[b]
        th = theta[batch.row_ptr[b]:batch.row_ptr[b + 1]]
        log: dict = {}
        y, cert = improve(model, r.y, th, certificate(model, r.y, th), st, log=log)
        extra = dict(r.extra, polished=bool(log.get("used")))
        if not cert.holds(*tol) and r.iterations < st.max_iter:
            more = solve_admm(model, replace(st, max_iter=st.max_iter - r.iterations), y0=y)
            bound = max(cert.lower_bound, more.lower_bound)
            extra.update(lower_bound=bound, continued_on="numpy", polished=extra["polished"] or more.extra["polished"])
            out[b] = replace(more, iterations=r.iterations + more.iterations, solver=r.solver,
                             lower_bound=bound, extra=extra)
            continue
        status = Status.CONVERGED if cert.holds(*tol) else r.status
        extra["lower_bound"] = cert.lower_bound
        out[b] = replace(r, y=y, status=status, energy=cert.energy, violation=cert.violation,
                         lower_bound=cert.lower_bound, extra=extra)
    seconds = time.perf_counter() - t0
    return [replace(r, seconds=seconds) for r in out]

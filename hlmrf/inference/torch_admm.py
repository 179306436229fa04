"""Consensus ADMM in torch, for one model or many solved together, on any torch device.

The same algorithm as :mod:`hlmrf.inference.admm` (local copies ``x``, scaled duals ``u``,
consensus ``z`` clipped to [0, 1], over-relaxation ``alpha``, residual-balancing ``rho``, the
reference engine's residual rule plus the hard-constraint and certified-duality-gap checks),
re-stated on tensors so a batch of models (a :class:`~hlmrf.model.batch.ModelBatch`:
block-diagonal, no padding) runs as one set of flat tensor operations: sums over a term's or a
variable's copies are ``scatter_add_`` over a copy -> term or copy -> variable index, sums per
model are segment reductions over the model's consecutive copies, terms or variables; there is no
Python loop over terms or models. Every model keeps its own ``rho``, adaptation schedule and
stopping rule, so a model solved in a batch takes the same iterates as solved alone. A converged
model is recorded, and once converged models hold a share of the working set they are compacted
out of it so they stop costing work; with ``max_copies`` the next models join as room frees up.
The loop (``_run``) is a short driver over three parts: ``_WorkingSet`` (which models are
iterated: joining, compaction), ``_step`` (one ADMM iteration of the working set) and
``_stopping_rule`` (residual gate, certificate, recording). Deliberately not here: grounding, weight normalisation (use
``model.normalized()``), and any import of torch at ``import hlmrf`` time (this module is imported
on demand and raises an ImportError naming the ``torch`` extra when torch is missing).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from typing import Callable, NamedTuple, Sequence

import numpy as np

from hlmrf.errors import SettingsError, require
from hlmrf.inference.batch_layout import batch_layout, batch_results, finish_uncertified, polish_after, stack_starts
from hlmrf.inference.result import Result
from hlmrf.inference.settings import AdmmSettings
from hlmrf.model.batch import ModelBatch
from hlmrf.model.hlmrf import HLMRF

torch = require("torch", "torch")

__all__ = ["solve_torch", "solve_batch"]

_CPU_CHUNK = 2**18  # local copies per chunk on CPU (see solve_batch's max_copies)
_DTYPES = {"float64": torch.float64, "float32": torch.float32, "double": torch.float64,
           "float": torch.float32}


def _dtype(dtype) -> "torch.dtype":
    if isinstance(dtype, torch.dtype) and dtype in (torch.float32, torch.float64):
        return dtype
    if str(dtype) in _DTYPES:
        return _DTYPES[str(dtype)]
    raise SettingsError(f"dtype {dtype!r} is not supported; use 'float64' or 'float32'")


@dataclass
class _Work:
    """The working set: the rows, copies and variables of the models still being solved.

    Fields are grouped by length: copies ``(L,)``, terms ``(m,)``, variables ``(n,)`` (only
    variables with a copy; the others never move) and models ``(B,)``. Copies are ordered by term
    and terms by model, as in the stacked CSR matrix.
    """

    # copies
    a: "torch.Tensor"  # coefficient
    var: "torch.Tensor"  # working variable
    term: "torch.Tensor"  # working term
    cmodel: "torch.Tensor"  # working model
    u: "torch.Tensor"  # scaled dual
    zv: "torch.Tensor"  # z[var]
    # terms
    c: "torch.Tensor"
    w: "torch.Tensor"
    # the kind table's coefficients (hlmrf.model.terms.coefficients), one value per term:
    num: "torch.Tensor"  # prox numerator
    den: "torch.Tensor"  # prox denominator, less rho where rho_d
    lb: "torch.Tensor"  # h = max(d, lb)
    k3: "torch.Tensor"
    rho_d: "torch.Tensor"  # bool: rho is part of the prox denominator
    cap: "torch.Tensor"  # bool: K1 = w / rho
    sq: "torch.Tensor"  # bool: energy w h^2
    leq: "torch.Tensor"  # bool: violation max(d, 0)
    eq: "torch.Tensor"  # bool: violation |d|
    wsoft: "torch.Tensor"  # w on soft rows, 0 on hard ones (energy)
    qcoef: "torch.Tensor"  # 1/(4w) where p = 2 and w > 0, else 0 (dual bound)
    tmodel: "torch.Tensor"
    grow: "torch.Tensor"  # int64: the term's row in the stacked model (to hand multipliers back)
    # variables
    z: "torch.Tensor"
    deg: "torch.Tensor"  # copies per variable
    inv_deg: "torch.Tensor"
    vmodel: "torch.Tensor"
    gvar: "torch.Tensor"  # index in the stacked model
    # models
    rho: "torch.Tensor"
    gid: "torch.Tensor"  # index in the batch
    sqrtL: "torch.Tensor"  # sqrt(copies)
    Lb: "torch.Tensor"  # copies
    mb: "torch.Tensor"  # rows
    nc: "torch.Tensor"  # int64 segment lengths: copies,
    nt: "torch.Tensor"  # terms
    nv: "torch.Tensor"  # and working variables per model
    has_hard: "torch.Tensor"  # bool
    start: "torch.Tensor"  # int64: the iteration the model joined the working set at
    next_adapt: "torch.Tensor"  # int64: the iteration of the model's next rho rebalancing check
    interval: "torch.Tensor"  # int64: its current interval (doubles after each change)
    done: "torch.Tensor"  # bool: recorded, waiting to be compacted out
    polish_after: "torch.Tensor"  # int64: iterations after which a polish pays (see _stopping_rule)
    nonconvex: "torch.Tensor"  # bool: a negative soft weight; no bound, no gap check, no polish

    @property
    def B(self) -> int:
        return self.rho.shape[0]


_COPY = ("a", "var", "term", "cmodel", "u", "zv")
_TERM = ("c", "w", "num", "den", "lb", "k3", "rho_d", "cap", "sq", "leq", "eq", "wsoft", "qcoef", "tmodel", "grow")
_VAR = ("z", "deg", "inv_deg", "vmodel", "gvar")
_MODEL = ("rho", "gid", "sqrtL", "Lb", "mb", "nc", "nt", "nv", "has_hard", "start", "next_adapt", "interval", "done",
          "polish_after", "nonconvex")
assert set(_COPY + _TERM + _VAR + _MODEL) == {f.name for f in fields(_Work)}


def _build(batch: ModelBatch, z0: np.ndarray, st: AdmmSettings, dev, dt) -> _Work:
    """Lay the stacked model out as working tensors (every model, none done yet), from
    :func:`hlmrf.inference.batch_layout.batch_layout`: rows in the numpy solver's order, so a
    float64 torch solve stays on the numpy solver's iterates."""
    lay = batch_layout(batch)
    co, w, row_batch, Lb = lay.co, lay.w, lay.row_batch, lay.copies
    hard = ~co.soft
    Bn = len(batch)

    def T(x, dtype=dt):
        return torch.as_tensor(np.ascontiguousarray(x)).to(device=dev, dtype=dtype)

    i64, bl = torch.int64, torch.bool
    var = T(lay.var, i64)
    z = T(z0[lay.keep_var])
    deg = T(lay.deg)
    return _Work(
        a=T(lay.a), var=var, term=T(lay.term, i64), cmodel=T(row_batch[lay.term], i64),
        u=torch.zeros(len(lay.a), device=dev, dtype=dt), zv=z[var],
        c=T(lay.c), w=T(w), num=T(co.num), den=T(co.den), lb=T(co.lb), k3=T(co.k3),
        rho_d=T(co.rho_in_den, bl), cap=T(co.cap, bl), sq=T(co.sq, bl), leq=T(co.leq, bl), eq=T(co.eq, bl),
        wsoft=T(np.where(hard, 0.0, w)), qcoef=T(lay.qcoef()),
        tmodel=T(row_batch, i64), grow=T(lay.perm, i64),
        z=z, deg=deg, inv_deg=1.0 / deg, vmodel=T(batch.var_batch[lay.keep_var], i64), gvar=T(lay.keep_var, i64),
        rho=torch.full((Bn,), float(st.rho), device=dev, dtype=dt), gid=torch.arange(Bn, device=dev),
        start=torch.zeros(Bn, device=dev, dtype=i64),
        next_adapt=torch.full((Bn,), st.adapt_every, device=dev, dtype=i64),
        interval=torch.full((Bn,), st.adapt_every, device=dev, dtype=i64),
        sqrtL=T(np.sqrt(Lb)), Lb=T(Lb), mb=T(np.diff(batch.row_ptr)), nc=T(Lb, i64),
        nt=T(np.diff(batch.row_ptr), i64), nv=T(np.bincount(batch.var_batch[lay.keep_var], minlength=Bn), i64),
        has_hard=T(np.bincount(row_batch[hard], minlength=Bn) > 0, bl),
        done=T(Lb == 0, bl), polish_after=T(polish_after(np.diff(batch.var_ptr), np.diff(batch.row_ptr), Lb), i64),
        nonconvex=T(np.bincount(row_batch[w < 0], minlength=Bn) > 0, bl))


def _compact(W: _Work) -> _Work:
    """Drop the models marked done, with their terms, copies and variables.

    Boolean-mask selection keeps the order, so each remaining model's copies keep their relative
    order and its sums are taken in the same order as before (and as when solved alone).
    """
    keep = ~W.done
    masks = {"copy": keep[W.cmodel], "term": keep[W.tmodel], "var": keep[W.vmodel], "model": keep}
    # Selecting by an index vector (one nonzero per level) is much cheaper than boolean-mask
    # indexing of each of the ~35 tensors.
    index = {k: v.nonzero().squeeze(1) for k, v in masks.items()}
    new = {k: torch.cumsum(v.to(torch.int64), 0) - 1 for k, v in masks.items()}
    out = {}
    for names, level in ((_COPY, "copy"), (_TERM, "term"), (_VAR, "var"), (_MODEL, "model")):
        for name in names:
            out[name] = getattr(W, name).index_select(0, index[level])
    out["var"], out["term"] = new["var"][out["var"]], new["term"][out["term"]]
    for name in ("cmodel", "tmodel", "vmodel"):
        out[name] = new["model"][out[name]]
    return _Work(**out)


class _Buffers:
    """Scratch tensors for the loop, grown when the working set outgrows them.

    Writing into them (``out=``) instead of allocating every iteration matters on CPU: tensors of
    tens of MB come back as fresh ``mmap`` pages each time, and the page faults cost about as much
    as the arithmetic. The loop uses prefixes of them.
    """

    def __init__(self):
        self.copies = self.terms = None

    def get(self, L: int, m: int, like):
        if self.copies is None or self.copies.shape[1] < L or self.copies.dtype != like.dtype:
            self.copies = torch.empty((4, max(L, 1)), dtype=like.dtype, device=like.device)
        if self.terms is None or self.terms.shape[1] < m:
            self.terms = torch.empty((2, max(m, 1)), dtype=like.dtype, device=like.device)
        c, t = self.copies, self.terms
        return c[0, :L], c[1, :L], c[2, :L], c[3, :L], t[0, :m], t[1, :m]


def _prox_coefs(W: _Work, rho_t):
    """``(K1, D)`` of the prox step ``t = min(K1, K3 + num * max(d, lb) / D)`` at the current rho:
    :func:`hlmrf.model.terms.prox_bounds` on tensors (the same floating-point operations, so a
    float64 solve follows the numpy solver's iterates). Only these depend on rho, so they are
    recomputed only when rho changes."""
    inf = torch.full((), float("inf"), dtype=W.w.dtype, device=W.w.device)
    return torch.where(W.cap, W.w / rho_t, inf), torch.where(W.rho_d, rho_t + W.den, W.den)


def _segsum(index, src, size, out=None):
    """``out[index[k]] += src[k]`` from zeros: sums over the copies of each term or variable."""
    out = torch.zeros(size, dtype=src.dtype, device=src.device) if out is None else out.zero_()
    return out.scatter_add_(0, index, src)


def _permodel(src, lengths, reduce="sum"):
    """Sums (or maxima) over each model's consecutive copies, terms or variables.

    A segment reduction, not a scatter: scattering hundreds of consecutive values into one bin
    is a serial chain of dependent additions, several times slower on CPU.
    """
    return torch.segment_reduce(src, reduce, lengths=lengths)


def _certificate(W: _Work, theta, theta_a, buf):
    """Per working model at ``z``: the largest hard violation, the soft energy, and the Lagrangian
    lower bound :func:`hlmrf.model.terms.dual_bound` of ``theta = rho t`` (re-stated per model).

    ``theta_a`` is ``theta[term] * a`` per copy; ``W.zv`` must hold ``z[var]``; ``buf`` is scratch
    of the copies' length.
    """
    d = _segsum(W.term, torch.mul(W.a, W.zv, out=buf), W.c.shape[0]).sub_(W.c)
    viol = torch.where(W.leq, d.clamp(min=0.0), torch.where(W.eq, d.abs(), torch.zeros_like(d)))
    viol = _permodel(viol, W.nt, "max")
    h = torch.maximum(d, W.lb)  # the hinge where there is one; hard rows carry no energy (wsoft = 0)
    energy = _permodel(W.wsoft * torch.where(W.sq, h * h, h), W.nt)
    g = _segsum(W.var, theta_a, W.z.shape[0]).clamp_(max=0.0)
    bound = _permodel(g, W.nv) - _permodel(theta * W.c + theta * theta * W.qcoef, W.nt)
    return viol, energy, bound


class _Records:
    """What is known of each model of the batch once it is done (indexed by batch position)."""

    def __init__(self, z0, B, m, rho, dev, dt):
        self.y = torch.as_tensor(z0).to(device=dev, dtype=dt).clone()
        self.theta = torch.zeros(m, dtype=dt, device=dev)  # multipliers of uncertified stops
        self.it = torch.zeros(B, dtype=torch.int64, device=dev)
        self.r, self.s, self.bound = (torch.zeros(B, dtype=dt, device=dev) for _ in range(3))
        self.rho = torch.full((B,), float(rho), dtype=dt, device=dev)
        self.conv = torch.zeros(B, dtype=torch.bool, device=dev)

    def keep_theta(self, W: _Work, mask, theta) -> None:
        """Keep the multipliers of the models in ``mask`` (for polishing them after the run)."""
        tm = mask[W.tmodel]
        self.theta[W.grow[tm]] = theta[tm]

    def record(self, W: _Work, mask, it, r, s, bound, converged: bool) -> None:
        gid = W.gid[mask]
        self.it[gid] = it - W.start[mask]
        self.r[gid], self.s[gid], self.bound[gid] = r[mask], s[mask], bound[mask]
        self.rho[gid] = W.rho[mask]
        self.conv[gid] = converged
        vm = mask[W.vmodel]
        self.y[W.gvar[vm]] = W.z[vm]


def _take(store: _Work, ptr: dict, lo: int, hi: int, it: int) -> _Work:
    """Models ``lo:hi`` of the full layout as a working set joining at iteration ``it``.

    The layout is ordered by model, so their copies, terms and variables are contiguous slices.
    """
    sl = {level: slice(int(ptr[level][lo]), int(ptr[level][hi])) for level in ptr}
    out = {}
    for names, level in ((_COPY, "copy"), (_TERM, "term"), (_VAR, "var"), (_MODEL, "model")):
        for name in names:
            out[name] = getattr(store, name)[sl[level]].clone()
    out["var"] -= sl["var"].start
    out["term"] -= sl["term"].start
    for name in ("cmodel", "tmodel", "vmodel"):
        out[name] -= lo
    out["next_adapt"] += it
    out["start"] += it
    return _Work(**out)


def _concat(W1: _Work, W2: _Work) -> _Work:
    """Two working sets as one (``W2``'s local indices shifted past ``W1``'s)."""
    shift = {"var": W1.z.shape[0], "term": W1.c.shape[0], "cmodel": W1.B, "tmodel": W1.B, "vmodel": W1.B}
    out = {}
    for f in fields(_Work):
        second = getattr(W2, f.name)
        out[f.name] = torch.cat([getattr(W1, f.name), second + shift[f.name] if f.name in shift else second])
    return _Work(**out)


class _WorkingSet:
    """Which models are iterated now: the working set ``W`` (``None`` once none is) and the queue.

    It owns the full layout and decides membership. Models join in batch order while their copies
    fit under ``max_copies`` (at least one model at a time), only at iterations that are multiples
    of both ``check_every`` and ``adapt_every`` (so every model keeps the schedule it would have
    alone) and only once a share of the room is free (each join copies the working set); models
    without rows never enter. Models marked done leave by compaction once they hold
    ``compact_share`` of the working set's copies. It remembers the iterations models joined at,
    so the loop knows when some model reaches ``max_iter``. It does not iterate, check, adapt or
    record anything: it reads only the ``done`` marks and sizes, never ``z``, ``u`` or ``rho``.
    """

    def __init__(self, store: _Work, st: AdmmSettings, max_copies: int | None, compact_share: float):
        self.store, self.compact_share, self.max_iter = store, compact_share, st.max_iter
        self.ptr = {level: np.r_[0, np.cumsum(n.cpu().numpy())] for level, n in
                    (("copy", store.nc), ("term", store.nt), ("var", store.nv))}
        self.ptr["model"] = np.arange(store.B + 1)
        self.empty = store.done.cpu().numpy()
        self.cap = np.inf if max_copies is None else max_copies
        self.join_every = math.lcm(st.check_every, st.adapt_every) if st.adaptive_rho else st.check_every
        self.joined_at: set[int] = set()
        self.nxt = 0  # the first model that has not joined yet
        self.W: _Work | None = None
        while self.W is None and self.nxt < store.B:
            self.W = self._refill(None, 0)

    def reaches_max_iter(self, it: int) -> bool:
        """Whether some model in the working set does its ``max_iter``-th iteration at ``it``."""
        return (it - self.max_iter) in self.joined_at

    def drop_done(self):
        """Compact the done models out if they hold ``compact_share`` of the copies.

        Returns the mask of models kept (to cut per-model values computed before), or ``None``
        when nothing moved.
        """
        W = self.W
        if float(W.Lb[W.done].sum()) < self.compact_share * float(W.Lb.sum()):
            return None
        keep = ~W.done
        self.W = _compact(W) if bool(keep.any()) else None
        return keep

    def join(self, it: int) -> tuple[int, bool]:
        """Let the next models join after iteration ``it`` if this is a joining iteration with room.

        Returns the iteration count (moved on to the next joining iteration when nothing is
        iterating) and whether the working set was rebuilt.
        """
        W = self.W
        if not (self.nxt < self.store.B and (W is None or it % self.join_every == 0)):
            return it, False
        room = self.cap - (0.0 if W is None else float(W.Lb[~W.done].sum()))
        if W is None:  # nothing is iterating: move the clock to the next joining iteration
            it = -(-it // self.join_every) * self.join_every
        if W is None or room >= max(self.compact_share, 0.05) * self.cap:
            W = _compact(W) if W is not None and bool(W.done.any()) else W
            self.W = self._refill(W, it)
            # A chunk of only empty models joins as nothing: take the next one at once, or the
            # loop would end with models that never ran.
            while self.W is None and self.nxt < self.store.B:
                self.W = self._refill(None, it)
            return it, True
        return it, False

    def _refill(self, W: _Work | None, it: int) -> _Work | None:
        """``W`` with the next models that fit appended, joining at iteration ``it``."""
        ptr, nxt = self.ptr, self.nxt
        used = 0 if W is None else float(W.Lb.sum())
        hi = nxt
        while hi < self.store.B and (used + ptr["copy"][hi + 1] - ptr["copy"][nxt] <= self.cap
                                     or (W is None and hi == nxt)):
            hi += 1
        if hi == nxt:
            return W
        new = _take(self.store, ptr, nxt, hi, it)
        self.nxt = hi
        if self.empty[new.gid.cpu().numpy()].any():
            new = _compact(new)
        if new.B == 0:
            return W
        self.joined_at.add(it)
        return new if W is None else _concat(W, new)


class _Prox(NamedTuple):
    """The rho-dependent part of the prox step, per term and copy of the working set."""

    rho_t: "torch.Tensor"  # rho per term
    rho_c: "torch.Tensor"  # rho per copy
    K1: "torch.Tensor"
    D: "torch.Tensor"
    zero: "torch.Tensor | None"  # rows whose D is 0 (no copies: a constant term), None if there are none


def _prox(W: _Work) -> _Prox:
    rho_t = W.rho.index_select(0, W.tmodel)
    rho_c = W.rho.index_select(0, W.cmodel)
    K1, D = _prox_coefs(W, rho_t)
    zero = D == 0
    return _Prox(rho_t, rho_c, K1, D, zero if bool(zero.any()) else None)


class _Iterate(NamedTuple):
    """What one step leaves for the checks: views into the scratch buffers, valid until the next."""

    v: "torch.Tensor"  # free scratch of the copies' length
    x: "torch.Tensor | None"  # the local copies x = v - t a (only when asked for)
    t: "torch.Tensor"  # the prox step per term
    ta: "torch.Tensor"  # t[term] * a per copy
    z_old: "torch.Tensor"  # z before the step


def _step(W: _Work, prox: _Prox, buf: _Buffers, alpha: float, form_x: bool) -> _Iterate:
    """One ADMM iteration of every model in the working set, updating ``W.z``, ``W.zv``, ``W.u``.

    The local (prox) step, the over-relaxed consensus step and the dual step, in as few passes
    over the copies as the arithmetic allows, with the same floating-point operations as the numpy
    solver; ``x`` is formed only when ``form_x`` (the residuals need it). It does not look at
    residuals, stop, adapt rho or change which models are in the working set, and it does not
    know the iteration count: every model steps alike.
    """
    L, m = W.a.shape[0], W.c.shape[0]
    v, tmp, x, xh, d, t = buf.get(L, m, W.a)
    # Local step: v = z_S - u, d = a.v - c, t in closed form; x = v - t a.
    torch.sub(W.zv, W.u, out=v)
    torch.mul(W.a, v, out=tmp)
    _segsum(W.term, tmp, m, out=d).sub_(W.c)
    torch.maximum(d, W.lb, out=d)
    torch.mul(W.num, d, out=t).div_(prox.D)
    if prox.zero is not None:  # 0 / 0 is 0 there, as in terms.ProxAt.step (d is finite: a constant)
        t.masked_fill_(prox.zero & torch.isnan(t), 0.0)
    t.add_(W.k3)
    torch.minimum(t, prox.K1, out=t)
    ta = torch.index_select(t, 0, W.term, out=tmp).mul_(W.a)
    if form_x:
        torch.sub(v, ta, out=x)
    # Consensus on q = xh + u, where xh = alpha x + (1 - alpha) z_S is the over-relaxed copy:
    # q = z_S + (1 - alpha) u - alpha t a; z = clip(mean of q over each variable's copies);
    # the dual step u += xh - z_S(new) is u = q - z_S(new). Same iterates as the numpy
    # solver's, in fewer passes over the copies.
    q = torch.add(W.zv, W.u, alpha=1.0 - alpha, out=xh).sub_(ta, alpha=alpha)
    z_old = W.z
    W.z = _segsum(W.var, q, z_old.shape[0]).mul_(W.inv_deg).clamp_(0.0, 1.0)
    torch.index_select(W.z, 0, W.var, out=W.zv)
    torch.sub(q, W.zv, out=W.u)
    return _Iterate(v, x if form_x else None, t, ta, z_old)


def _residuals(W: _Work, step: _Iterate):
    """Per working model, the primal ``|x - z_S|`` and dual ``rho |z_S - z_S(old)|`` residuals."""
    r = _permodel(torch.sub(step.x, W.zv, out=step.v).square_(), W.nc).sqrt_()
    s = W.rho * _permodel(W.deg * (W.z - step.z_old).square_(), W.nv).sqrt_()
    return r, s


def _stopping_rule(W: _Work, st: AdmmSettings, it: int, final: bool, step: _Iterate, prox: _Prox, r, s,
                   rec: _Records, batch: ModelBatch, callback) -> bool:
    """The check after iteration ``it``: which models stop, recorded in ``rec`` and marked done.

    A model is due at each ``check_every``-th iteration and at its last; a due model whose
    residuals pass the reference engine's rule is certified at ``z`` (hard constraints within
    ``constraint_tol``, duality gap within ``gap_rel |E| + gap_abs``) and stops converged if the
    certificate holds. A model at its last iteration, or (with ``polish``) one whose certificate
    fails after it has done enough work to pay for a polish, stops unconverged, its multipliers
    kept for :func:`~hlmrf.inference.batch_layout.finish_uncertified`. Non-finite residuals raise the divergence error; the
    ``callback`` sees the first working model's residuals. Returns whether some model stopped.
    It does not compact the working set, adapt rho or step; it overwrites ``step.v`` and
    ``step.ta``.
    """
    v, x = step.v, step.x
    xn = _permodel(torch.mul(x, x, out=v), W.nc).sqrt_()
    zn = _permodel(W.deg * W.z.square(), W.nv).sqrt_()  # |z_S| over the copies
    un = _permodel(torch.mul(W.u, W.u, out=v), W.nc).sqrt_()
    eps_pri = W.sqrtL * st.eps_abs + st.eps_rel * torch.maximum(xn, zn)
    eps_dual = W.sqrtL * st.eps_abs + st.eps_rel * W.rho * un
    if not bool(torch.isfinite(r).all() and torch.isfinite(s).all()):
        from hlmrf.inference.admm import _diverged

        b = int(W.gid[~(torch.isfinite(r) & torch.isfinite(s))][0])
        raise _diverged(batch.models[b], it - int(W.start[W.gid == b][0]))
    if callback is not None:
        callback(it, float(r[0]), float(s[0]))
    last = (it - W.start == st.max_iter) & ~W.done
    due = last | (it % st.check_every == 0)
    gate = (r < eps_pri) & (s < eps_dual) & ~W.done & due
    if not (final or bool(gate.any())):
        return False
    # theta = rho t of this iteration's prox step is dual feasible (see dual_bound).
    theta = prox.rho_t * step.t
    viol, energy, bound = _certificate(W, theta, step.ta.mul_(prox.rho_c), v)
    conv = gate & (~W.has_hard | (viol <= st.constraint_tol))
    conv &= (energy - bound <= st.gap_rel * energy.abs() + st.gap_abs) | W.nonconvex
    # A model whose residuals are small but whose certificate fails leaves the batch to be
    # polished on the CPU after the run (hlmrf.inference.polish), once the work it has done pays
    # for a polish (the numpy solver's pacing, per model).
    retire = gate & ~conv & ~W.nonconvex & (W.polish_after <= it - W.start) if st.polish else None
    unsure = last & ~conv if retire is None else (last | retire) & ~conv
    stop = conv | unsure
    if not bool(stop.any()):
        return False
    rec.record(W, conv, it, r, s, bound, True)
    rec.record(W, unsure, it, r, s, bound, False)
    if st.polish and bool(unsure.any()):
        rec.keep_theta(W, unsure, theta)
    W.done |= stop
    return True


def _adapt(W: _Work, it: int, r, s) -> bool:
    """Residual balancing of rho for the models due after iteration ``it``; whether rho changed.

    Each model rebalances on its own schedule (``adapt_every``, doubled after each change, as in
    the numpy solver): rho is scaled by ``sqrt(r / s)`` (clipped to [0.1, 10]) when ``r`` and
    ``s`` are more than 10x apart, and the scaled duals ``u`` with it. It does not recompute the
    prox coefficients (the caller does when this returns True).
    """
    due = W.next_adapt <= it
    ratio = torch.where((r > 0) & (s > 0), r / s, torch.ones_like(r))
    change = due & ((ratio > 10.0) | (ratio < 0.1))
    W.interval = torch.where(change, 2 * W.interval, W.interval)
    W.next_adapt = torch.where(due, it + W.interval, W.next_adapt)
    if not bool(change.any()):
        return False
    scale = torch.where(change, ratio.sqrt().clamp(0.1, 10.0), torch.ones_like(ratio))
    W.rho = W.rho * scale
    W.u /= scale.index_select(0, W.cmodel)
    return True


def _run(batch: ModelBatch, st: AdmmSettings, z0: np.ndarray, device, dtype,
         callback: Callable | None, compact_share: float, max_copies: int | None) -> list[Result]:
    """The driver: step the working set, check and adapt on schedule, let models leave and join."""
    t0 = time.perf_counter()
    dev, dt = torch.device(device), _dtype(dtype)
    store = _build(batch, z0, st, dev, dt)
    rec = _Records(z0, len(batch), batch.model.m, st.rho, dev, dt)
    rec.conv |= store.done  # models without rows are solved by their start, as in the numpy solver
    ws = _WorkingSet(store, st, max_copies, compact_share)
    buf = _Buffers()
    prox = r = s = None  # prox: recomputed only when rho or the working set changes
    it = 0
    while ws.W is not None:
        it += 1
        W = ws.W
        if prox is None:
            prox = _prox(W)
        final = ws.reaches_max_iter(it)
        check = it % st.check_every == 0 or final
        # Every model's adaptation iterations are multiples of adapt_every.
        adapt = st.adaptive_rho and it % st.adapt_every == 0 and bool((W.next_adapt <= it).any())
        step = _step(W, prox, buf, float(st.alpha), form_x=check or adapt)
        if check or adapt:
            r, s = _residuals(W, step)
        if check and _stopping_rule(W, st, it, final, step, prox, r, s, rec, batch, callback):
            keep = ws.drop_done()
            if keep is not None:
                r, s, prox = r[keep], s[keep], None
        if adapt and ws.W is not None and _adapt(ws.W, it, r, s):
            prox = None
        it, joined = ws.join(it)
        if joined:
            prox = None
    name = f"torch/{dev.type}/{str(dt).replace('torch.', '')}"
    y = rec.y.to("cpu", torch.float64).numpy()
    its, conv = rec.it.cpu().numpy(), rec.conv.cpu().numpy()
    r, s, rho, bound = (v.cpu().double().numpy() for v in (rec.r, rec.s, rec.rho, rec.bound))
    results = batch_results(batch, y, its, conv, r, s, rho, bound, time.perf_counter() - t0, name)
    if st.polish:
        results = finish_uncertified(batch, results, rec.theta.to("cpu", torch.float64).numpy(), st, t0)
    return results


def solve_batch(models: Sequence[HLMRF] | ModelBatch, settings: AdmmSettings | None = None,
                device="cpu", dtype="float64", y0: Sequence[np.ndarray | None] | None = None,
                *, compact_share: float = 0.25, max_copies: int | str | None = "auto") -> list[Result]:
    """Solve many models together, as one block-diagonal batch, by consensus ADMM in torch.

    Parameters
    ----------
    models : the models, or a :class:`~hlmrf.model.batch.ModelBatch` of them.
    settings : :class:`AdmmSettings` shared by all models; each model still has its own ``rho``
        and stops by its own residuals, constraint check and duality gap.
    device : any torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
    dtype : ``"float64"`` or ``"float32"``.
    y0 : optional warm starts, one per model (``None`` entries start at zeros).
    compact_share : converged models leave the working set once they hold this share of its
        local copies (0: at every check that finds one; 1: only when every model is done).
    max_copies : keep at most this many local copies in the working set (at least one model):
        models join as others converge and leave; ``None`` starts the whole batch at once;
        ``"auto"`` is ``2**18`` on CPU, where the working tensors then stay in cache, and ``None``
        on other devices. The results do not depend on it: models never interact.

    Returns
    -------
    One :class:`Result` per model, in order; ``seconds`` is the wall time of the whole batch,
    ``extra["lower_bound"]`` a certified lower bound on its optimum energy and
    ``extra["batch_size"]`` the number of models solved together.
    """
    st = settings or AdmmSettings()
    if not 0.0 <= compact_share <= 1.0:
        raise SettingsError(f"compact_share must lie in [0, 1], got {compact_share}")
    if max_copies == "auto":
        max_copies = _CPU_CHUNK if torch.device(device).type == "cpu" else None
    if max_copies is not None and (not isinstance(max_copies, (int, np.integer)) or max_copies < 1):
        raise SettingsError(f"max_copies must be an int >= 1, None or 'auto', got {max_copies!r}")
    _dtype(dtype)
    # Sizes come from the batch's pointers, so a lazily cut batch (ModelBatch.from_blocks) never
    # has to build its per-model HLMRFs.
    batch = models if isinstance(models, ModelBatch) else ModelBatch.from_models(list(models))
    z0 = stack_starts(batch, y0)
    return _run(batch, st, z0, device, dtype, None, compact_share, max_copies)


def solve_torch(model: HLMRF, settings: AdmmSettings | None = None, y0: np.ndarray | None = None,
                device="cpu", dtype="float64",
                callback: Callable[[int, float, float], None] | None = None) -> Result:
    """Find the MAP state of one model by consensus ADMM in torch.

    The iterates of :func:`hlmrf.inference.admm.solve_admm` (up to floating-point rounding), on
    any torch device and in float64 or float32; ``y0`` warm-starts the values and
    ``callback(iteration, primal_residual, dual_residual)`` is called at every stopping-rule check.
    """
    st = settings or AdmmSettings()
    z0 = np.zeros(model.n) if y0 is None else np.clip(np.asarray(y0, np.float64).reshape(-1), 0.0, 1.0)
    if z0.shape != (model.n,):
        raise SettingsError(f"y0 has {z0.shape[0]} values; the model has {model.n} variables")
    return _run(ModelBatch.from_models([model]), st, z0, device, dtype, callback, 1.0, None)[0]

"""MAP inference by consensus ADMM (Bach et al., JMLR 2017), vectorised over potentials in numpy.

Each potential keeps local copies ``x`` of its variables and a scaled multiplier ``u``; an
iteration updates every term in closed form (:meth:`hlmrf.model.terms.ProxAt.step`, on per-row
coefficients read from :data:`hlmrf.model.terms.TABLE`), averages the copies into the consensus ``z``
(clipped to [0, 1]) and updates ``u``. It stops on the reference engine's primal/dual residual
rule. On top of the reference algorithm: over-relaxation (``alpha``), residual-balancing
adaptation of ``rho``, and a certified duality gap (:func:`hlmrf.model.terms.dual_bound`) that must
also be small before stopping: the reference's rule alone stops linear-hinge models up to ~0.5%
above their optimum. Deterministic start (``z = 0`` unless warm-started). No torch here (see
:mod:`hlmrf.inference.torch_admm`).

The loop is also the distributed solver's (:mod:`hlmrf.distributed`): a kernel can own a
contiguous range of the rows and combine, through a communicator's all-reduce, exactly what the
iteration sums over rows (the consensus numerators, the copy counts once, the residual norms and
the certificate's sums); see :class:`OneWorker` for the interface. Everything else (stopping rule,
rho adaptation, certificate, polish pacing) is this one loop, run alike on every worker.
"""
from __future__ import annotations

import math
import time
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from hlmrf.errors import SettingsError, SolverError
from hlmrf.inference.duals import DualState, RowDuals
from hlmrf.inference.result import Result, Status
from hlmrf.inference.settings import AdmmSettings
from hlmrf.model.hlmrf import HLMRF, column_counts, select_rows
from hlmrf.inference.polish import WORK_PER_COPY_ITERATION, WORK_PER_ITERATION, Certificate, improve
from hlmrf.infra.memory import release_free_memory
from hlmrf.model.terms import (TABLE, Coefficients, Kind, clip_dual, coefficients,
                                dual_bound, dual_domain, prox_at_groups)


class OneWorker:
    """The communicator of a single-process solve: this worker owns every row, and a reduction
    across workers is the identity.

    A distributed communicator (:class:`hlmrf.distributed.comm.TorchComm`) has the same four
    members: ``size``, ``partition(model)`` (the contiguous slice of rows this worker owns; the
    same model on every worker), and ``sum(x)``/``max(x)``, which return the elementwise sum or
    maximum of the float64 array ``x`` over all workers (``x`` may be overwritten). Every worker
    calls them in the same order with arrays of the same shape.
    """

    size = 1

    def partition(self, model: HLMRF) -> slice:
        return slice(0, model.m)

    def sum(self, x: np.ndarray) -> np.ndarray:
        return x

    def max(self, x: np.ndarray) -> np.ndarray:
        return x


ONE_WORKER = OneWorker()

COMMUNICATOR: ContextVar = ContextVar("hlmrf_admm_communicator", default=None)
"""The communicator :func:`solve_admm` uses when its ``comm`` argument is None (then, if unset,
:data:`ONE_WORKER`). :func:`hlmrf.distributed.comm.session` sets it, so that callers which reach the
solver through :func:`hlmrf.infer` (the CLI) run distributed without a new argument on every
layer in between."""


def local_rows(model: HLMRF, comm) -> tuple[HLMRF, slice, int]:
    """The rows of ``model`` that ``comm``'s worker owns, as a model of their own (all ``n``
    columns), their slice of the whole model's rows, and the whole model's row count; the model
    itself when it owns them all.

    A worker's share (``model.share``, from ``ground(..., share=(k, N))``) is all this worker's
    rows already: its slice follows the shares of workers ``0..k-1`` (one reduction of ``N``
    floats)."""
    if model.share is not None:
        k, N = model.share
        if N != comm.size or k != getattr(comm, "rank", 0):
            raise SettingsError(f"the model is worker {k}'s share of {N}, but this is worker "
                                f"{getattr(comm, 'rank', 0)} of {comm.size}: ground with "
                                "share=(rank, world size) of the session that solves it")
        if N == 1:
            return model, slice(0, model.m), model.m
        counts = np.zeros(N)
        counts[k] = model.m
        counts = comm.sum(counts)
        start = int(counts[:k].sum())
        return model, slice(start, start + model.m), int(counts.sum())
    rows = comm.partition(model)
    if rows.start == 0 and rows.stop == model.m:
        return model, rows, model.m
    A = model.A[rows]
    if model.A.has_sorted_indices:
        A.has_sorted_indices = True
    return replace(model, A=A, c=model.c[rows], w=model.w[rows], p=model.p[rows],
                   kind=model.kind[rows], rule=model.rule[rows]), rows, model.m


def split(model: HLMRF, comm) -> bool:
    """Whether ``model`` is one worker's share of a model split across ``comm``'s workers (then
    no worker holds the whole model)."""
    return model.share is not None and model.share[1] > 1 and comm.size > 1


def gather_hard_rows(model: HLMRF, comm) -> HLMRF:
    """Every worker's hard rows, as one model on every worker, in rank order (the projection onto
    the hard constraints, and the check that they can all hold, need them all and nothing else):
    one reduction of the row and copy counts, then one of the rows' (count, c, kind, rule) and
    one of their (column, coefficient)
    entries, each worker's in its own range of a zero-filled array, so the sums are exact."""
    import scipy.sparse as sp

    hard = np.flatnonzero(model.kind >= Kind.LEQ)
    H = select_rows(model.A, hard)
    N, k = comm.size, comm.rank
    sizes = np.zeros((2, N))
    sizes[:, k] = len(hard), H.nnz
    sizes = comm.sum(sizes.ravel()).reshape(2, N)
    r0, e0 = int(sizes[0, :k].sum()), int(sizes[1, :k].sum())
    R, E = int(sizes[0].sum()), int(sizes[1].sum())
    rows = np.zeros((4, R))
    rows[:, r0:r0 + len(hard)] = np.diff(H.indptr), model.c[hard], model.kind[hard], model.rule[hard]
    rows = comm.sum(rows.ravel()).reshape(4, R)
    entries = np.zeros((2, E))
    entries[:, e0:e0 + H.nnz] = H.indices, H.data
    entries = comm.sum(entries.ravel()).reshape(2, E)
    indptr = np.r_[0, np.cumsum(rows[0])].astype(np.int64)
    A = sp.csr_matrix((entries[1], entries[0].astype(np.int64), indptr), shape=(R, model.n))
    return HLMRF(A, rows[1], np.zeros(R), np.ones(R, np.int8), rows[2].astype(np.int8),
                 rows[3].astype(np.int32), index=model.index)


def whole_sum(model: HLMRF, comm, x: np.ndarray) -> np.ndarray:
    """``x`` (a per-model float array, e.g. one number per rule) summed over the workers' shares
    when ``model`` is a share, else ``x`` itself."""
    return comm.sum(np.asarray(x, dtype=np.float64).copy()) if split(model, comm) else x


def global_counts(comm, deg: np.ndarray, L: int, hard: bool, negative: bool):
    """Copies per variable, local copies in all, and whether any worker has hard rows or negative
    weights: summed over the workers in one reduction (once per solve)."""
    tot = comm.sum(np.r_[np.asarray(deg, dtype=np.float64), float(L), float(hard), float(negative)])
    return tot[:-3].astype(np.int64), int(tot[-3]), bool(tot[-2] > 0), bool(tot[-1] > 0)


def gather_rows(comm, rows: slice, t: np.ndarray, m: int) -> np.ndarray:
    """The whole model's per-row array from each worker's slice ``rows`` of it (one all-reduce of
    ``m`` floats; only polishing needs it)."""
    if comm.size == 1:
        return t
    full = np.zeros(m)
    full[rows] = t
    return comm.sum(full)


@dataclass
class _Layout:
    """What the numpy iteration needs beyond the model: the matrix ``P`` of each row's coefficients
    on its own local copies (A's arrays, plus one index per copy) and per-row coefficients.

    Rows keep the model's order (so duals, multipliers and warm-start state are in the model's
    row and copy order for every kernel); ``groups`` lists each (kind, exponent) with its rows.
    """

    A: object  # the model's CSR matrix (sorted indices)
    a: np.ndarray  # (L,) coefficient of each local copy
    var: np.ndarray  # (L,) variable of each local copy (the CSR column indices, not a copy)
    c: np.ndarray
    w: np.ndarray
    deg: np.ndarray  # (n,) copies per variable
    groups: list  # (kind, p, rows): rows a slice when contiguous, else an index array
    P: object  # (m, L) CSR: row i holds the coefficients of its own copies (see _NumpyKernel)
    aa: np.ndarray  # (m,) |a|^2 per row
    co: Coefficients  # each row's ``sq`` entry of the kind table (the other fields None)


def _sorted_csr(model: HLMRF):
    A = model.A
    if not A.has_sorted_indices:
        A = A.copy()
        A.sort_indices()
    return A


def layout(model: HLMRF) -> _Layout:
    A = _sorted_csr(model)
    key = model.kind.astype(np.int64) * 4 + model.p.astype(np.int64)
    counts = np.diff(A.indptr)
    a = A.data.astype(np.float64, copy=False)
    groups = []
    for k in np.flatnonzero(np.bincount(key)):  # the kinds present (np.unique would sort m keys)
        rows = np.flatnonzero(key == k)
        if rows[-1] - rows[0] + 1 == len(rows):
            rows = slice(int(rows[0]), int(rows[-1]) + 1)
        first = rows.start if isinstance(rows, slice) else rows[0]
        groups.append((int(model.kind[first]), int(model.p[first]), rows))
    w = model.w.astype(np.float64, copy=False)
    # Index arrays in the CSR matrix's own integer type (int32 below 2^31 copies): scipy's sparse
    # products read either, and a model-sized int64 copy would be 8 bytes a copy more. P shares
    # A's coefficients and row pointers; its column k is local copy k (4 bytes a copy).
    P = _csr(a, np.arange(len(a), dtype=A.indices.dtype), A.indptr, (len(counts), len(a)))
    # |a|^2 per row as a product, not np.add.reduceat: reduceat gives a row without copies (a
    # constant term) the next row's first entry, or fails when that row is the last.
    aa = P @ a
    # Of the table's per-row entries only ``sq`` is held (the dual bound's); the prox step's are
    # made group by group when rho changes (terms.prox_at_groups), not held at 35 bytes a row.
    return _Layout(A, a, A.indices, model.c.astype(np.float64, copy=False), w,
                   column_counts(A, model.n), groups, P, aa, coefficients(model.kind, model.p, w, aa, ("sq",)))


def _csr(data, indices, indptr, shape, fmt: str = "csr"):
    """A CSR matrix (CSC with ``fmt="csc"``: the transpose of the CSR one on the same arrays) on
    these arrays themselves, which must share one integer type.

    Not through scipy's ``(data, indices, indptr)`` constructor: its format check copies an array
    that is a view of one more than twice its size (``scipy._lib._util._prune_array``), which
    every row range of a model is (75 MiB of copies for the eight ranges at acquaintances N=300).
    """
    import scipy.sparse as sp

    M = (sp.csr_matrix if fmt == "csr" else sp.csc_matrix)(shape)  # empty: a pointer array of zeros
    M.data, M.indices, M.indptr = data, indices, indptr
    M.has_sorted_indices = True  # each row's columns are increasing: copies, or A's own sorted ones
    return M


COPIES_PER_PART = 250_000
"""The numpy kernel cuts a model into ``L // COPIES_PER_PART`` row ranges (at most
:data:`MAX_PARTS`; one below 500,000 local copies): at that size a part's sparse product takes
about 0.2 ms, several times what handing it to a thread costs. Two threads take an iteration
from 4.3 to 2.8 ms at acquaintances N=150 and from 33.2 to 17.8 ms at N=300
(benchmarks/bench_admm_kernel.py, 2026-11-30 10:47 and 11:09)."""
MAX_PARTS = 8


def _row_parts(indptr: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous row ranges ``(r0, r1)`` with about equal numbers of copies; how many depends on
    the model's size only (so a solve's iterates do not depend on the machine's cores)."""
    m, L = len(indptr) - 1, int(indptr[-1])
    k = max(1, min(MAX_PARTS, L // COPIES_PER_PART, m))
    cuts = np.searchsorted(indptr, np.arange(1, k) * (L / k)) if k > 1 else np.zeros(0, int)
    bounds = np.unique(np.r_[0, np.clip(cuts, 0, m), m].astype(np.int64))
    if len(bounds) < 2:  # no rows (a worker's empty share): one empty part
        return [(0, m)]
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


class _Part:
    """Rows ``r0:r1`` of a :class:`_Layout`, as views: their slices of the per-row arrays, and CSR
    matrices on their own copies (``copies``): ``A``, ``AT`` (its transpose) and ``PT`` (a per-row
    array of the part -> its value times ``a``, one per copy of the part). ``prox`` is the part's
    :class:`~hlmrf.model.terms.ProxAt` at the current rho."""

    def __init__(self, lay: _Layout, r0: int, r1: int, k: int):
        A = lay.A
        c0, c1 = int(A.indptr[r0]), int(A.indptr[r1])
        self.k, self.rows, self.copies = k, slice(r0, r1), slice(c0, c1)
        indptr = A.indptr[r0:r1 + 1]
        if c0:
            indptr = indptr - A.indptr.dtype.type(c0)
        data, indices, shape = A.data[c0:c1], A.indices[c0:c1], (r1 - r0, A.shape[1])
        self.A = _csr(data, indices, indptr, shape)
        self.AT = _csr(data, indices, indptr, shape[::-1], "csc")
        # P's column k is copy k: the part's columns are its own copies (the first part shares
        # P's index array).
        cols = lay.P.indices[c0:c1] if c0 == 0 else np.arange(c1 - c0, dtype=A.indices.dtype)
        self.PT = _csr(lay.a[c0:c1], cols, indptr, (c1 - c0, r1 - r0), "csc")
        self.var = lay.var[c0:c1]
        self.aa, self.c = lay.aa[r0:r1], lay.c[r0:r1]
        self.prox = None


_POOL: tuple = (None, 0, -1)  # (executor, its threads, the process that made it)


def _pool(workers: int):
    """The process's thread pool for the numpy kernel's parts: made on first use, made anew when
    a solve asks for more threads, and in a forked child (whose copy of the pool has no threads)."""
    global _POOL
    import os

    pool, size, pid = _POOL
    if pool is None or size < workers or pid != os.getpid():
        from concurrent.futures import ThreadPoolExecutor

        if pool is not None and pid == os.getpid():
            pool.shutdown(wait=False)  # a smaller one of this process: its idle threads end
        _POOL = pool, size, pid = ThreadPoolExecutor(workers, thread_name_prefix="hlmrf-admm"), workers, os.getpid()
    return pool


class _NumpyKernel:
    """The reference iteration body: numpy and scipy.sparse passes over :func:`layout`'s arrays.

    Same interface as :class:`hlmrf.inference.fused.FusedKernel`: the kernel owns the duals
    (``duals``, a :class:`~hlmrf.inference.duals.RowDuals`); :meth:`step` updates them and ``t``
    in place and returns the new ``z`` and (when ``complete``) the squared norms the stopping rule
    needs; :meth:`certificate` returns ``(energy, violation, lower_bound)``.

    The iteration is the usual one (``v = z[var] - u``, ``x = v - t a`` with ``t`` from the prox
    at ``d = a.v - c``, ``xh = alpha x + (1 - alpha) z[var]``, ``z' = clip(mean(xh + u))``,
    ``u' = u + xh - z'[var]``), on the duals ``u = a tau[row] + eps[var] + beta h0`` of
    :mod:`hlmrf.inference.duals`:

    * ``d = A (z - eps) - |a|^2 tau - beta P h0 - c``;
    * ``tau' = (1 - alpha) tau - alpha t``, ``beta' = (1 - alpha) beta``;
    * ``z' = clip(z + (A^T tau' + (1 - alpha) deg eps + beta' sum h0) / deg)``;
    * ``eps' = (1 - alpha) eps + (z - z')``.

    So a step is one product with ``A`` and one with ``A^T`` (scipy's sparse kernels, on the
    model's own int32 indices) and a few passes over rows and variables; only the completing
    steps form per-copy arrays (``x`` and ``u'``, for the residual norms).

    The rows are cut into :func:`_row_parts` contiguous parts (by the model's size alone), each
    with its own views of the row arrays and CSR matrices on its own copies. Every pass over rows
    or copies runs part by part, the parts on up to ``threads`` threads (numpy's and scipy's
    loops release the GIL), and their contributions to the per-variable numerators and to the
    norms are added in part order: the iterates do not depend on the thread count.

    The gathers ``z[var]`` use ``np.take(..., mode="clip")``: the indices are the CSR matrix's
    own (in range), and numpy's default ``mode="raise"`` on int32 indices converts them to int64 and,
    with ``out``, buffers the result: 1.7 ms instead of 0.6 per gather of 558k copies.
    """

    def __init__(self, model: HLMRF, alpha: float, comm=None, threads: int = 1):
        self.comm = comm = comm or ONE_WORKER
        model, self.rows, self.m_all = local_rows(model, comm)
        lay = self.lay = layout(model)
        self.L, self.m, self.n = len(lay.a), model.m, model.n
        self.alpha = float(alpha)
        self.hard_here = any(k >= Kind.LEQ for k, _, _ in lay.groups)
        if comm.size > 1:
            lay.deg, self.L_all, self.hard, negative = global_counts(
                comm, lay.deg, self.L, self.hard_here, bool((lay.w < 0).any()))
            self.convex = not negative
        else:
            self.L_all, self.hard, self.convex = self.L, self.hard_here, not bool((lay.w < 0).any())
        self.has_copy = lay.deg > 0
        self.inv_deg = np.where(self.has_copy, 1.0 / np.maximum(lay.deg, 1), 0.0)
        self.parts = [_Part(lay, r0, r1, k) for k, (r0, r1) in enumerate(_row_parts(lay.A.indptr))]
        self.threads = max(1, min(int(threads), len(self.parts)))
        cuts = np.linspace(0, len(self.parts), self.threads + 1).round().astype(int)
        self.groups = [self.parts[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
        self.duals = RowDuals(lay.A, self.n)
        self._rho = None

    def _each(self, fn, *args) -> list:
        """``fn(part, *args)`` for every part, in part order; on ``threads`` threads, each taking
        a contiguous group of the parts (this thread the first)."""
        if self.threads == 1:
            return [fn(p, *args) for p in self.parts]

        def run(group):
            return [fn(p, *args) for p in group]

        first, *others = self.groups
        rest = [_pool(self.threads - 1).submit(run, g) for g in others]
        out = run(first)
        for f in rest:
            out += f.result()
        return out

    def step(self, z, t, rho: float, complete: bool):
        lay, alpha, du = self.lay, self.alpha, self.duals
        oma = 1.0 - alpha
        if self._rho != rho:
            prox = prox_at_groups(lay.groups, lay.w, lay.aa, rho)
            for p in self.parts:
                p.prox = prox.rows(p.rows.start, p.rows.stop)
            self._rho = rho
        ze = z - du.eps  # z[var] - u = (z - eps)[var] - a tau[row] - beta h0
        beta = du.beta
        out = self._each(self._rows_pass, ze, t, complete, alpha, oma, beta)
        du.beta *= oma
        num = out[0][0]
        for part_num, _ in out[1:]:
            num += part_num
        if du.beta != 0.0:
            num += du.beta * du.s0
        num = self.comm.sum(num)
        if oma != 0.0:  # eps is the same on every worker: added after the reduction
            num += oma * lay.deg * du.eps
        z_new = np.multiply(num, self.inv_deg, out=num)
        z_new += z
        np.clip(z_new, 0.0, 1.0, out=z_new)
        z_new = np.where(self.has_copy, z_new, z)
        dz = z - z_new  # z is the same on every worker: its norms need no reduction
        du.eps *= oma
        du.eps += dz
        if not complete:
            return z_new, None
        sums = np.sum(self._each(self._norms_pass, [x for _, x in out], z_new, du.beta), axis=0)
        r2, x2, u2 = self.comm.sum(sums)
        deg = lay.deg
        return z_new, (float(r2), float(np.einsum("i,i,i->", deg, dz, dz)), float(x2),
                       float(np.einsum("i,i,i->", deg, z_new, z_new)), float(u2))

    def _rows_pass(self, p: "_Part", ze, t, complete: bool, alpha: float, oma: float, beta: float):
        """Part ``p``'s rows: ``d``, the prox step (into ``t``), ``x`` when ``complete`` (for the
        norms), ``tau'``; returns the part's per-variable numerator ``A^T tau'`` and ``x``."""
        du = self.duals
        tau, tp = du.tau[p.rows], t[p.rows]
        d = p.A @ ze
        d -= np.multiply(p.aa, tau, out=tp)
        if beta != 0.0:
            d -= beta * du.ph0[p.rows]
        d -= p.c
        p.prox.step(d, out=tp)
        x = None
        if complete:  # x = z[var] - u - t a
            x = np.take(ze, p.var, mode="clip")
            x -= p.PT @ np.add(tau, tp, out=d)
            if beta != 0.0:
                x -= beta * du.h0[p.copies]
        tau *= oma
        tau -= np.multiply(tp, alpha, out=d)
        return p.AT @ tau, x

    def _norms_pass(self, p: "_Part", xs: list, z_new, beta: float):
        """Part ``p``'s share of ``|x - z'[var]|^2``, ``|x|^2`` and ``|u'|^2``."""
        du = self.duals
        x = xs[p.k]
        zv_new = np.take(z_new, p.var, mode="clip")
        x2 = _sq(x)
        r2 = _sq(np.subtract(x, zv_new, out=x))
        u = p.PT @ du.tau[p.rows]
        u += np.take(du.eps, p.var, out=zv_new, mode="clip")
        if beta != 0.0:
            u += beta * du.h0[p.copies]
        return r2, x2, _sq(u)

    def certificate(self, z, t=None, scale: float = 1.0, project: bool = False):
        """``(energy, violation, lower_bound)`` at ``z`` with ``theta = scale * t`` (``t`` this
        worker's rows); ``lower_bound`` is nan when ``t`` is None."""
        lay, comm = self.lay, self.comm
        energy = _energy(lay, z)
        violation = _violation(lay, z) if self.hard_here else 0.0
        if comm.size > 1:
            violation = float(comm.max(np.array([violation]))[0])
        if t is None:
            return float(comm.sum(np.array([energy]))[0]), violation, float("nan")
        theta = scale * t
        if project:
            theta = _project_dual(lay, theta)
        if comm.size == 1:
            return energy, violation, dual_bound(theta, lay.A, lay.c, lay.w, lay.co.sq)
        # dual_bound's three sums, each over rows, reduced across workers in one call
        quad = np.where(lay.co.sq & (lay.w > 0), theta * theta / (4.0 * np.where(lay.w > 0, lay.w, 1.0)), 0.0)
        tot = comm.sum(np.r_[energy, _dot(theta, lay.c), quad.sum(), lay.A.T @ theta])
        return float(tot[0]), violation, float(-tot[1] - tot[2] + np.minimum(tot[3:], 0.0).sum())

    def gather(self, t: np.ndarray) -> np.ndarray:
        """A per-row array of the whole model from each worker's rows (``t`` itself on one)."""
        return gather_rows(self.comm, self.rows, t, self.m_all)


def solve_admm(model: HLMRF, settings: AdmmSettings | None = None, y0: np.ndarray | None = None,
               callback: Callable[[int, float, float], None] | None = None,
               state: dict | None = None, comm=None) -> Result:
    """Find the MAP state of ``model`` by consensus ADMM.

    Parameters
    ----------
    settings : :class:`AdmmSettings`; the defaults follow the reference engine's tolerances.
    y0 : warm start of the values (defaults to zeros).
    state : a full warm start, ``previous_result.extra["state"]`` (a mapping: ``"u"``, the
        scaled duals, one per local copy in the model's copy order, and ``"rho"``; see
        :class:`~hlmrf.inference.duals.DualState`) from a model with the same rows and sparsity
        (e.g. the same ground model re-weighted during learning); it is ignored when the shapes
        do not match. Pass ``y0`` with it. Anything else (not a mapping, a ``rho`` that is not
        a finite number > 0, non-finite duals) is a :class:`~hlmrf.errors.SettingsError`.
    callback : called as ``callback(iteration, primal_residual, dual_residual)`` at every
        stopping-rule check (the CLI draws its progress display with it).
    comm : a communicator (see :class:`OneWorker`) to solve on several workers, each calling
        this with the same model and settings; each iterates on its own rows and the result
        (``y``, status, iterations, energy, certificate) is the same on all of them and equals
        the single-process solve to rounding. ``extra["state"]["u"]`` holds this worker's
        copies only. None: :data:`COMMUNICATOR` if set, else one worker.

    Notes
    -----
    Weights are used as given: normalise with ``model.normalized()`` first for the reference
    engine's convention (``hlmrf.infer`` does).
    """
    st = settings or AdmmSettings()
    t0 = time.perf_counter()
    n, m = model.n, model.m
    z = np.zeros(n) if y0 is None else np.clip(np.asarray(y0, dtype=np.float64), 0.0, 1.0).copy()
    comm = comm if comm is not None else (COMMUNICATOR.get() or ONE_WORKER)
    if whole_sum(model, comm, np.array([float(m)]))[0] == 0:  # a share may be empty, not the whole
        return Result(z, Status.CONVERGED, 0, 0.0, 0.0, 0.0, 0.0, time.perf_counter() - t0, "admm",
                      lower_bound=0.0)
    alpha = float(st.alpha)
    kern = _kernel(st, model, alpha, comm)
    release_free_memory()  # the kernel's construction temporaries, before the iterations allocate
    rho = float(st.rho)
    adapt_interval = st.adapt_every
    next_adapt = adapt_interval
    warm_rho = kern.duals.warm_start(state) if state is not None else None
    if warm_rho is not None:
        rho = warm_rho
    t = np.zeros(kern.m)  # this worker's rows
    rho_t = rho
    sqrtL = np.sqrt(kern.L_all)
    status = Status.ITERATION_LIMIT
    r_norm = s_norm = float("inf")
    it = 0
    log: dict = {"polish_seconds": 0.0, "attempts": 0, "used": False, "next_projection": 0}
    for it in range(1, st.max_iter + 1):
        check = it % st.check_every == 0 or it == st.max_iter
        adapt = st.adaptive_rho and it >= next_adapt
        rho_t = rho  # theta = rho_t * t is dual-feasible; rho may adapt below
        z, norms = kern.step(z, t, rho, complete=check or adapt)
        if norms is not None:
            r2, s2, x2, zv2, u2 = norms
            r_norm, s_norm = math.sqrt(r2), rho * math.sqrt(s2)
            x_norm, zv_norm, u_norm = math.sqrt(x2), math.sqrt(zv2), math.sqrt(u2)
        if check and not (math.isfinite(r_norm) and math.isfinite(s_norm)):
            raise _diverged(model, it)
        if check:
            eps_pri = sqrtL * st.eps_abs + st.eps_rel * max(x_norm, zv_norm)
            eps_dual = sqrtL * st.eps_abs + st.eps_rel * rho * u_norm
            if callback is not None:
                callback(it, r_norm, s_norm)
            if r_norm < eps_pri and s_norm < eps_dual:
                cert = _certificate(kern, z, t, rho_t)
                if cert.holds(st.gap_rel, st.gap_abs, st.constraint_tol):
                    status = Status.CONVERGED
                    break
                z_best, cert = _improve(model, kern, z, t, rho_t, cert, st, log, it)
                if cert.holds(st.gap_rel, st.gap_abs, st.constraint_tol):
                    status = Status.CONVERGED
                    z = z_best
                    break
        if check and it >= INFEASIBILITY_CHECK_AFTER and "hard_feasible" not in log and kern.hard:
            if not _hard_rows_feasible(model, kern, z, st, log):
                status = Status.INFEASIBLE
                break
        if adapt:
            next_adapt = it + adapt_interval
            ratio = r_norm / s_norm if r_norm > 0 and s_norm > 0 else 1.0
            if ratio > 10.0 or ratio < 0.1:
                scale = float(np.clip(np.sqrt(ratio), 0.1, 10.0))
                rho *= scale
                kern.duals.scale(scale)
                # Back off geometrically: rho settles after finitely many changes, which keeps
                # ADMM's convergence guarantee (a rho that keeps moving can stall it).
                adapt_interval *= 2
                next_adapt = it + adapt_interval
    if status != Status.CONVERGED:
        cert = _certificate(kern, z, t, rho_t)
        if it > 0 and status != Status.INFEASIBLE:
            z, cert = _improve(model, kern, z, t, rho_t, cert, st, log, it, final=True)
        if cert.holds(st.gap_rel, st.gap_abs, st.constraint_tol):
            status = Status.CONVERGED
    energy, violation = cert.energy, cert.violation
    bound = cert.lower_bound
    extra = {"lower_bound": bound, "state": DualState(kern.duals, rho), "polished": log["used"],
             "polish_attempts": log["attempts"], "polish_seconds": log["polish_seconds"],
             "polish_skipped": log.get("skipped"), "kernel": type(kern).__name__, "workers": comm.size}
    if not cert.convex:
        extra["certificate"] = "none: negative weights make the energy non-convex (a local solution)"
    return Result(z, status, it, r_norm, s_norm, energy, violation, time.perf_counter() - t0, "admm",
                  rho=rho, extra=extra, lower_bound=bound)


FUSED_MIN_COPIES = 2_000_000
"""``kernel="auto"`` uses the fused kernel only above this many local copies: loading the compiled
code from numba's disk cache costs 0.4-0.65 s per process (6-9 s to compile it the first time)
and numba's runtime about 92 MiB, against what the numpy kernel on two threads holds and spends
(4.7 ns per copy and iteration at acquaintances N=300 against 2.6 for the fused kernel;
benchmarks/bench_admm_kernel.py, 2026-11-30 11:09). Whole API runs, each kernel in its own
process twice (11:43): at N=220 (1.63M copies, 70 iterations) ADMM took 0.82-0.83 s with numpy
and 0.80-0.90 s with numba, peaking at 206-216 against 230-233 MiB; at N=250 (2.31M copies, 75
iterations) 1.04-1.05 against 0.96-1.03 s and 266 against 263 MiB. Above about two million copies
numba is ahead on both; at N=300 (3.8M copies) on both, by 85 iterations x 7.8 ms less the load,
and by 396 against 320 MiB. Since :func:`hlmrf.inference.fused.link` hands LLVM's code pages back,
numba's runtime holds about 45 MiB instead of 92-110, and at N=220 numba's run peaks lower (189
against 199-203 MiB, 2026-11-30 13:37), but it is no faster there (ADMM 0.76-0.78 against
0.73-0.83 s), and at N=150 (0.56M copies) it is slower (0.54 against 0.21-0.22 s) and larger
(159-161 against 123-124 MiB): the threshold stays."""


def _kernel(st: AdmmSettings, model: HLMRF, alpha: float, comm=None):
    """The iteration body for ``st.kernel``: the compiled one or the numpy reference (chosen by
    the whole model's size, so every worker chooses alike), on ``st.threads`` threads."""
    comm = comm or ONE_WORKER
    nnz = model.A.nnz if st.kernel != "auto" else int(whole_sum(model, comm, np.array([model.A.nnz], float))[0])
    threads = st.threads or (1 if comm.size > 1 else available_cores())
    if st.kernel == "numpy" or (st.kernel == "auto" and nnz <= FUSED_MIN_COPIES):
        return _NumpyKernel(model, alpha, comm, threads)
    if st.kernel == "auto":
        import importlib.util

        if importlib.util.find_spec("numba") is None:
            return _NumpyKernel(model, alpha, comm, threads)
    from hlmrf.errors import require

    require("numba", "fast")  # kernel="numba" without numba: MissingDependencyError naming hlmrf[fast]
    from hlmrf.inference.fused import FusedKernel

    return FusedKernel(model, alpha, comm, st.threads)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform tells it)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _diverged(model: HLMRF, it: int) -> SolverError:
    soft = model.kind <= Kind.HINGE
    if (model.w[soft] < 0).any():
        rules = sorted(set(model.index.rule_texts[int(r)] for r in model.rule[soft & (model.w < 0)]
                           if int(r) < len(model.index.rule_texts)))[:3]
        return SolverError(
            f"ADMM diverged at iteration {it} (non-finite values): the model has negative weights "
            f"({'; '.join(rules) or 'some rows'}), which make the energy non-convex and a squared "
            "term's prox step unbounded. Give every rule a weight >= 0 (learn with "
            "nonnegative=True)")
    return SolverError(f"ADMM diverged at iteration {it} (non-finite values) on a model with finite, "
                       "non-negative weights; this is a bug: please report it with the model")


def _certificate(kern, z: np.ndarray, t: np.ndarray, scale: float) -> Certificate:
    """The certificate of ``z`` with ADMM's multipliers ``theta = scale * t``."""
    energy, violation, bound = kern.certificate(z, t if kern.convex else None, scale)
    if not kern.convex:  # negative weights: non-convex, no bound (see Certificate.convex)
        return Certificate(energy, float("nan"), violation, convex=False)
    return Certificate(energy, bound, violation)


def _project_dual(lay: _Layout, theta: np.ndarray) -> np.ndarray:
    """:func:`hlmrf.model.terms.project_dual` group by group, in place: the layout holds no
    per-row ``lo``/``hi`` (16 bytes a row)."""
    for kind, p, rows in lay.groups:
        th = theta[rows]
        theta[rows] = clip_dual(th, *dual_domain(TABLE[kind, p], lay.w[rows]), out=th)
    return theta


def _energy(lay: _Layout, z: np.ndarray) -> float:
    d = lay.A @ z
    d -= lay.c
    energy = 0.0
    for kind, p, rows in lay.groups:  # summed per group; each row is in one group, so its d
        km = TABLE[kind, p]            # may be overwritten (no per-row temporaries)
        if km.power:
            dr = d[rows]
            h = dr if km.lb == -np.inf else np.maximum(dr, km.lb, out=dr)
            energy += _dot(lay.w[rows], h if km.power == 1 else np.multiply(h, h, out=h))
    return energy


PROJECTION_BACKOFF = 1.25
"""After a projection attempt at iteration ``it``, the next one is at ``1.25 it`` or later.

Geometric, so a run makes O(log iterations) attempts; 1.25 rather than 2 because on models whose
gap closes before their hard constraints hold, the certificate waits for the next attempt:
acquaintances N=300 stopped at 160 iterations with 2 and at 100 with 1.25, N=600 at 230 and 145
(the same certified gap and constraint tolerances; N=150 at 55 either way). A projection is cheap
next to the iterations between attempts: it solves only on the active hard rows.

An attempt is also due, whatever the schedule, at a check where the energy of the last feasible
state found is within the gap tolerance of the current lower bound: the projected energy moves
little while the bound rises, so that is when a projection can first pass; at most one such
attempt follows each scheduled one. N=300 then stops at 85 iterations instead of 100 (a failed
projection at 80, a passing one at 85)."""


INFEASIBILITY_CHECK_AFTER = 1000
"""At the first check from this iteration on, a run whose state still breaks a hard row by more
than ``constraint_tol`` asks whether the hard rows can hold at all (one linear program on them,
:func:`hlmrf.inference.feasibility.hard_constraints_feasible`, once per run) and stops as
``Status.INFEASIBLE`` when they cannot. ADMM itself never stops on hard rows that contradict each
other: its residuals do not shrink, so it used to run all ``max_iter`` iterations (25,000 by
default: at acquaintances N=300 about 6 minutes, at 15 ms an iteration) before ``infer``
reported the contradiction. A run whose state meets the hard rows here, or whose hard rows prove
feasible, is not checked again, and the check changes no iterate. The acquaintances models converge in 55-135 iterations
and never reach it; the program on their hard rows (feasible) takes 0.29 s at N=300 (32,256 rows,
no rise in peak memory) and 0.65 s at N=600 (128,744 rows, 138 MiB over the model), against
about 15 and 100-140 s for 1,000 iterations (the benchmark's ADMM phases; 2026-11-30)."""


def _hard_rows_feasible(model: HLMRF, kern, z: np.ndarray, st: AdmmSettings, log: dict) -> bool:
    """The check of :data:`INFEASIBILITY_CHECK_AFTER`: False only when no state in [0, 1] meets
    the hard rows. Split, on the hard rows gathered from every worker, so every worker decides
    alike."""
    from hlmrf.inference.feasibility import hard_constraints_feasible

    violation = kern.certificate(z)[1]
    if violation <= st.constraint_tol:
        log["hard_feasible"] = True  # z itself shows it
        return True
    log["hard_feasible"] = hard_constraints_feasible(_hard_rows(model, kern, log))
    return log["hard_feasible"]


def _hard_rows(model: HLMRF, kern, log: dict) -> HLMRF:
    """``model``, or on workers that each hold only their share, every worker's hard rows,
    gathered on the first call of a run and kept in ``log``."""
    if not split(model, kern.comm):
        return model
    if "hard_rows" not in log:
        log["hard_rows"] = gather_hard_rows(model, kern.comm)
    return log["hard_rows"]


def _improve(model: HLMRF, kern, z: np.ndarray, t: np.ndarray, scale: float, cert: Certificate,
             st: AdmmSettings, log: dict, it: int, final: bool = False):
    """:func:`hlmrf.inference.polish.improve`, paced.

    Pacing is by work, not wall time (so a run is reproducible): a polish is tried only when its
    estimated cost fits in the work ADMM has done so far less that of the earlier attempts, so
    polishing at most doubles a run it cannot help; and, however cheap, at most once per quarter
    of the iterations so far. The projection onto the hard constraints is tried again after
    :data:`PROJECTION_BACKOFF` times the iterations so far.
    """
    if not st.polish or not cert.convex:  # polishing assumes a convex problem
        return z, cert
    whole = not split(model, kern.comm)
    do_polish = whole and (final or it >= log.get("next_polish", 0))
    # Due early when the last feasible state found would pass the certificate against the
    # current bound: the projected energy moves little between checks while the bound rises. At
    # most one early attempt after each scheduled one, so a projection that keeps failing costs
    # no more than twice the schedule's.
    scheduled = final or it >= log["next_projection"]
    feasible = log.get("feasible_energy")
    due = (log.get("early", False) and feasible is not None
           and feasible - cert.lower_bound <= st.gap_rel * abs(feasible) + st.gap_abs)
    project = scheduled or due
    if not (do_polish or project):
        return z, cert
    if not whole:  # polishing solves on the whole model, which no worker holds; the projection
        # onto the hard constraints needs only the hard rows, gathered once on every worker
        log["skipped"] = "the model is split across the workers (each grounded only its share)"
        model = _hard_rows(model, kern, log)
    if project:
        log["next_projection"] = int(PROJECTION_BACKOFF * it)
        log["early"] = scheduled
    if do_polish:
        log["next_polish"] = it + max(st.check_every, it // 4)
    start = time.perf_counter()
    budget = (WORK_PER_ITERATION + WORK_PER_COPY_ITERATION * kern.L_all) * it - log.get("work", 0.0) \
        if do_polish else -1.0

    def certify(y, theta_model):  # the kernel's certificate: no model-sized temporaries per kind
        theta_here = None if theta_model is None else theta_model[kern.rows]
        energy, violation, bound = kern.certificate(y, theta_here, 1.0, project=True)
        return Certificate(energy, cert.lower_bound if theta_model is None else bound, violation)

    # On several workers every one polishes the whole model (each holds it) with the gathered
    # multipliers: the same deterministic steps, so the same state and certificate calls on all.
    # Split, only the projection runs (budget -1), and ``improve`` reads no multipliers.
    # The multipliers as a function: gathered into a model-sized array only when a polish gets
    # past its size checks (a model of millions of rows seldom does).
    out = improve(model, z, (lambda: scale * kern.gather(t)) if whole else None, cert, st, budget=budget,
                  project=project, log=log, certify=certify)
    log["polish_seconds"] += time.perf_counter() - start
    if out[1].violation <= st.constraint_tol and math.isfinite(out[1].energy):
        log["feasible_energy"] = out[1].energy  # what the next projection will likely give
    return out


def _norm(x: np.ndarray) -> float:
    # einsum, not np.linalg.norm/np.dot: those call a multithreaded BLAS whose thread wake-ups
    # cost ~15 ms per call on a loaded 2-core machine, more than a whole iteration.
    return math.sqrt(float(np.einsum("i,i->", x, x)))


def _dot(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.einsum("i,i->", x, y))


def _sq(x: np.ndarray) -> float:
    return float(np.einsum("i,i->", x, x))


def _violation(lay: _Layout, z: np.ndarray) -> float:
    """The largest violation of a hard row: ``d`` of the hard groups' rows only (the soft rows,
    usually nearly all, are not evaluated)."""
    worst = 0.0
    for kind, p, rows in lay.groups:
        km = TABLE[kind, p]
        if not km.violation:
            continue
        d = lay.A[rows] @ z
        d -= lay.c[rows]
        if km.violation == 1:
            worst = max(worst, float(np.max(d, initial=0.0)))
        else:
            worst = max(worst, float(np.max(np.abs(d, out=d), initial=0.0)))
    return worst

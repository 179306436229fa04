"""One consensus-ADMM iteration of :func:`hlmrf.inference.admm.solve_admm`, fused and compiled by numba.

The numpy loop makes some twenty passes over whole arrays per iteration; this module makes one
pass over the terms (and their local copies, which are contiguous per term) and one small pass
over the variables. Per term, the pass gathers ``z - eps`` at its copies, forms ``d = a.v - c``, takes
the prox step ``t = min(K1, K3 + num max(d, lb) / D)``, updates the row's dual ``tau`` and
scatters ``a tau`` into the consensus numerators. The step's numbers are those of
:func:`hlmrf.model.terms.coefficients` and :func:`~hlmrf.model.terms.prox_bounds`, computed per
term from its weight, ``|a|^2`` (summed in the same pass) and rho, with the per-(kind, exponent)
constants read from :data:`hlmrf.model.terms.TABLE` into small arrays (:func:`kind_tables`): no
formula is restated here, and no per-row coefficient array is stored or streamed.

The kernel works on the model's own arrays (``A``'s CSR arrays, ``c``, ``w``, one byte of kind code
per row): it holds ``t`` and the duals' per-row part ``tau`` (one each per row), their
per-variable part and per-chunk numerators. The duals are held in the row form of
:mod:`hlmrf.inference.duals` (``u = a tau[row] + eps[var] + beta h0``), so the pass reads each copy's
coefficient and column and nothing else per copy (12 bytes), and a solve needs about 16 bytes per
row beyond the model. :meth:`FusedKernel.certificate` computes the energy, the largest violation
and the Lagrangian bound in one more pass, without model-sized temporaries. On stopping-check
iterations a second pass over the copies forms the local copies ``x`` and the new duals to sum
the residual norms (and only then updates ``tau``, which it needs at its old value).

What makes the pass fast, measured on acquaintances N=300 on one thread (bench_admm_kernel.py,
docs/benchmarks.md): terms of 1, 2 and 3 copies are written out instead of looped over (their
arities come in no order, and a loop whose trip count changes from term to term mispredicts its
exit: 24%), with ``hlmrf.grounding`` ordering each rule's rows by arity so the choice is predicted
(8-9%); each kind's table row is read once per run of rows of that kind (:func:`kind_runs`); the
CSR indices are viewed as unsigned (:func:`unsigned`), which spares numba's negative-index test
per gather and scatter (9%); the completing pass is one loop over copies with the row followed
alongside (31% of that pass). The pass is then bound by its instruction count, not by memory:
about 30 cycles per term on one core, and about 20 since the duals are held per row (19.0 ms
for N=300's 2.39M terms on one thread, against 28.4).

Parallel over fixed chunks of terms (``prange``); each chunk scatters into a numerator array of
its own, summed per variable in chunk order, so results do not depend on the thread count. Sums
are taken in a different order than numpy's (per-chunk partial sums, residual norms), so iterates
agree with the numpy kernel to rounding (~1e-15 relative), not bitwise. Importing this module
imports numba; :mod:`hlmrf.inference.admm` imports it only when the ``numba`` kernel is chosen.
It does not implement the stopping rule, rho adaptation or the certificate: those stay in
``solve_admm``. On several workers (``comm``, see :class:`hlmrf.inference.admm.OneWorker`) the
kernel iterates on its own rows and reduces the chunk-summed numerators, the norms and the
certificate's sums across the workers; with one worker nothing changes.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import numba
from numba import njit, prange

from hlmrf.inference.duals import RowDuals
from hlmrf.infra.memory import release_library_pages
from hlmrf.model.hlmrf import column_counts

LLVM_LIBRARIES = ("libllvmlite", "libLLVM")
"""llvmlite's library, with LLVM linked in statically (wheels) or beside it (some conda builds)."""

_LINKED: set = set()
"""Index dtypes whose passes :func:`link` has loaded in this process."""

N_CHUNKS = 8
"""Fixed, so that the summation order (and so every iterate) is independent of the thread count."""

# Columns of the per-(kind, exponent) table the kernels read (see kind_tables).
LB, K3, NUM0, NUM1, DEN0, DEN1, DEN2, RHO_IN_DEN, CAP, POWER, VIOLATION, LO_W, LO, HI_W, HI = range(15)


def kind_code(kind: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Each row's index into :func:`kind_tables`: ``2 kind + (p == 2)``."""
    return (np.asarray(kind, np.int8) * 2 + (np.asarray(p) == 2)).astype(np.int8)


def kind_tables() -> np.ndarray:
    """:data:`hlmrf.model.terms.TABLE` as an ``(8, 15)`` float array, one row per :func:`kind_code`
    (read at every kernel construction, so a changed table is followed)."""
    from hlmrf.model.terms import TABLE, W, Kind

    tab = np.zeros((8, 15))
    for (k, e), km in TABLE.items():
        r = 2 * int(k) + (e == 2)
        lo, hi = km.dual
        tab[r] = (km.lb, km.k3, km.num[0], km.num[1], km.den[0], km.den[1], km.den[2],
                  float(km.rho_in_den), float(km.cap), km.power, km.violation,
                  float(lo == W), 0.0 if lo == W else lo, float(hi == W), 0.0 if hi == W else hi)
    assert len(Kind) * 2 == len(tab)
    return tab


@njit(cache=True, error_model="numpy", inline="always")
def _kind_constants(tab, g):  # pragma: no cover - compiled
    """Row ``g`` of :func:`kind_tables` as a tuple, read once per run of rows of one kind."""
    return (tab[g, NUM0], tab[g, NUM1], tab[g, DEN0], tab[g, DEN1], tab[g, DEN2],
            tab[g, RHO_IN_DEN] != 0.0, tab[g, LB], tab[g, K3], tab[g, CAP] != 0.0)


@njit(cache=True, error_model="numpy")
def _prox(i, acc, aa, rho, c, w, kc):  # pragma: no cover - compiled
    """The prox step ``t`` of row ``i`` from ``a.v`` (``acc``) and ``|a|^2`` (``aa``), ``kc`` its
    kind's :func:`_kind_constants`: terms.coefficients and terms.prox_bounds, in their order of
    operations."""
    num0, num1, den0, den1, den2, rho_in_den, lb, k3, cap = kc
    d = acc - c[i]
    wi = w[i]
    num = num0 * wi + num1
    den = den0 * wi * aa + den1 * aa + den2
    if rho_in_den:
        den = rho + den
    h = lb if d < lb else d  # np.maximum: a NaN d stays NaN
    q = num * h
    if den == 0.0 and q == 0.0:  # a row without copies whose hinge is inactive (terms.ProxAt.step)
        tt = 0.0 + k3
    else:
        tt = q / den + k3
    if cap:
        k1 = wi / rho
        if tt > k1:
            tt = k1
    return tt


@njit(cache=True, error_model="numpy", inline="always")
def _row_step(i, acc, aa, kc, rho, c, w, t, tau, alpha, oma, beta, ph0, store):  # pragma: no cover
    """Row ``i`` from ``sum a_k ze[var_k]`` (``acc``) and ``|a|^2``: ``a.v`` at ``v = ze[var] - a
    tau_i - beta h0`` (the row's share of ``beta h0`` is ``beta ph0_i``), the prox step ``t_i``,
    and ``tau_i' = (1 - alpha) tau_i - alpha t_i`` (stored when ``store``), which it returns."""
    ti = tau[i]
    acc -= aa * ti
    if beta != 0.0:
        acc -= beta * ph0[i]
    tt = _prox(i, acc, aa, rho, c, w, kc)
    t[i] = tt
    tn = oma * ti - alpha * tt
    if store:
        tau[i] = tn
    return tn


@njit(cache=True, error_model="numpy", inline="always")
def _term(i, kc, rho, indptr, a, var, c, w, t, tau, ze, alpha, oma, beta, ph0, store,
          P):  # pragma: no cover - compiled
    """Row ``i``: :func:`_row_step` on its copies, then ``a tau_i'`` scattered into the numerators."""
    s, e = indptr[i], indptr[i + 1]
    # Terms of 1, 2 and 3 copies written out: their arities come in no order, and a loop
    # whose trip count changes from term to term mispredicts its exit twice per term
    # (acquaintances N=300: the pass is 24% faster on one thread). The same operations
    # in the same order as the general loop below, so the same numbers.
    if e - s == 1:
        a0, j0 = a[s], var[s]
        tn = _row_step(i, 0.0 + a0 * ze[j0], 0.0 + a0 * a0, kc, rho, c, w, t, tau, alpha, oma, beta, ph0, store)
        P[j0] += a0 * tn
    elif e - s == 2:
        a0, a1, j0, j1 = a[s], a[s + 1], var[s], var[s + 1]
        tn = _row_step(i, (0.0 + a0 * ze[j0]) + a1 * ze[j1], (0.0 + a0 * a0) + a1 * a1, kc, rho, c, w, t,
                       tau, alpha, oma, beta, ph0, store)
        P[j0] += a0 * tn
        P[j1] += a1 * tn
    elif e - s == 3:
        a0, a1, a2, j0, j1, j2 = a[s], a[s + 1], a[s + 2], var[s], var[s + 1], var[s + 2]
        tn = _row_step(i, ((0.0 + a0 * ze[j0]) + a1 * ze[j1]) + a2 * ze[j2],
                       ((0.0 + a0 * a0) + a1 * a1) + a2 * a2, kc, rho, c, w, t, tau, alpha, oma, beta,
                       ph0, store)
        P[j0] += a0 * tn
        P[j1] += a1 * tn
        P[j2] += a2 * tn
    else:
        acc = 0.0
        aa = 0.0
        for k in range(s, e):
            acc += a[k] * ze[var[k]]
            aa += a[k] * a[k]
        tn = _row_step(i, acc, aa, kc, rho, c, w, t, tau, alpha, oma, beta, ph0, store)
        for k in range(s, e):  # the term's copies are still in cache
            P[var[k]] += a[k] * tn


@njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def _term_pass(bounds, runs, run_of, indptr, a, var, c, w, code, tab, rho, t, tau, ze, alpha,
               beta, ph0, store, partial):  # pragma: no cover - compiled
    """One pass over the terms, chunk by chunk; within a chunk, run by run of rows of one kind
    code (``runs``, :func:`kind_runs`), so each kind's constants are read once per run."""
    oma = 1.0 - alpha
    for ch in prange(len(bounds) - 1):
        P = partial[ch]
        P[:] = 0.0
        for r in range(run_of[ch], run_of[ch + 1]):
            kc = _kind_constants(tab, code[runs[r]])
            if store:  # two loops with the flag a constant in each
                for i in range(runs[r], runs[r + 1]):
                    _term(i, kc, rho, indptr, a, var, c, w, t, tau, ze, alpha, oma, beta, ph0, True, P)
            else:
                for i in range(runs[r], runs[r + 1]):
                    _term(i, kc, rho, indptr, a, var, c, w, t, tau, ze, alpha, oma, beta, ph0, False, P)


@njit(cache=True, nogil=True, error_model="numpy")  # serial: n is small, and a parallel region costs a thread wake-up
def _var_pass(partial, extra, inv_deg, has_copy, deg, z_cur, z_new, eps, oma):  # pragma: no cover - compiled
    """``z' = clip(z + (numerators + extra) / deg)`` where a variable has copies, and
    ``eps' = (1 - alpha) eps + (z - z')``; returns ``sum deg (z' - z)^2``."""
    n = len(z_cur)
    nch = partial.shape[0]
    s2 = 0.0
    for j in range(n):
        zj = z_cur[j]
        if has_copy[j]:
            acc = 0.0
            for ch in range(nch):
                acc += partial[ch, j]
            acc += extra[j]
            v = acc * inv_deg[j] + zj
            if v < 0.0:
                v = 0.0
            elif v > 1.0:
                v = 1.0
        else:
            v = zj
        z_new[j] = v
        dz = zj - v
        s2 += deg[j] * dz * dz
        eps[j] = oma * eps[j] + dz
    return s2


@njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def _finish_pass(bounds, indptr, a, var, t, tau, ze, z_new, eps, alpha, beta, beta_new, h0, no_empty,
                 sums):  # pragma: no cover
    """The completing pass: per copy, ``x = ze[var] - a (tau + t) - beta h0`` (``tau`` not yet
    updated) and the new duals ``u' = a tau' + eps'[var] + beta' h0``, summed into the residual
    norms; then ``tau' = (1 - alpha) tau - alpha t`` per row."""
    oma = 1.0 - alpha
    for ch in prange(len(bounds) - 1):
        r2 = x2 = zv2 = u2 = 0.0
        # One loop over the chunk's copies, the row followed alongside: without a per-row inner
        # loop whose trip count varies there is no exit to mispredict (31% faster on one thread
        # at acquaintances N=300). Rows without copies need the while loop.
        lo, hi = bounds[ch], bounds[ch + 1]
        i = lo
        nxt = indptr[lo + 1] if lo < hi else 0  # an empty chunk may start at m: no row to read
        for k in range(indptr[lo], indptr[hi]):
            if no_empty:
                i += k >= nxt  # branch-free: at most one row starts per copy
            else:
                while k >= nxt:
                    i += 1
                    nxt = indptr[i + 1]
            nxt = indptr[i + 1]
            j = var[k]
            ak = a[k]
            ti, tt = tau[i], t[i]
            x = ze[j] - ak * (ti + tt)
            un = ak * (oma * ti - alpha * tt) + eps[j]
            if beta != 0.0:
                x -= beta * h0[k]
                un += beta_new * h0[k]
            zc = z_new[j]
            r2 += (x - zc) * (x - zc)
            x2 += x * x
            zv2 += zc * zc
            u2 += un * un
        for q in range(lo, hi):  # not i: numba's parfor pass would read i as a reduction
            tau[q] = oma * tau[q] - alpha * t[q]
        sums[ch, 0] = r2
        sums[ch, 1] = x2
        sums[ch, 2] = zv2
        sums[ch, 3] = u2


@njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def _certificate_pass(bounds, indptr, a, var, c, w, code, tab, z, t, scale, bound, project,
                      partial, sums):  # pragma: no cover - compiled
    """Per chunk: energy, largest violation and (``bound``) the dual terms of ``theta = scale t``
    (moved into each row's dual domain first when ``project``), scattering ``A^T theta`` into
    ``partial``; :func:`hlmrf.model.terms.dual_bound` and ``project_dual`` in one pass."""
    for ch in prange(len(bounds) - 1):
        P = partial[ch]
        if bound:
            P[:] = 0.0
        energy = viol = tc = quad = 0.0
        for i in range(bounds[ch], bounds[ch + 1]):
            s, e = indptr[i], indptr[i + 1]
            acc = 0.0
            for k in range(s, e):
                acc += a[k] * z[var[k]]
            d = acc - c[i]
            g = code[i]
            wi = w[i]
            power = tab[g, POWER]
            if power > 0.0:
                lb = tab[g, LB]
                h = lb if d < lb else d
                energy += wi * (h if power == 1.0 else h * h)
            vk = tab[g, VIOLATION]
            if vk == 1.0:
                if d > viol:
                    viol = d
            elif vk == 2.0:
                if abs(d) > viol:
                    viol = abs(d)
            if bound:
                th = scale * t[i]
                if project:  # np.fmin(np.fmax(theta, lo), hi), non-finite to 0
                    lo = wi if tab[g, LO_W] != 0.0 else tab[g, LO]
                    hi = wi if tab[g, HI_W] != 0.0 else tab[g, HI]
                    if th < lo or th != th:
                        th = lo
                    if th > hi:
                        th = hi
                    if not np.isfinite(th):
                        th = 0.0
                tc += th * c[i]
                if power == 2.0 and wi > 0.0:
                    quad += th * th / (4.0 * wi)
                for k in range(s, e):
                    P[var[k]] += th * a[k]
        sums[ch, 0] = energy
        sums[ch, 1] = viol
        sums[ch, 2] = tc
        sums[ch, 3] = quad


def kind_runs(code: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows cut into runs of one kind code that do not cross a chunk bound: ``runs`` holds the
    first row of each run and then ``m``; chunk ``ch``'s runs are ``run_of[ch]`` to
    ``run_of[ch + 1]``. A ground model has a few runs per rule (its rows are one kind)."""
    m = len(code)
    starts = np.flatnonzero(code[1:] != code[:-1]) + 1 if m else np.zeros(0, np.int64)
    runs = np.union1d(np.union1d(starts, bounds[:-1]), [m]).astype(np.int64)
    return runs, np.searchsorted(runs, bounds).astype(np.int64)


def unsigned(idx: np.ndarray) -> np.ndarray:
    """The same integers viewed as unsigned (no copy): numba then indexes without the
    negative-index wraparound test it emits for signed indices (9% of the term pass)."""
    return idx.view(np.uint32 if idx.dtype.itemsize == 4 else np.uint64)


def link(index: np.dtype, var: np.dtype) -> None:
    """Load every pass for these index types (from numba's cache, or compiled), by calling each
    on no rows, then drop LLVM's code pages from the resident set
    (:func:`hlmrf.infra.memory.release_library_pages`). :class:`FusedKernel` calls it before
    it makes its arrays, so that LLVM's pages (about 65 MiB) and the solve's are never resident
    at once: at acquaintances N=300 the linking otherwise sets the run's peak. The argument types
    are those of :meth:`FusedKernel._step` and :meth:`FusedKernel.certificate` on a model's own
    arrays; a call whose types differed would only be linked at its first real call. Once per
    process and index type."""
    key = (np.dtype(index), np.dtype(var))
    if key in _LINKED:
        return
    release_library_pages(LLVM_LIBRARIES)  # what numba's import touched
    z, f, none, part = np.zeros(0), 0.5, np.zeros(1, np.int64), np.zeros((0, 0))
    ptr, col, code, has = np.zeros(1, index), np.zeros(0, var), np.zeros(0, np.int8), np.zeros(0, bool)
    tab = kind_tables()
    _term_pass(none, none, none, ptr, z, col, z, z, code, tab, f, z, z, z, f, f, z, True, part)
    _var_pass(part, z, z, has, z, z, z, z, f)
    _finish_pass(none, ptr, z, col, z, z, z, z, z, f, f, f, z, True, part)
    _certificate_pass(none, ptr, z, col, z, z, code, tab, z, z, f, True, True, part, part)
    _LINKED.add(key)
    release_library_pages(LLVM_LIBRARIES)


class FusedKernel:
    """The iteration body of ``solve_admm`` on a model's own arrays.

    :meth:`step` maps ``z`` to the next iterate the way the numpy kernel does, updating ``t``
    and the duals (``duals``, a :class:`~hlmrf.inference.duals.RowDuals`: one number per row and
    one per variable) in place; ``z`` is returned as a new array. Nothing model-sized is copied:
    the kernel reads ``model.A``'s CSR arrays, ``model.c`` and ``model.w`` in place.
    """

    def __init__(self, model, alpha: float, comm=None, threads: int = 0):
        from hlmrf.inference.admm import ONE_WORKER, global_counts, local_rows

        self.comm = comm = comm or ONE_WORKER
        model, self.rows, self.m_all = local_rows(model, comm)
        A = model.A
        n, m, L = model.n, model.m, A.nnz
        self.indptr = A.indptr  # any integer type: numba compiles per type
        self.var = unsigned(A.indices)
        link(self.indptr.dtype, self.var.dtype)  # before this kernel's arrays are made
        self.a = A.data if A.data.dtype == np.float64 else A.data.astype(np.float64)
        self.c = np.ascontiguousarray(model.c, dtype=np.float64)
        self.w = np.ascontiguousarray(model.w, dtype=np.float64)
        self.code = kind_code(model.kind, model.p)
        self.no_empty = bool((A.indptr[1:] > A.indptr[:-1]).all())  # every row has a copy
        self.tab = kind_tables()
        self.L, self.m, self.n = L, m, n
        nch = max(1, min(N_CHUNKS, m))
        work = A.indptr[:-1].astype(np.int64) + np.arange(m)  # copies + terms before each term
        cuts = np.searchsorted(work, np.linspace(0, L + m, nch + 1)[1:-1])
        del work
        self.bounds = np.r_[0, cuts, m].astype(np.int64)
        self.runs, self.run_of = kind_runs(self.code, self.bounds)
        self.partial = np.zeros((nch, n))
        self.sums = np.zeros((nch, 4))
        deg = column_counts(A, n)
        self.hard = bool((self.code >= 4).any())
        self.convex = not bool((self.w < 0).any())
        self.L_all = L
        if comm.size > 1:
            deg, self.L_all, self.hard, negative = global_counts(comm, deg, L, self.hard, not self.convex)
            self.convex = not negative
        self.deg = deg.astype(np.float64)
        self.has_copy = deg > 0
        self.inv_deg = np.where(self.has_copy, 1.0 / np.maximum(deg, 1), 0.0)
        self.alpha = float(alpha)
        self.duals = RowDuals(A, n)
        # numba's threads for this solve (0: numba's own count); set before each parallel call,
        # since numba.set_num_threads holds for the calling thread only
        self.threads = min(int(threads), numba.config.NUMBA_NUM_THREADS) if threads else 0

    def step(self, z, t, rho: float, complete: bool):
        """One iteration: updates ``t`` and the duals in place. Returns ``(z_new, norms)``;
        ``norms`` is None unless ``complete``, else ``(|x - z_new[var]|^2, sum deg (z_new - z)^2,
        |x|^2, |z_new[var]|^2, |u|^2)``."""
        with self._numba_threads():
            return self._step(z, t, rho, complete)

    def _step(self, z, t, rho: float, complete: bool):
        du, alpha = self.duals, self.alpha
        oma = 1.0 - alpha
        ze = z - du.eps
        beta = du.beta
        _term_pass(self.bounds, self.runs, self.run_of, self.indptr, self.a, self.var, self.c, self.w, self.code,
                   self.tab, float(rho), t, du.tau, ze, alpha, beta, self.c if beta == 0.0 else du.ph0,
                   not complete, self.partial)
        beta_new = oma * beta
        num = self.partial
        extra = oma * self.deg * du.eps  # eps is the same on every worker: not reduced
        if self.comm.size > 1:  # the numerators summed over chunks, then over workers
            local = num.sum(axis=0)
            if beta_new != 0.0:
                local += beta_new * du.s0
            num = self.comm.sum(local).reshape(1, -1)
        elif beta_new != 0.0:
            extra += beta_new * du.s0
        z_new = np.empty_like(z)
        s2 = _var_pass(num, extra, self.inv_deg, self.has_copy, self.deg, z, z_new, du.eps, oma)
        du.beta = beta_new
        if not complete:
            return z_new, None
        _finish_pass(self.bounds, self.indptr, self.a, self.var, t, du.tau, ze, z_new, du.eps, alpha, beta,
                     beta_new, self.a if beta == 0.0 else du.h0, self.no_empty, self.sums)
        r2, x2, zv2, u2 = (float(v) for v in self.comm.sum(self.sums.sum(axis=0)))
        return z_new, (r2, float(s2), x2, zv2, u2)

    def certificate(self, z, t=None, scale: float = 1.0, project: bool = False):
        """``(energy, violation, lower_bound)`` at ``z`` with ``theta = scale * t`` (moved into the
        dual domain first when ``project``); ``lower_bound`` is nan when ``t`` is None."""
        bound = t is not None
        with self._numba_threads():
            _certificate_pass(self.bounds, self.indptr, self.a, self.var, self.c, self.w, self.code,
                              self.tab, np.ascontiguousarray(z, dtype=np.float64), self.c if t is None else t,
                              float(scale), bound, bool(project), self.partial, self.sums)
        comm = self.comm
        violation = max(0.0, float(comm.max(self.sums[:, 1].max(initial=0.0, keepdims=True))[0]))
        if not bound:
            return float(comm.sum(np.array([self.sums[:, 0].sum()]))[0]), violation, float("nan")
        tot = comm.sum(np.r_[self.sums[:, 0].sum(), self.sums[:, 2].sum(), self.sums[:, 3].sum(),
                             self.partial.sum(axis=0)])  # energy, the dual terms and A^T theta
        lower = -float(tot[1]) - float(tot[2]) + float(np.minimum(tot[3:], 0.0).sum())
        return float(tot[0]), violation, lower

    @contextmanager
    def _numba_threads(self):
        """numba's thread count set to ``threads`` for the calls inside (numba.set_num_threads
        holds for the calling thread until changed: restored after, so a later solve in this
        thread is not held to this one's count)."""
        if not self.threads:
            yield
            return
        before = numba.get_num_threads()
        numba.set_num_threads(self.threads)
        try:
            yield
        finally:
            numba.set_num_threads(before)

    def gather(self, t: np.ndarray) -> np.ndarray:
        """A per-row array of the whole model from each worker's rows (``t`` itself on one)."""
        from hlmrf.inference.admm import gather_rows

        return gather_rows(self.comm, self.rows, t, self.m_all)

    def bytes_per_iteration(self, complete: bool = False) -> int:
        """The bytes one step must read and write from memory: every per-copy and per-term
        array streamed once (twice with the completing pass), the per-variable arrays once."""
        L, m, n = self.L, self.m, self.n
        ib, pb = self.var.itemsize, self.indptr.itemsize
        per_copy = 8 + ib  # a, var
        per_term = pb + 8 + 8 + 1 + 8 + 8 + 8  # indptr, c, w, code, tau read and written, t written
        # z, eps and ze = z - eps (numpy), then ze, z, eps read and written, z_new, masks, the
        # per-variable extra term and the numerators in the variable pass
        per_var = 8 * 4 + 8 * 6 + 1 + 8 * 2 + 8 * self.partial.shape[0] * 2
        total = L * per_copy + m * per_term + n * per_var
        if complete:  # copies again; indptr, t read, tau read and written; ze, z_new, eps read
            total += L * per_copy + m * (pb + 8 + 16) + n * 24
        return int(total)

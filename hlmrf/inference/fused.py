"""One consensus-ADMM iteration of :func:`hlmrf.inference.admm.solve_admm`, fused and compiled by numba.

The numpy loop makes some twenty passes over whole arrays per iteration; this module makes one
pass over the terms (and their local copies, which are contiguous per term) and one small pass
over the variables. Per term, the pass gathers ``z`` at its copies, forms ``d = a.v - c``, takes
the prox step ``t = min(K1, K3 + num max(d, lb) / D)`` on the per-row numbers that
:func:`hlmrf.model.terms.coefficients` and :func:`~hlmrf.model.terms.prox_bounds` read from the kind
table (no formula is restated here), forms the over-relaxed copies and scatters them into the
consensus numerators. The local copies ``x`` are never stored: the dual update ``u += xh - z[var]``
of an iteration needs the new ``z``, so it is done at the start of the *next* iteration's pass,
which recomputes ``xh`` from the previous ``z`` and ``t`` (cheaper than streaming ``x`` out and
back). On stopping-check iterations a separate pass completes ``u`` at once and returns the
residual norms, so the caller sees exactly the state the numpy loop has.

Parallel over fixed chunks of terms (``prange``); each chunk scatters into a numerator array of
its own, summed per variable in chunk order, so results do not depend on the thread count. Sums
are taken in a different order than numpy's (per-chunk partial sums, residual norms), so iterates
agree with the numpy kernel to rounding (~1e-15 relative), not bitwise. Importing this module
imports numba; :mod:`hlmrf.inference.admm` imports it only when the ``numba`` kernel is chosen.
It does not implement the stopping rule, rho adaptation or the certificate: those stay in
``solve_admm``.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

N_CHUNKS = 8
"""Fixed, so that the summation order (and so every iterate) is independent of the thread count."""


@njit(cache=True, inline="always")
def _copy_dual_update(k, tp, a, var, u, z_prev, z_cur, alpha, oma, relax):  # pragma: no cover
    """The previous iteration's dual step for copy ``k``: its local copy ``x`` (recomputed from
    the previous ``z`` and ``t``), over-relaxed, against the new ``z``; stores and returns
    ``(x, z_new, u_new)``."""
    j = var[k]
    zo = z_prev[j]
    x = (zo - u[k]) - tp * a[k]
    xh = alpha * x + oma * zo if relax else x
    zc = z_cur[j]
    un = u[k] + (xh - zc)
    u[k] = un
    return x, zc, un


@njit(cache=True, parallel=True, nogil=True)
def _term_pass(bounds, indptr, a, var, u, c, num, K1, D, code, lb_tab, k3_tab, t,
               z_prev, z_cur, alpha, finish, partial):  # pragma: no cover - compiled
    oma = 1.0 - alpha
    relax = alpha != 1.0
    for ch in prange(len(bounds) - 1):
        P = partial[ch]
        P[:] = 0.0
        for i in range(bounds[ch], bounds[ch + 1]):
            s, e = indptr[i], indptr[i + 1]
            acc = 0.0
            if finish:  # the previous iteration's dual update, then d at the new prox centre
                tp = t[i]
                for k in range(s, e):
                    x, zc, un = _copy_dual_update(k, tp, a, var, u, z_prev, z_cur, alpha, oma, relax)
                    acc += a[k] * (zc - un)
            else:
                for k in range(s, e):
                    acc += a[k] * (z_cur[var[k]] - u[k])
            d = acc - c[i]
            g = code[i]
            lb = lb_tab[g]
            h = lb if d < lb else d  # np.maximum: a NaN d stays NaN
            tt = num[i] * h / D[i] + k3_tab[g]
            if tt > K1[i]:
                tt = K1[i]
            t[i] = tt
            for k in range(s, e):  # the term's copies are still in cache
                j = var[k]
                zc = z_cur[j]
                uk = u[k]
                x = (zc - uk) - tt * a[k]
                xh = alpha * x + oma * zc if relax else x
                P[j] += xh + uk


@njit(cache=True, nogil=True)  # serial: n is small, and a parallel region costs a thread wake-up
def _var_pass(partial, inv_deg, has_copy, deg, z_cur, z_new):  # pragma: no cover - compiled
    n = len(z_cur)
    nch = partial.shape[0]
    s2 = 0.0
    for j in range(n):
        if has_copy[j]:
            acc = 0.0
            for ch in range(nch):
                acc += partial[ch, j]
            v = acc * inv_deg[j]
            if v < 0.0:
                v = 0.0
            elif v > 1.0:
                v = 1.0
        else:
            v = z_cur[j]
        z_new[j] = v
        dz = v - z_cur[j]
        s2 += deg[j] * dz * dz
    return s2


@njit(cache=True, parallel=True, nogil=True)
def _finish_pass(bounds, indptr, a, var, u, t, z_prev, z_cur, alpha, sums):  # pragma: no cover
    oma = 1.0 - alpha
    relax = alpha != 1.0
    for ch in prange(len(bounds) - 1):
        r2 = x2 = zv2 = u2 = 0.0
        for i in range(bounds[ch], bounds[ch + 1]):
            tp = t[i]
            for k in range(indptr[i], indptr[i + 1]):
                x, zc, un = _copy_dual_update(k, tp, a, var, u, z_prev, z_cur, alpha, oma, relax)
                r2 += (x - zc) * (x - zc)
                x2 += x * x
                zv2 += zc * zc
                u2 += un * un
        sums[ch, 0] = r2
        sums[ch, 1] = x2
        sums[ch, 2] = zv2
        sums[ch, 3] = u2


class FusedKernel:
    """The iteration body of ``solve_admm`` on a layout (:class:`hlmrf.inference.admm._Layout`).

    :meth:`step` maps ``(z, u, t)`` to the next iterate the way the numpy loop body does; ``u``
    and ``t`` are updated in place, ``z`` is returned as a new array. Between two steps without
    ``complete=True``, ``u`` lags one dual update behind (see the module docstring): read ``u``
    only after a completed step.
    """

    def __init__(self, lay, n: int, alpha: float):
        L, m = len(lay.a), len(lay.c)
        itype = np.int32 if max(L, n) < 2**31 - 1 else np.int64
        self.indptr = np.r_[lay.starts, L].astype(itype)
        self.var = lay.var.astype(itype)
        self.a = np.ascontiguousarray(lay.a, dtype=np.float64)
        self.c = lay.c
        self.num = lay.co.num
        code = np.zeros(m, np.int8)
        lb_tab, k3_tab = np.zeros(max(1, len(lay.groups))), np.zeros(max(1, len(lay.groups)))
        for g, (_, _, s, e) in enumerate(lay.groups):  # lb and K3 are constant per (kind, p)
            code[s:e] = g
            lb_tab[g], k3_tab[g] = lay.co.lb[s], lay.co.k3[s]
        self.code, self.lb_tab, self.k3_tab = code, lb_tab, k3_tab
        nch = max(1, min(N_CHUNKS, m))
        work = lay.starts + np.arange(m)  # copies + terms before each term
        cuts = np.searchsorted(work, np.linspace(0, L + m, nch + 1)[1:-1])
        self.bounds = np.r_[0, cuts, m].astype(np.int64)
        self.partial = np.zeros((nch, n))
        self.sums = np.zeros((nch, 4))
        self.deg = lay.deg.astype(np.float64)
        self.has_copy = lay.deg > 0
        self.inv_deg = np.where(self.has_copy, 1.0 / np.maximum(lay.deg, 1), 0.0)
        self.alpha = float(alpha)
        self.z_prev = None  # the z of the step whose dual update is pending

    def step(self, z, u, t, K1, D, complete: bool):
        """One iteration. Returns ``(z_new, norms)``; ``norms`` is None unless ``complete``, else
        ``(|x - z_new[var]|^2, sum deg (z_new - z)^2, |x|^2, |z_new[var]|^2, |u|^2)``."""
        pending = self.z_prev is not None
        _term_pass(self.bounds, self.indptr, self.a, self.var, u, self.c, self.num, K1, D, self.code,
                   self.lb_tab, self.k3_tab, t, self.z_prev if pending else z, z, self.alpha, pending,
                   self.partial)
        z_new = np.empty_like(z)
        s2 = _var_pass(self.partial, self.inv_deg, self.has_copy, self.deg, z, z_new)
        if not complete:
            self.z_prev = z
            return z_new, None
        self.z_prev = None
        _finish_pass(self.bounds, self.indptr, self.a, self.var, u, t, z, z_new, self.alpha, self.sums)
        r2, x2, zv2, u2 = (float(v) for v in self.sums.sum(axis=0))
        return z_new, (r2, float(s2), x2, zv2, u2)

    def bytes_per_iteration(self, complete: bool = False) -> int:
        """The bytes one step must read and write from memory: every per-copy and per-term
        array streamed once (twice with the completing pass), the per-variable arrays once."""
        L, m, n = len(self.a), len(self.c), len(self.inv_deg)
        ib = self.var.itemsize
        per_copy = 8 + ib + 8 + 8  # a, var, u read and written
        per_term = ib + 8 + 8 + 8 + 8 + 1 + 8 + 8  # indptr, c, num, K1, D, code, t read and written
        per_var = 8 * 3 + 1 + 8 + 8 * self.partial.shape[0] * 2  # z twice, z_new, masks, numerators
        total = L * per_copy + m * per_term + n * per_var
        if complete:
            total += L * per_copy + m * (ib + 8)
        return int(total)

"""The numpy ADMM kernel (``admm._NumpyKernel``) against the iteration written out per local copy.

The kernel holds no per-copy arrays (the duals are ``u = a tau[row] + eps[var] + beta h0``, see
:mod:`hlmrf.inference.duals`); the reference below keeps them all, as the textbook states the iteration
(Boyd et al. 2011, section 3.4.3, with over-relaxation): ``v = z[var] - u``, the prox of every
term at ``v``, ``x = v - t a``, ``xh = alpha x + (1 - alpha) z[var]``, ``z' = clip(mean(xh +
u))``, ``u' = u + xh - z'[var]``. Both run from the same start for several steps, completing and
not, from duals not of the kernel's row form (a per-copy warm start) and through a rescaled rho,
and must agree to rounding: values, prox multipliers and duals at every step, the residual norms
after each completing step.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hlmrf.inference import admm
from hlmrf.model.hlmrf import HLMRF
from hlmrf.model.terms import Kind, coefficients, prox_bounds
from hlmrf.testing.random_models import random_model


def _prox_unfolded(co, d, K1, D):
    """``t = min(K1, K3 + num max(d, lb) / D)`` as written, 0 / 0 taken as 0 (the kernel folds
    ``num / D`` once per rho: terms.ProxAt)."""
    q = co.num * np.maximum(d, co.lb)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where((D == 0.0) & (q == 0.0), 0.0, q / D)
    return np.minimum(t + co.k3, K1)


class _PerCopy:
    """The iteration with every per-copy array spelled out."""

    def __init__(self, model: HLMRF, alpha: float):
        A = model.A.copy()
        A.sort_indices()
        counts = np.diff(A.indptr)
        self.a, self.var = A.data.astype(float), A.indices.astype(np.int64)
        self.row = np.repeat(np.arange(model.m), counts)
        self.m, self.n, self.c, self.w, self.alpha = model.m, model.n, model.c, model.w, alpha
        aa = np.bincount(self.row, weights=self.a ** 2, minlength=model.m)
        self.co = coefficients(model.kind, model.p, model.w, aa)
        self.deg = np.bincount(self.var, minlength=model.n).astype(float)

    def step(self, z, u, rho):
        a, var, row, alpha = self.a, self.var, self.row, self.alpha
        K1, D = prox_bounds(self.co, self.w, rho)
        zv = z[var]
        v = zv - u
        d = np.bincount(row, weights=a * v, minlength=self.m) - self.c
        t = _prox_unfolded(self.co, d, K1, D)
        x = v - t[row] * a
        xh = alpha * x + (1 - alpha) * zv
        mean = np.bincount(var, weights=xh + u, minlength=self.n) / np.maximum(self.deg, 1)
        z_new = np.where(self.deg > 0, np.clip(mean, 0.0, 1.0), z)
        zv_new = z_new[var]
        u_new = u + xh - zv_new
        dz = z_new - z
        norms = (np.sum((x - zv_new) ** 2), np.sum(self.deg * dz * dz), np.sum(x * x),
                 np.sum(zv_new ** 2), np.sum(u_new ** 2))
        return z_new, u_new, t, norms


def _with_constant_rows(model: HLMRF, rng) -> HLMRF:
    """The model plus two rows without copies (constant terms, as ``HLMRF.from_rows`` allows)."""
    rows = []
    A = model.A.tocsr()
    for i in range(model.m):
        lo, hi = A.indptr[i], A.indptr[i + 1]
        rows.append((dict(zip(A.indices[lo:hi].tolist(), A.data[lo:hi].tolist())), float(model.c[i]),
                     float(model.w[i]), int(model.p[i]), int(model.kind[i]), 0))
    rows.insert(int(rng.integers(len(rows) + 1)), ({}, -0.3, 0.7, 1, int(Kind.HINGE), 0))
    rows.append(({}, 0.2, 0.4, 2, int(Kind.HINGE), 0))
    return HLMRF.from_rows(rows, model.n)


def _kernel(model: HLMRF, alpha: float, parts: int, threads: int):
    """The numpy kernel with its rows cut into about ``parts`` ranges (a test model is far below
    admm.COPIES_PER_PART), run on ``threads`` threads."""
    old = admm.COPIES_PER_PART
    admm.COPIES_PER_PART = max(1, model.A.nnz // parts)
    try:
        return admm._NumpyKernel(model, alpha, threads=threads)
    finally:
        admm.COPIES_PER_PART = old


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), alpha=st.sampled_from([1.0, 1.6, 1.9]),
       constraints=st.integers(0, 4), constant_rows=st.booleans(), rho=st.floats(0.2, 5.0),
       warm=st.booleans(), parts=st.integers(1, 4), threads=st.sampled_from([1, 2]))
def test_numpy_kernel_steps_equal_the_per_copy_iteration(seed, alpha, constraints, constant_rows, rho, warm,
                                                         parts, threads):
    rng = np.random.default_rng(seed)
    model = random_model(rng, int(rng.integers(3, 25)), int(rng.integers(1, 60)),
                         kinds=("linear", "hinge"), constraints=constraints,
                         squared_share=float(rng.uniform(0, 1)))
    if constant_rows:
        model = _with_constant_rows(model, rng)
    kern, ref = _kernel(model, alpha, parts, threads), _PerCopy(model, alpha)
    z = rng.uniform(0, 1, model.n)
    u = rng.normal(0, 0.3, kern.L) if warm else np.zeros(kern.L)
    if warm:  # duals not of the kernel's row form
        kern.duals.set_per_copy(u.copy())
    t = np.zeros(model.m)
    z_ref, u_ref = z.copy(), u.copy()
    for it in range(9):  # runs of one, two and three steps without completing
        complete = it in (1, 4, 8)
        if it == 6:  # a rescaled rho (solve_admm's residual balancing)
            rho *= 2.0
            kern.duals.scale(2.0)
            u_ref = u_ref / 2.0
        z, norms = kern.step(z, t, rho, complete)
        z_ref, u_ref, t_ref, norms_ref = ref.step(z_ref, u_ref, rho)
        np.testing.assert_allclose(z, z_ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(t, t_ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(kern.duals.per_copy(), u_ref, rtol=1e-10, atol=1e-12)
        if complete:
            np.testing.assert_allclose(norms, norms_ref, rtol=1e-9, atol=1e-12)
        else:
            assert norms is None


def test_row_parts_cover_the_rows_in_order():
    indptr = np.r_[0, np.cumsum(np.random.default_rng(0).integers(0, 5, 1000))]
    old = admm.COPIES_PER_PART
    try:
        for per_part in (10**9, 1000, 300, 1):
            admm.COPIES_PER_PART = per_part
            parts = admm._row_parts(indptr)
            assert parts[0][0] == 0 and parts[-1][1] == 1000
            assert all(a < b for a, b in parts) and all(p[1] == q[0] for p, q in zip(parts, parts[1:]))
            assert len(parts) == max(1, min(admm.MAX_PARTS, indptr[-1] // per_part))
        assert admm._row_parts(np.zeros(1, np.int32)) == [(0, 0)]  # no rows: one empty part
    finally:
        admm.COPIES_PER_PART = old


def test_a_solve_on_row_parts_does_not_depend_on_the_thread_count():
    """The parts' sums are added in part order, so one thread or several give the same bits;
    and the parts only regroup sums, so cutting the rows changes the result by rounding only."""
    from hlmrf.inference.settings import AdmmSettings

    model = random_model(np.random.default_rng(5), 60, 400, kinds=("linear", "hinge"), constraints=3,
                         squared_share=0.5)
    old = admm.COPIES_PER_PART
    try:
        admm.COPIES_PER_PART = model.A.nnz // 3
        one, two, many = (admm.solve_admm(model, AdmmSettings(kernel="numpy", threads=k)) for k in (1, 2, 8))
    finally:
        admm.COPIES_PER_PART = old
    whole = admm.solve_admm(model, AdmmSettings(kernel="numpy"))
    assert one.status.value == "converged" and one.iterations == two.iterations == many.iterations
    assert np.array_equal(one.y, two.y) and np.array_equal(one.y, many.y) and one.energy == two.energy
    assert whole.iterations == one.iterations
    np.testing.assert_allclose(whole.y, one.y, rtol=0, atol=1e-10)


def _solve_on_threads(model, conn):
    from hlmrf.inference.settings import AdmmSettings

    conn.send(admm.solve_admm(model, AdmmSettings(kernel="numpy", threads=2)).y)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_forked_child_solves_on_threads():
    """A child forked after a threaded solve inherits the pool's object but none of its threads:
    the kernel makes a new pool there instead of waiting on the dead one."""
    import multiprocessing as mp

    from hlmrf.inference.settings import AdmmSettings

    model = random_model(np.random.default_rng(7), 30, 200, kinds=("linear", "hinge"))
    old = admm.COPIES_PER_PART
    admm.COPIES_PER_PART = model.A.nnz // 2
    try:
        here = admm.solve_admm(model, AdmmSettings(kernel="numpy", threads=2)).y
        ctx = mp.get_context("fork")
        a, b = ctx.Pipe()
        child = ctx.Process(target=_solve_on_threads, args=(model, b))
        child.start()
        got = a.recv() if a.poll(60) else None
        child.join(10)
        if child.is_alive():
            child.kill()
    finally:
        admm.COPIES_PER_PART = old
    assert got is not None, "the forked child's threaded solve hung"
    np.testing.assert_array_equal(got, here)

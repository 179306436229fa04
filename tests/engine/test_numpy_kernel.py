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

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from hlmrf.inference import admm
from hlmrf.model.hlmrf import HLMRF
from hlmrf.model.terms import Kind, coefficients, prox_bounds, prox_step
from hlmrf.testing.random_models import random_model


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
        t = prox_step(self.co, d, K1, D, zero_den=np.flatnonzero(D == 0.0))
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


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), alpha=st.sampled_from([1.0, 1.6, 1.9]),
       constraints=st.integers(0, 4), constant_rows=st.booleans(), rho=st.floats(0.2, 5.0),
       warm=st.booleans())
def test_numpy_kernel_steps_equal_the_per_copy_iteration(seed, alpha, constraints, constant_rows, rho, warm):
    rng = np.random.default_rng(seed)
    model = random_model(rng, int(rng.integers(3, 25)), int(rng.integers(1, 60)),
                         kinds=("linear", "hinge"), constraints=constraints,
                         squared_share=float(rng.uniform(0, 1)))
    if constant_rows:
        model = _with_constant_rows(model, rng)
    kern, ref = admm._NumpyKernel(model, alpha), _PerCopy(model, alpha)
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

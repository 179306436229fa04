"""The layer's gradients against finite differences, a dense KKT solve at the exact optimum
(active set from the exact solver's duals) and, when installed, cvxpylayers on the same QP.

Random models mix linear and squared hinges, with and without hard constraints, plus a weak
squared prior on every variable so the MAP state is unique. Points near a change of active set
(degenerate: the gradient is one-sided there) are skipped, detected by the reference's margins
and by finite differences at two step sizes disagreeing. The hypothesis tests are derandomized:
the same examples on every run, so CI does not depend on the draw.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

torch = pytest.importorskip("torch")

from hlmrf.inference.settings import AdmmSettings  # noqa: E402
from hlmrf.nn import PSLLayer, template_from_model  # noqa: E402

TIGHT = AdmmSettings(eps_abs=1e-10, eps_rel=1e-9, gap_rel=1e-9, gap_abs=1e-12, constraint_tol=1e-9)
CASES = st.tuples(st.integers(0, 10_000), st.sampled_from([1.0, 0.5]), st.sampled_from([0, 2]))


def _layer(ref, seed, squared_share, constraints, learn_weights=False):
    model, B = ref.make_model(seed, squared_share, constraints)
    layer = PSLLayer.from_template(template_from_model(model, B), settings=TIGHT,
                                   learn_weights=learn_weights, warm_start=False)
    rng = np.random.default_rng(seed + 1)
    x = rng.uniform(0.05, 0.95, B.shape[1])
    g = rng.standard_normal(model.n)
    return model, B, layer, x, g


def _grad_x(layer, x, g):
    xt = torch.tensor(x, requires_grad=True)
    y = layer(xt)
    (y * torch.as_tensor(g)).sum().backward()
    return y.detach().numpy(), xt.grad.numpy()


def _solve(layer, x):
    with torch.no_grad():
        return layer(torch.tensor(x)).numpy()


def _fd(layer, x, g, h):
    out = np.zeros(len(x))
    for j in range(len(x)):
        e = np.zeros(len(x))
        e[j] = h
        out[j] = g @ (_solve(layer, np.clip(x + e, 0, 1)) - _solve(layer, np.clip(x - e, 0, 1))) / (2 * h)
    return out


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.filter_too_much])
@given(CASES)
def test_input_gradient_matches_finite_differences(ref, case):
    seed, squared_share, constraints = case
    model, B, layer, x, g = _layer(ref, seed, squared_share, constraints)
    _, grad = _grad_x(layer, x, g)
    # y* is piecewise affine in x (a QP's constants move): central differences are exact on a
    # piece, so two step sizes agree unless the active set changes inside the step.
    fd1, fd2 = _fd(layer, x, g, 1e-3), _fd(layer, x, g, 5e-4)
    assume(np.allclose(fd1, fd2, atol=1e-5, rtol=1e-4))
    scale = max(1.0, np.abs(fd1).max())
    assert np.allclose(grad, fd1, atol=2e-5 * scale, rtol=1e-4), (grad, fd1)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(CASES)
def test_input_gradient_matches_a_dense_kkt_solve_at_the_exact_optimum(ref, case):
    pytest.importorskip("cvxpy")
    seed, squared_share, constraints = case
    model, B, layer, x, g = _layer(ref, seed, squared_share, constraints)
    J = ref.dense_jacobian(model, B, x)
    assume(J is not None)
    y, grad = _grad_x(layer, x, g)
    y_exact = ref.exact_solve(model, model.c - B @ x, model.w)[0]
    assert np.allclose(y, y_exact, atol=1e-6)
    assert np.allclose(grad, g @ J, atol=1e-5, rtol=1e-4), (grad, g @ J)


@pytest.mark.parametrize("squared_share, constraints", [(1.0, 0), (1.0, 2), (0.5, 0), (0.5, 2)])
def test_weight_gradient_matches_finite_differences(ref, squared_share, constraints):
    for seed in range(20):  # the first seed whose point is not degenerate
        model, B, layer, x, g = _layer(ref, seed, squared_share, constraints, learn_weights=True)
        xt = torch.tensor(x)
        y = layer(xt)
        (y * torch.as_tensor(g)).sum().backward()
        grad = layer.log_weights.grad.numpy().copy()
        base = layer.log_weights.detach().clone()
        fds = []
        for h in (1e-4, 5e-5):
            fd = np.zeros(len(grad))
            for r in range(len(grad)):
                vals = []
                for sgn in (1, -1):
                    with torch.no_grad():
                        layer.log_weights.copy_(base)
                        layer.log_weights[r] += sgn * h
                        vals.append(g @ layer(xt).numpy())
                fd[r] = (vals[0] - vals[1]) / (2 * h)
            fds.append(fd)
        with torch.no_grad():
            layer.log_weights.copy_(base)
        # Skip degenerate points, and points where the state is pinned by kinks and bounds so
        # that the weights do not move it (a zero gradient would test little).
        if not np.allclose(fds[0], fds[1], atol=1e-5, rtol=1e-3) or np.abs(fds[0]).max() < 1e-3:
            continue
        assert np.allclose(grad, fds[0], atol=2e-5, rtol=2e-3), (grad, fds[0])
        return
    pytest.fail("no non-degenerate point where the weights matter among 20 seeds")


def test_input_gradient_matches_cvxpylayers(ref):
    cp = pytest.importorskip("cvxpy")
    cvxpylayers = pytest.importorskip("cvxpylayers.torch")
    from hlmrf.model.terms import Kind

    checked = 0
    for seed in range(8):
        model, B, layer, x, g = _layer(ref, seed, 0.5, 2)
        if ref.dense_jacobian(model, B, x) is None:
            continue
        A, n, m = model.A.toarray(), model.n, model.m
        c = cp.Parameter(m)
        y = cp.Variable(n)
        d = A @ y - c
        soft_h = (model.kind == Kind.HINGE)
        lin = (model.kind == Kind.LINEAR)
        terms = []
        for i in range(m):
            if soft_h[i]:
                f = cp.pos(d[i])
            elif lin[i]:
                f = d[i]
            else:
                continue
            terms.append(model.w[i] * (cp.square(f) if model.p[i] == 2 else f))
        cons = [y >= 0, y <= 1]
        cons += [d[i] <= 0 for i in np.flatnonzero(model.kind == Kind.LEQ)]
        cons += [d[i] == 0 for i in np.flatnonzero(model.kind == Kind.EQ)]
        prob = cp.Problem(cp.Minimize(cp.sum(cp.hstack(terms))), cons)
        cvx = cvxpylayers.CvxpyLayer(prob, parameters=[c], variables=[y])
        xt = torch.tensor(x, requires_grad=True)
        ct = torch.as_tensor(model.c) - torch.as_tensor(B) @ xt
        (y_ref,) = cvx(ct, solver_args={"solve_method": "Clarabel"})
        (y_ref * torch.as_tensor(g)).sum().backward()
        grad_ref = xt.grad.numpy()
        y_ours, grad = _grad_x(layer, x, g)
        assert np.allclose(y_ours, y_ref.detach().numpy(), atol=1e-4)
        assert np.allclose(grad, grad_ref, atol=1e-3, rtol=1e-2), (grad, grad_ref)
        checked += 1
    assert checked >= 3


def test_float32_gradient_is_close_to_float64(ref):
    model, B, layer64, x, g = _layer(ref, 3, 1.0, 2)
    _, g64 = _grad_x(layer64, x, g)
    layer32 = PSLLayer.from_template(layer64.template)
    xt = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    y = layer32(xt)
    assert y.dtype == torch.float32
    (y * torch.as_tensor(g, dtype=torch.float32)).sum().backward()
    assert xt.grad.dtype == torch.float32
    assert np.allclose(xt.grad.numpy(), g64, atol=5e-3 * max(1.0, np.abs(g64).max()))


def test_batch_rows_are_independent_and_match_single_solves(ref):
    model, B, layer, _, g = _layer(ref, 5, 0.5, 2)
    rng = np.random.default_rng(0)
    X = rng.uniform(0.05, 0.95, (5, B.shape[1]))
    xt = torch.tensor(X, requires_grad=True)
    Y = layer(xt)
    (Y * torch.as_tensor(g)).sum().backward()
    for b in range(5):
        y1, g1 = _grad_x(layer, X[b], g)
        assert np.allclose(Y[b].detach().numpy(), y1, atol=1e-7)
        assert np.allclose(xt.grad[b].numpy(), g1, atol=1e-7)


def test_warm_start_gives_the_same_answer(ref):
    # Only the state is carried over (solve_batch takes y0, not the scaled duals or rho), and on
    # these models that saves no iterations; the answer must not change beyond the tolerance.
    model, B, _, x, _ = _layer(ref, 7, 0.5, 2)
    layer = PSLLayer.from_template(template_from_model(model, B), warm_start=True)
    X = torch.tensor(np.random.default_rng(1).uniform(0.05, 0.95, (8, B.shape[1])))
    cold = layer(X)
    warm = layer(X)
    assert layer._last_y is not None
    assert torch.allclose(cold, warm, atol=5e-5)
    exact = np.stack([ref.exact_solve(model, model.c - B @ xb, model.w)[0] for xb in X.numpy()])
    assert np.allclose(warm.numpy(), exact, atol=5e-5)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-6), (torch.float32, 5e-3)])
def test_cuda_matches_cpu(ref, dtype, tol):
    model, B, layer, x, g = _layer(ref, 11, 0.5, 2)
    _, g_cpu = _grad_x(layer, x, g)
    cuda = PSLLayer.from_template(layer.template, warm_start=False)
    xt = torch.tensor(x, dtype=dtype, device="cuda", requires_grad=True)
    y = cuda(xt)
    assert y.device.type == "cuda" and y.dtype == dtype
    (y * torch.as_tensor(g, dtype=dtype, device="cuda")).sum().backward()
    assert xt.grad.device.type == "cuda"
    assert np.allclose(xt.grad.cpu().numpy(), g_cpu, atol=tol * max(1.0, np.abs(g_cpu).max()))

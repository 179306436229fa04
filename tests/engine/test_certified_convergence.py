"""CONVERGED is a certificate: checked against cvxpy optima on models where a loose rule fails.

The corpus: the 18 psl-examples models (their own rules, synthetic facts: ``hlmrf.testing.psl_corpus``), PSL
programs with weighted linear equalities, many tiny potentials and summation constraints, and
random all-linear hinge models. The old stopping rule (a gap allowance of ``eps_abs * m``)
reported CONVERGED on states up to 2.9% (citeseer) and 31% (imdb-er, optimum 4.5e-4) above the optimum on this corpus.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hlmrf.inference.admm import solve_admm
from hlmrf.inference.polish import certificate, polish
from hlmrf.inference.result import Status
from hlmrf.inference.settings import AdmmSettings
from hlmrf.model.hlmrf import HLMRF
from hlmrf.model.terms import Kind
from hlmrf.testing.certificate_programs import PROGRAMS, program_model
from hlmrf.testing.psl_corpus import NAMES, corpus_model
from hlmrf.testing.random_models import random_model

pytest.importorskip("cvxpy")
from hlmrf.inference.check import solve_cvxpy  # noqa: E402

DEFAULT = AdmmSettings()


def assert_certified(model: HLMRF, res, ref) -> None:
    """The contract of a default solve: certified within 1e-4 relative, constraints within 1e-5,
    and the reported lower bound really is below the optimum."""
    tol = DEFAULT.gap_rel * abs(ref.energy) + DEFAULT.gap_abs
    assert res.lower_bound <= ref.energy + 1e-9 * max(1.0, abs(ref.energy)), (res.lower_bound, ref.energy)
    if res.status == Status.CONVERGED:
        assert res.gap <= DEFAULT.gap_rel * abs(res.energy) + DEFAULT.gap_abs
        assert res.violation <= DEFAULT.constraint_tol
        assert res.energy - ref.energy <= tol + 1e-12, (res.energy, ref.energy)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("lastfm", "yelp")])
@pytest.mark.parametrize("seed", [0, 1])
def test_psl_examples_default_solve_is_certified(name, seed):
    model = corpus_model(name, seed)
    ref = solve_cvxpy(model)
    res = solve_admm(model)
    assert res.status == Status.CONVERGED
    assert_certified(model, res, ref)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
@pytest.mark.parametrize("k,seed", [(8, 0), (12, 1)])
def test_hinge_heavy_programs_are_certified(name, k, seed):
    model = program_model(*PROGRAMS[name], k, seed)
    ref = solve_cvxpy(model)
    res = solve_admm(model)
    assert res.status == Status.CONVERGED
    assert_certified(model, res, ref)


@pytest.mark.parametrize("seed", range(3))
def test_random_linear_hinge_models_are_certified(seed):
    rng = np.random.default_rng(seed)
    model = random_model(rng, 200, 2000, squared_share=0.0, constraints=10, weights=(1e-4, 1.0))
    ref = solve_cvxpy(model)
    res = solve_admm(model)
    assert res.status == Status.CONVERGED
    assert_certified(model, res, ref)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 15), m=st.integers(1, 60),
       squared=st.sampled_from([0.0, 0.5, 1.0]), cons=st.integers(0, 3),
       max_iter=st.sampled_from([1, 7, 60, 25_000]), polish_on=st.booleans())
def test_any_stop_is_honest(seed, n, m, squared, cons, max_iter, polish_on):
    """Whatever stops the solve, the lower bound is below the optimum, and CONVERGED means the
    energy is within the certified tolerance of it."""
    model = random_model(np.random.default_rng(seed), n, m, squared_share=squared, constraints=cons)
    ref = solve_cvxpy(model)
    res = solve_admm(model, AdmmSettings(max_iter=max_iter, polish=polish_on))
    assert np.isfinite(res.energy) and np.isfinite(res.lower_bound)
    assert_certified(model, res, ref)
    if res.status != Status.CONVERGED:
        assert res.gap > DEFAULT.gap_rel * abs(res.energy) + DEFAULT.gap_abs or \
            res.violation > DEFAULT.constraint_tol


def test_iteration_limit_reports_the_uncertified_gap():
    model = program_model(*PROGRAMS["symmetric-equality"], 10, 3)
    res = solve_admm(model, AdmmSettings(max_iter=10, polish=False))
    assert res.status == Status.ITERATION_LIMIT
    assert res.gap > 1e-4 * abs(res.energy) and np.isfinite(res.gap)
    assert res.extra["lower_bound"] == res.lower_bound


def test_polish_recovers_the_exact_optimum_of_a_small_lp():
    # min max(0, y0 + y1 - 1) + 0.5 (1 - y0) + 0.2 y1  s.t.  y0 - y1 <= 0.3: the optimum is
    # y = (0.65, 0.35), energy 0.245, with the hinge and the constraint both at their kinks.
    rows = [({0: 1.0, 1: 1.0}, 1.0, 1.0, 1, Kind.HINGE, 0),
            ({0: -1.0}, -1.0, 0.5, 1, Kind.LINEAR, 0),
            ({1: 1.0}, 0.0, 0.2, 1, Kind.LINEAR, 0),
            ({0: 1.0, 1: -1.0}, 0.3, 0.0, 1, Kind.LEQ, 1)]
    model = HLMRF.from_rows(rows, 2)
    ref = solve_cvxpy(model)
    assert abs(ref.energy - 0.245) < 1e-9
    res = solve_admm(model)
    assert res.status == Status.CONVERGED and abs(res.energy - 0.245) <= 1e-12
    np.testing.assert_allclose(res.y, [0.65, 0.35], atol=1e-12)
    assert res.gap <= 1e-12  # the polished multipliers close the gap
    # Weak duality: any multipliers bound the optimum from below, a wrong guess included.
    for theta in (np.zeros(4), np.r_[1.0, 0.5, 0.2, 5.0], np.r_[-3.0, 9.0, 0.0, -1.0]):
        assert certificate(model, res.y, theta).lower_bound <= 0.245 + 1e-12
    # A wrong active set (nothing active) gives a state the certificate rejects as infeasible.
    out = polish(model, np.r_[0.9, 0.5], np.r_[0.0, 0.5, 0.2, 0.0])
    assert out is not None
    c2 = certificate(model, *out)
    assert c2.lower_bound <= 0.245 + 1e-12
    assert c2.violation > 1e-3 or c2.energy >= 0.245 - 1e-12


def test_polish_skips_models_over_its_size_limit():
    model = random_model(np.random.default_rng(0), 50, 300, squared_share=0.0)
    res = solve_admm(model, AdmmSettings(polish_max_dim=1))
    assert res.extra["polished"] is False
    assert polish(model, res.y, np.zeros(model.m), max_dim=1) is None

    def never():
        raise AssertionError("multipliers gathered for a model too large to polish")

    # the multipliers may be given as a function: not called when the size checks fail ...
    assert polish(model, res.y, never, max_dim=1) is None
    # ... and the same polish as with the array when they pass
    theta = np.random.default_rng(1).uniform(0.0, 1.0, model.m)
    a, b = polish(model, res.y, theta), polish(model, res.y, lambda: theta)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_batched_torch_solver_certifies_linear_models_by_polishing():
    """Linear-hinge models leave the batch when their residuals are small, are polished on the CPU,
    and only a certified state is CONVERGED; the answers match cvxpy."""
    pytest.importorskip("torch")
    from hlmrf.inference.torch_admm import solve_batch
    from hlmrf.testing.random_models import clevr_like_model

    rng = np.random.default_rng(5)
    models = [clevr_like_model(rng, squared_share=0.0) for _ in range(12)]
    models += [program_model(*PROGRAMS["symmetric-equality"], 6, s) for s in range(3)]
    results = solve_batch(models)
    for model, res in zip(models, results):
        ref = solve_cvxpy(model)
        assert res.status == Status.CONVERGED
        assert_certified(model, res, ref)
    assert any(r.extra.get("polished") for r in results)


@pytest.mark.parametrize("solver", ["numpy", "torch"])
def test_negative_weights_get_no_certificate_or_a_clean_error(solver):
    """A negative weight makes the energy non-convex: no lower bound exists, so none is claimed
    (gap nan) and nothing is polished; where the iterates diverge (a negative squared weight makes
    the prox step unbounded) the solve raises SolverError naming the cause, never returns nan."""
    from dataclasses import replace

    from hlmrf.errors import SolverError

    def solve(model):
        if solver == "torch":
            pytest.importorskip("torch")
            from hlmrf.inference.torch_admm import solve_batch

            return solve_batch([model], AdmmSettings(max_iter=2000))[0]
        return solve_admm(model, AdmmSettings(max_iter=2000))

    base = random_model(np.random.default_rng(3), 10, 40, squared_share=0.0)
    w = base.w.copy()
    w[:3] = -0.01 * w[:3]  # small negative linear weights: stays bounded
    res = solve(replace(base, w=w))
    assert np.isnan(res.lower_bound) and np.isnan(res.gap)
    assert np.isfinite(res.energy) and np.all((res.y >= 0) & (res.y <= 1))
    if solver == "numpy":
        assert "non-convex" in res.extra["certificate"] and not res.extra["polished"]
    squared = random_model(np.random.default_rng(3), 10, 40, squared_share=1.0)
    w = squared.w.copy()
    w[:5] = -w[:5]
    with pytest.raises(SolverError, match="negative weights.*weight >= 0"):
        solve(replace(squared, w=w))


def test_a_nan_lower_bound_certifies_nothing():
    from hlmrf.inference.polish import Certificate

    cert = Certificate(energy=1.0, lower_bound=float("nan"), violation=0.0)
    assert cert.gap == float("inf") and not cert.holds(1e-4, 1e-7, 1e-5)


@pytest.mark.parametrize("kernel", ["numpy", "numba"])
def test_rows_without_copies_keep_the_bound_finite(kernel):
    """Constant terms (a row with no copies, as a model built by hand can have): active and
    inactive hinges, linear and squared. ``0 / 0`` in their prox step used to make the bound nan,
    and ``max(0, nan)`` then passed the certificate. Checked against cvxpy on the same model."""
    if kernel == "numba":
        pytest.importorskip("numba")
    rng = np.random.default_rng(5)
    rows = [({int(j): float(rng.choice([-1.0, 1.0])) for j in rng.choice(6, 2, replace=False)},
             float(rng.uniform(-0.5, 0.8)), float(rng.uniform(0.5, 2.0)), int(rng.choice([1, 2])),
             int(Kind.HINGE), 0) for _ in range(20)]
    rows += [({}, -0.3, 1.0, 1, int(Kind.HINGE), 0), ({}, 0.3, 1.0, 1, int(Kind.HINGE), 0),
             ({}, -0.4, 2.0, 2, int(Kind.HINGE), 0), ({}, 0.2, 1.0, 2, int(Kind.HINGE), 0)]
    model = HLMRF.from_rows(rows, 6)
    res = solve_admm(model, AdmmSettings(kernel=kernel))
    ref = solve_cvxpy(model)
    assert np.isfinite(res.lower_bound) and res.status == Status.CONVERGED
    assert_certified(model, res, ref)
    # the constant rows' energy (0.3 + 2.0 * 0.4^2) is part of both
    assert ref.energy >= 0.3 + 0.32 - 1e-9


@pytest.mark.parametrize("solver", ["torch", "numpy-batch"])
def test_batched_solvers_certify_models_with_rows_without_copies(solver):
    """The batched solvers' prox takes 0 / 0 as 0 too: a constant inactive hinge left them at the
    iteration limit (a nan multiplier, so no bound), though the state was optimal."""
    rows = [({0: 1.0}, 0.5, 1.0, 1, int(Kind.HINGE), 0), ({}, 0.3, 1.0, 1, int(Kind.HINGE), 0),
            ({}, -0.3, 1.0, 1, int(Kind.HINGE), 0), ({0: -1.0, 1: 1.0}, 0.2, 1.0, 2, int(Kind.HINGE), 0)]
    model = HLMRF.from_rows(rows, 2)
    if solver == "torch":
        pytest.importorskip("torch")
        from hlmrf.inference.torch_admm import solve_batch as batch
    else:
        from hlmrf.inference.batch_numpy import solve_batch_numpy as batch
    ref = solve_cvxpy(model)
    for res in batch([model, model]):
        assert res.status == Status.CONVERGED and np.isfinite(res.lower_bound)
        assert_certified(model, res, ref)

"""ADMM on hard rows that contradict each other stops as INFEASIBLE at the first check from
``admm.INFEASIBILITY_CHECK_AFTER`` on (one LP on the hard rows), instead of running ``max_iter``;
the check changes no iterate of a feasible run."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import hlmrf
from hlmrf.errors import InfeasibleError
from hlmrf.inference import admm
from hlmrf.inference.admm import solve_admm
from hlmrf.inference.result import Status
from hlmrf.inference.settings import AdmmSettings
from hlmrf.model.hlmrf import HLMRF
from hlmrf.model.terms import Kind
from hlmrf.testing.random_models import random_model

KERNELS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(
    __import__("importlib").util.find_spec("numba") is None, reason="needs numba (pip install 'hlmrf[fast]')"))]


def _contradiction() -> HLMRF:
    """y0 >= 0.8 and y0 <= 0.3 (hard), y0 + y1 = 1, and a soft hinge on y1."""
    rows = [({0: -1.0}, -0.8, 0.0, 1, int(Kind.LEQ), 0), ({0: 1.0}, 0.3, 0.0, 1, int(Kind.LEQ), 1),
            ({0: 1.0, 1: 1.0}, 1.0, 0.0, 1, int(Kind.EQ), 2), ({1: 1.0}, 0.2, 1.0, 2, int(Kind.HINGE), 3)]
    return HLMRF.from_rows(rows, 2)


@pytest.mark.parametrize("kernel", KERNELS)
def test_contradicting_hard_rows_stop_at_the_check(kernel):
    res = solve_admm(_contradiction(), AdmmSettings(kernel=kernel))
    assert res.status == Status.INFEASIBLE
    assert admm.INFEASIBILITY_CHECK_AFTER <= res.iterations < admm.INFEASIBILITY_CHECK_AFTER + 5
    assert np.isfinite(res.y).all() and res.violation > 0.1  # the solver's best point, reported


def test_infer_raises_the_listing_after_the_check(tmp_path):
    (tmp_path / "facts").mkdir()
    (tmp_path / "rules.psl").write_text("Friends(A, B) -> Knows(A, B) .\nLived(A, B) -> !Knows(A, B) .\n"
                                        "1: !Knows(A, B) ^2\n")
    (tmp_path / "facts" / "friends_obs.txt").write_text("a\tb\n")
    (tmp_path / "facts" / "lived_obs.txt").write_text("a\tb\n")
    (tmp_path / "facts" / "knows_targets.txt").write_text("a\tb\n")
    program = hlmrf.load_rules(tmp_path / "rules.psl")
    with pytest.raises(InfeasibleError, match="Knows\\(a, b\\)"):
        hlmrf.infer(program, hlmrf.load_facts(tmp_path / "facts", program))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("seed", range(4))
def test_the_check_changes_no_iterate(monkeypatch, kernel, seed):
    """Feasible random models with hard rows, run a fixed number of iterations: with the check due
    from iteration 5 (it runs its LP or sees z feasible, then is done) and with it never due, the
    states and duals are the same bits."""
    model = random_model(np.random.default_rng(seed), 25, 60, constraints=5)
    settings = AdmmSettings(kernel=kernel, eps_abs=0.0, eps_rel=0.0, polish=False, max_iter=60)
    monkeypatch.setattr(admm, "INFEASIBILITY_CHECK_AFTER", 10**9)
    never = solve_admm(model, settings)
    monkeypatch.setattr(admm, "INFEASIBILITY_CHECK_AFTER", 5)
    early = solve_admm(model, settings)
    assert early.status == never.status == Status.ITERATION_LIMIT
    np.testing.assert_array_equal(early.y, never.y)
    np.testing.assert_array_equal(early.extra["state"]["u"], never.extra["state"]["u"])


def test_a_feasible_run_that_needs_the_lp_goes_on(monkeypatch):
    """Hard rows that hold only at y0 = 0.5 exactly (the state breaks them at the check): the LP
    finds them feasible and the run goes on to convergence."""
    rows = [({0: 1.0}, 0.5, 0.0, 1, int(Kind.EQ), 0), ({0: -1.0}, -0.9, 1.0, 2, int(Kind.HINGE), 1),
            ({1: 1.0}, 0.4, 1.0, 1, int(Kind.HINGE), 2)]
    model = HLMRF.from_rows(rows, 2)
    calls = []
    from hlmrf.inference import feasibility

    real = feasibility.hard_constraints_feasible
    monkeypatch.setattr(feasibility, "hard_constraints_feasible", lambda m: calls.append(1) or real(m))
    monkeypatch.setattr(admm, "INFEASIBILITY_CHECK_AFTER", 1)
    res = solve_admm(model, replace(AdmmSettings(kernel="numpy"), check_every=1))
    assert calls == [1] and res.status == Status.CONVERGED
    assert res.y[0] == pytest.approx(0.5, abs=1e-5)

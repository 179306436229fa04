"""``hlmrf.inference.duals``: the row form of ADMM's duals and the warm-start state built on it.

``Result.extra["state"]`` is a :class:`DualState`: ``state["u"]`` (one dual per copy) is formed on
first reading, and a warm start from it on the same matrix takes the row form over exactly; any
other state (a plain mapping, or a state from another matrix) goes through its per-copy duals.
Both routes must continue the solve alike.
"""
from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pytest

from hlmrf.inference.admm import solve_admm
from hlmrf.inference.duals import DualState
from hlmrf.inference.settings import AdmmSettings
from hlmrf.testing.random_models import random_model

NO_STOP = AdmmSettings(eps_abs=0.0, eps_rel=0.0, gap_abs=float("inf"), polish=False)


def _model(seed=5):
    return random_model(np.random.default_rng(seed), 20, 50, kinds=("linear", "hinge"), constraints=3,
                        squared_share=0.4)


@pytest.mark.parametrize("kernel", ["numpy", "numba"])
def test_state_is_a_mapping_of_per_copy_duals(kernel):
    if kernel == "numba":
        pytest.importorskip("numba")
    model = _model()
    res = solve_admm(model, replace(NO_STOP, max_iter=12, kernel=kernel))
    state = res.extra["state"]
    assert isinstance(state, DualState) and isinstance(state, Mapping)
    assert set(state) == {"u", "rho"} and len(state) == 2 and state["rho"] == res.rho
    assert state["u"].shape == (model.A.nnz,) and state["u"] is state["u"]  # formed once
    assert np.abs(state["u"]).max() > 0
    with pytest.raises(KeyError):
        state["tau"]
    again = pickle.loads(pickle.dumps(state))  # a plain mapping, without the model's matrix
    assert type(again) is dict and again["rho"] == state["rho"]
    np.testing.assert_array_equal(again["u"], state["u"])
    warm = solve_admm(model, replace(NO_STOP, max_iter=3, kernel=kernel), y0=res.y, state=again)
    np.testing.assert_allclose(
        warm.y, solve_admm(model, replace(NO_STOP, max_iter=3, kernel=kernel), y0=res.y, state=state).y,
        rtol=0, atol=1e-12)


@pytest.mark.parametrize("kernel", ["numpy", "numba"])
@pytest.mark.parametrize("alpha", [1.0, 1.6])
def test_warm_starts_from_row_form_and_from_per_copy_duals_agree(kernel, alpha):
    if kernel == "numba":
        pytest.importorskip("numba")
    model = _model()
    st = replace(NO_STOP, kernel=kernel, alpha=alpha)
    first = solve_admm(model, replace(st, max_iter=17))
    state = first.extra["state"]
    plain = {"u": np.array(state["u"]), "rho": state["rho"]}
    exact = solve_admm(model, replace(st, max_iter=11), y0=first.y, state=state)
    via_u = solve_admm(model, replace(st, max_iter=11), y0=first.y, state=plain)
    other = replace(model, A=model.A.copy())  # same rows, another matrix object: per-copy route
    via_other = solve_admm(other, replace(st, max_iter=11), y0=first.y, state=state)
    np.testing.assert_allclose(via_u.y, exact.y, rtol=0, atol=1e-12)
    np.testing.assert_allclose(via_other.y, exact.y, rtol=0, atol=1e-12)
    np.testing.assert_allclose(via_u.extra["state"]["u"], exact.extra["state"]["u"], rtol=0, atol=1e-11)
    # and the warm start continues the first solve: 17 + 11 steps equal 28 from the start
    # (up to the stopping-rule checks, which land on other iterations; rho does not adapt here)
    whole = solve_admm(model, replace(st, max_iter=28, adaptive_rho=False))
    first = solve_admm(model, replace(st, max_iter=17, adaptive_rho=False))
    cont = solve_admm(model, replace(st, max_iter=11, adaptive_rho=False), y0=first.y,
                      state=first.extra["state"])
    np.testing.assert_allclose(cont.y, whole.y, rtol=0, atol=1e-12)


def test_a_state_of_other_shape_is_ignored():
    model = _model()
    cold = solve_admm(model, replace(NO_STOP, max_iter=6))
    warm = solve_admm(model, replace(NO_STOP, max_iter=6), state={"u": np.ones(3), "rho": 9.0})
    np.testing.assert_array_equal(warm.y, cold.y)
    assert warm.rho == cold.rho


def test_a_malformed_state_is_a_clean_error():
    """A warm start that is not a result's state names what it must be; one whose duals are for
    another model's copies (another shape) is ignored, as documented."""
    from hlmrf.errors import SettingsError

    model = _model()
    first = solve_admm(model, replace(NO_STOP, max_iter=5))
    u = np.asarray(first.extra["state"]["u"])
    bad = [([1, 2], "mapping"), ({"u": u}, "rho"), ({"u": u, "rho": 0.0}, "rho"),
           ({"u": u, "rho": "x"}, "rho"), ({"u": u, "rho": float("nan")}, "rho"),
           ({"u": np.where(np.arange(len(u)) == 3, np.nan, u), "rho": 1.0}, "finite"),
           ({"u": np.array(["a"] * len(u)), "rho": 1.0}, "finite")]
    for state, what in bad:
        with pytest.raises(SettingsError, match=what):
            solve_admm(model, replace(NO_STOP, max_iter=3), y0=first.y, state=state)
    other_shape = solve_admm(model, replace(NO_STOP, max_iter=3), state={"u": u[:-1], "rho": 2.0})
    cold = solve_admm(model, replace(NO_STOP, max_iter=3))
    np.testing.assert_array_equal(other_shape.y, cold.y)

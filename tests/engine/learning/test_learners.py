"""Learners on synthetic data drawn from known weights, gradients against independent checks."""
import numpy as np
import pytest
from scipy.integrate import quad

import hlmrf
import hlmrf.testing.learning_synthetic as S
from hlmrf.errors import DataError, SettingsError
from hlmrf.learning import (MapLossLearner, MaxPseudoLikelihood, VotedPerceptron, make_learner,
                            map_gradient, truth_vector)
from hlmrf.learning import base as learning_base
from hlmrf.model.hlmrf import HLMRF
from hlmrf.model.terms import Kind


@pytest.fixture(scope="module")
def problem():
    program = S.program()
    return program, S.facts(seed=0), S.facts(seed=1)


def heldout_mse(program, store, w):
    model = hlmrf.ground(program, store)
    truth = truth_vector(model, store)
    y = hlmrf.solve_admm(model.with_weights(w).normalized(), S.TIGHT).y
    return float(np.mean((y - truth) ** 2))


LEARNERS = {
    "perceptron": lambda: VotedPerceptron(init="uniform", schedule=False, epochs=30),
    "pseudolikelihood": lambda: MaxPseudoLikelihood(init="uniform"),
    "mse": lambda: MapLossLearner(loss="mse", init="uniform", epochs=30),
    "bce": lambda: MapLossLearner(loss="bce", init="uniform", epochs=30),
}


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_learner_moves_toward_true_weights_and_beats_uniform(problem, name):
    program, train, test = problem
    learner = LEARNERS[name]().fit(program, train)
    w = learner.weights_
    assert learner is not None and w.shape == (4,) and np.all(w >= 0)
    # w* has A -> Y four times B -> !Y; uniform starts at 1.
    ratio = w[0] / max(w[1], 1e-12)
    assert ratio > 1.8, (name, w)
    assert heldout_mse(program, test, w) < 0.5 * heldout_mse(program, test, np.ones(4)), (name, w)
    assert len(learner.history_) >= 1 and learner.history_[0].epoch == 1


def test_map_loss_recovers_the_weight_ratios(problem):
    program, train, _ = problem
    w = MapLossLearner(init="uniform", epochs=40).fit(program, train).weights_
    np.testing.assert_allclose(w / w[1], S.W_STAR / S.W_STAR[1], rtol=0.1)


def test_perceptron_reference_step_and_averaging(problem):
    # One epoch by hand: w1 = w0 + step * (Phi(MAP) - Phi(truth)) / n_r, averaged over 1 step.
    program, train, _ = problem
    model = hlmrf.ground(program, train)
    truth = truth_vector(model, train)
    w0 = np.array([1.0, 2.0, 1.0, 1.0])
    unit = model.with_weights(np.ones(4))
    y = hlmrf.solve_admm(model.with_weights(w0).normalized()).y
    n_r = np.bincount(model.rule, minlength=4)
    expect = np.maximum(w0 + 0.5 * (unit.energy_by_rule(y) - unit.energy_by_rule(truth)) / n_r, 0)
    learner = VotedPerceptron(init=w0, step_size=0.5, epochs=1).fit(program, train)
    np.testing.assert_allclose(learner.weights_, expect, atol=2e-3)


def _tiny_quadratic_model():
    # y0, y1 in [0,1]: w0 (y0 - 0.8)^2 + w1 (y1 - y0)^2 + w2 max(0, y1 - 0.3)^2 (one rule each)
    rows = [({0: 1.0}, 0.8, 1.0, 2, Kind.LINEAR, 0),
            ({0: -1.0, 1: 1.0}, 0.0, 1.0, 2, Kind.LINEAR, 1),
            ({1: 1.0}, 0.3, 1.0, 2, Kind.HINGE, 2)]
    return HLMRF.from_rows(rows, 2)


def test_implicit_gradient_matches_finite_differences():
    model = _tiny_quadratic_model()
    w = np.array([1.0, 0.7, 2.0])
    truth = np.array([0.2, 0.9])
    settings = hlmrf.AdmmSettings(eps_abs=1e-10, eps_rel=1e-10, max_iter=200_000)

    def loss(wv):
        y = hlmrf.solve_admm(model.with_weights(wv), settings).y
        return float(np.sum((y - truth) ** 2)), y

    f0, y = loss(w)
    grad = map_gradient(model.with_weights(w), y, 2 * (y - truth), 3)
    h = 1e-5
    fd = np.array([(loss(w + h * e)[0] - loss(w - h * e)[0]) / (2 * h) for e in np.eye(3)])
    np.testing.assert_allclose(grad, fd, rtol=1e-3, atol=1e-6)


def test_implicit_gradient_with_an_equality_constraint():
    # Hard y0 = y1 couples the two; both pulled by squared terms toward 0.2 and 0.6.
    rows = [({0: 1.0}, 0.2, 1.0, 2, Kind.LINEAR, 0),
            ({1: 1.0}, 0.6, 1.0, 2, Kind.LINEAR, 1),
            ({0: 1.0, 1: -1.0}, 0.0, 0.0, 1, Kind.EQ, 2)]
    model = HLMRF.from_rows(rows, 2)
    w = np.array([1.0, 3.0, 0.0])
    y = hlmrf.solve_admm(model.with_weights(w), hlmrf.AdmmSettings(eps_abs=1e-10, eps_rel=1e-10)).y
    # Closed form y = (0.2 w0 + 0.6 w1) / (w0 + w1); L = y0 (identity loss) -> dL/dw0 = (0.2 - y)/(w0+w1)
    yc = (0.2 * w[0] + 0.6 * w[1]) / (w[0] + w[1])
    assert y[0] == pytest.approx(yc, abs=1e-6)
    grad = map_gradient(model.with_weights(w), y, np.array([1.0, 0.0]), 3)
    np.testing.assert_allclose(grad[:2], [(0.2 - yc) / 4.0, (0.6 - yc) / 4.0], atol=1e-6)


def test_pseudolikelihood_matches_quadrature():
    # One variable: w0 max(0, 0.9 - y)^2 + w1 y (linear) ; truth y = 0.7.
    rows = [({0: -1.0}, -0.9, 1.0, 2, Kind.HINGE, 0), ({0: 1.0}, 0.0, 1.0, 1, Kind.LINEAR, 1)]
    model = HLMRF.from_rows(rows, 1)
    w = np.array([3.0, 0.5])
    learner = MaxPseudoLikelihood(grid=2001, l2=0.0, epochs=1)
    learner.fit(model, np.array([0.7]))
    nll, grad = learner.objective(w)

    def energy(t, wv):
        return wv[0] * max(0.0, 0.9 - t) ** 2 + wv[1] * t

    def nll_quad(wv):
        z = quad(lambda t: np.exp(-energy(t, wv)), 0, 1, points=[0.9])[0]
        return energy(0.7, wv) + np.log(z)

    assert nll == pytest.approx(nll_quad(w), abs=1e-6)
    h = 1e-5
    fd = [(nll_quad(w + h * e) - nll_quad(w - h * e)) / (2 * h) for e in np.eye(2)]
    np.testing.assert_allclose(grad, fd, atol=1e-5)


def test_pseudolikelihood_moves_tied_pairs_together():
    # y0 = y1 (hard): the pair is one block, its conditional one-dimensional.
    rows = [({0: -1.0}, -1.0, 1.0, 2, Kind.HINGE, 0),
            ({0: 1.0, 1: -1.0}, 0.0, 0.0, 1, Kind.EQ, 1), ({1: -1.0, 0: 1.0}, 0.0, 0.0, 1, Kind.EQ, 1)]
    model = HLMRF.from_rows(rows, 2)
    learner = MaxPseudoLikelihood(l2=0.0, epochs=1).fit(model, np.array([1.0, 1.0]))
    assert learner.n_blocks_ == 1
    _, grad = learner.objective(np.array([1.0, 0.0]))
    assert grad[0] < 0  # truth 1 satisfies the rule: a larger weight is more likely


def test_latent_targets(problem):
    program, train, _ = problem
    model = hlmrf.ground(program, train)
    truth = truth_vector(model, train)
    truth[::3] = np.nan
    with pytest.raises(DataError, match="no truth value"):
        VotedPerceptron(latent="error").fit(model, truth)
    learner = VotedPerceptron(init="uniform", schedule=False, epochs=10).fit(model, truth)
    assert learner.weights_[0] > learner.weights_[1]  # still learns from the labelled two thirds
    mse = MapLossLearner(init="uniform", epochs=10).fit(model, truth)
    assert mse.weights_[0] > 2 * mse.weights_[1]
    with pytest.raises(DataError, match="truth"):
        VotedPerceptron().fit(model, np.full(model.n, np.nan))


def test_grounds_once_reuses_the_model_and_warm_starts(problem, monkeypatch):
    program, train, _ = problem
    calls = {"ground": 0, "y0": [], "state": []}
    import importlib

    G = importlib.import_module("hlmrf.grounding.ground")  # the package re-exports the function

    real_ground, real_solve = G.ground, learning_base.solve_admm

    def counting_ground(*a, **k):
        calls["ground"] += 1
        return real_ground(*a, **k)

    def recording_solve(model, settings=None, y0=None, callback=None, state=None):
        calls["y0"].append(None if y0 is None else np.array(y0))
        calls["state"].append(state)
        return real_solve(model, settings, y0=y0, callback=callback, state=state)

    monkeypatch.setattr(G, "ground", counting_ground)
    monkeypatch.setattr(learning_base, "solve_admm", recording_solve)
    learner = VotedPerceptron(epochs=4).fit(program, train)
    assert calls["ground"] == 1
    assert calls["y0"][0] is None and all(y is not None for y in calls["y0"][1:])
    assert len(calls["y0"]) == 4
    # the duals and rho are carried over too, not only the values
    assert calls["state"][0] is None and all(s is not None for s in calls["state"][1:])


def test_hard_rules_keep_zero_weight_and_params_validate():
    program = hlmrf.parse_rules("2: A(X) -> Y(X) ^2\nY(X) <= A(X) .\n1: !Y(X) ^2\n")
    store = hlmrf.FactStore()
    store.add_observations("A", [("a",), ("b",)], values=[0.9, 0.2])
    store.add_targets("Y", [("a",), ("b",)])
    store.add_truth("Y", [("a", 0.9), ("b", 0.2)])
    learner = VotedPerceptron(epochs=3).fit(program, store)
    assert learner.weights_[1] == 0 and not learner.learnable_[1]
    for bad in (dict(epochs=0), dict(step_size=-1), dict(latent="maybe"), dict(init="random")):
        with pytest.raises(SettingsError):
            VotedPerceptron(**bad).fit(program, store)
    with pytest.raises(SettingsError, match="loss"):
        MapLossLearner(loss="hinge").fit(program, store)
    with pytest.raises(SettingsError, match="method"):
        make_learner("gibbs")
    assert "step_size=1.0" in repr(VotedPerceptron())

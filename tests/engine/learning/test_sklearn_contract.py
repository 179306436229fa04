"""The learners follow the scikit-learn estimator contract, and report suspect results as warnings.

``get_params``/``set_params``/``sklearn.base.clone`` are checked on every learner the package
exports; the references are scikit-learn's own ``clone`` and a fresh instance. The warnings are
checked by category (:class:`hlmrf.HlmrfWarning`), on problems whose outcome is known by hand: a
rule whose truth always contradicts it has a learned weight of 0, and a single rule's MAP state
ignores the weight's scale, so the MAP-loss gradient is 0.
"""
import inspect
import warnings

import numpy as np
import pytest

import hlmrf
import hlmrf.learning as learning
from hlmrf.errors import HlmrfWarning, LearningWarning, SettingsError
from hlmrf.inference.settings import AdmmSettings
from hlmrf.learning import Learner, MapLossLearner, MaxPseudoLikelihood, VotedPerceptron

#: Every learner class the package exports (a new one is picked up here by itself).
LEARNERS = sorted((obj for obj in vars(learning).values()
                   if inspect.isclass(obj) and issubclass(obj, Learner) and obj is not Learner),
                  key=lambda c: c.__name__)
#: A non-default value per hyperparameter, to see that values travel (not just defaults).
CHANGED = {"epochs": 3, "l2": 0.25, "nonnegative": False, "init": "uniform", "latent": "error",
           "settings": AdmmSettings(max_iter=77), "step_size": 0.5}


def _problem(rules="1: A(X) -> Y(X) ^2\n1: !Y(X) ^2\n", truth=(0.7, 0.2), a=(0.9, 0.3)):
    program = hlmrf.parse_rules(rules, "contract.psl")
    store = hlmrf.FactStore()
    store.add_observations("A", [("a",), ("b",)], values=list(a))
    store.add_targets("Y", [("a",), ("b",)])
    store.add_truth("Y", [("a", truth[0]), ("b", truth[1])])
    return program, store


def test_every_learner_is_checked():
    assert {c.__name__ for c in LEARNERS} >= {"VotedPerceptron", "MaxPseudoLikelihood",
                                              "MapLossLearner"}


@pytest.mark.parametrize("cls", LEARNERS, ids=lambda c: c.__name__)
def test_get_params_lists_the_constructor_arguments(cls):
    learner = cls()
    names = set(inspect.signature(cls.__init__).parameters) - {"self"}
    shallow, deep = learner.get_params(deep=False), learner.get_params(deep=True)
    assert set(shallow) == names
    assert deep == shallow == learner.get_params()  # no hyperparameter is itself an estimator
    assert cls(**shallow).get_params() == shallow


@pytest.mark.parametrize("cls", LEARNERS, ids=lambda c: c.__name__)
def test_set_params_round_trip_and_returns_self(cls):
    learner = cls()
    changed = {k: v for k, v in CHANGED.items() if k in learner.get_params()}
    assert learner.set_params(**changed) is learner
    params = learner.get_params()
    for key, value in changed.items():
        assert params[key] is value
    # the same as passing them to the constructor
    assert cls(**changed).get_params() == params
    # and back
    assert learner.set_params(**cls().get_params()).get_params() == cls().get_params()


@pytest.mark.parametrize("cls", LEARNERS, ids=lambda c: c.__name__)
def test_set_params_of_an_unknown_name_lists_the_valid_ones(cls):
    learner = cls()
    before = learner.get_params()
    with pytest.raises(SettingsError, match="no hyperparameter 'stepsize'") as info:
        learner.set_params(epochs=9, stepsize=0.1)
    assert all(name in str(info.value) for name in before)
    with pytest.raises(SettingsError, match="no hyperparameter 'settings__max_iter'"):
        learner.set_params(settings__max_iter=5)  # AdmmSettings is not an estimator
    assert isinstance(info.value, ValueError)  # as scikit-learn raises for an invalid parameter


@pytest.mark.parametrize("cls", LEARNERS, ids=lambda c: c.__name__)
def test_sklearn_clone_gives_an_unfitted_learner_with_equal_params(cls):
    base = pytest.importorskip("sklearn.base", reason="scikit-learn (a test-only dependency, in "
                                                      "the dev extra) is not installed")
    learner = cls(**{k: v for k, v in CHANGED.items() if k in cls().get_params()})
    learner.set_params(latent="infer")
    program, store = _problem()
    learner.fit(program, store)
    assert hasattr(learner, "weights_")
    copy = base.clone(learner)
    assert type(copy) is cls and copy is not learner
    assert copy.get_params() == learner.get_params()
    assert not [k for k in vars(copy) if k.endswith("_") or k.startswith("_")]  # unfitted
    # refitting the clone, the original and a fresh instance gives the same weights
    again = learner.fit(program, store).weights_.copy()
    np.testing.assert_array_equal(copy.fit(program, store).weights_, again)
    np.testing.assert_array_equal(cls(**learner.get_params()).fit(program, store).weights_, again)


def test_sklearn_clone_copies_an_init_array():
    base = pytest.importorskip("sklearn.base", reason="scikit-learn (a test-only dependency, in "
                                                      "the dev extra) is not installed")
    init = np.array([2.0, 0.5])
    copy = base.clone(VotedPerceptron(init=init))
    assert copy.init is not init
    np.testing.assert_array_equal(copy.init, init)


def test_every_learned_weight_zero_is_a_learning_warning():
    # truth 0 against a rule that pushes Y to A = 1: the perceptron's first step is
    # w = 1 + (Phi(MAP) - Phi(truth)) / n = 1 + (0 - 2) / 2 = 0, and the pseudo-likelihood's
    # optimum is w = 0 too (the truth is where the rule is most violated)
    program, store = _problem("1: A(X) -> Y(X) ^2\n", truth=(0.0, 0.0), a=(1.0, 1.0))
    for learner in (VotedPerceptron(epochs=3), MaxPseudoLikelihood(epochs=5)):
        with pytest.warns(LearningWarning, match="every learned weight is 0") as record:
            learner.fit(program, store)
        assert learner.weights_.tolist() == [0.0]
        assert issubclass(record[0].category, HlmrfWarning)
        assert issubclass(record[0].category, UserWarning)
        assert record[0].filename == __file__  # points at the caller's fit, not library code


def test_a_map_loss_gradient_of_zero_is_a_learning_warning():
    # one rule: the MAP state ignores the weight's scale, so the loss cannot change with it
    program, store = _problem("1: A(X) -> Y(X) ^2\n")
    with pytest.warns(LearningWarning, match="gradient of the loss was 0 at every step"):
        learner = MapLossLearner(epochs=3).fit(program, store)
    assert learner.weights_.tolist() == [1.0]


def test_a_useful_fit_warns_nothing():
    program, store = _problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error", HlmrfWarning)
        for cls in LEARNERS:
            cls(epochs=3).fit(program, store)


def test_hlmrf_warning_is_exported():
    assert hlmrf.HlmrfWarning is HlmrfWarning and "HlmrfWarning" in hlmrf.__all__
    assert issubclass(LearningWarning, HlmrfWarning)

"""Learning at its edges: a refit equals a fresh fit, weights are finite or the fit stops with a
clean error, and a learned rule file re-parses to exactly the learned weights.

The references here are independent of the learners' arithmetic: a fresh instance (for refits),
``math.isfinite`` (for weights), and the parser (for written rule files).
"""
import math
import os
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import hlmrf
import hlmrf.testing.learning_synthetic as S
from hlmrf.cli.learn import main
from hlmrf.errors import DataError, HlmrfError, RuleError, SettingsError, SolverError
from hlmrf.learning import (MapLossLearner, MaxPseudoLikelihood, VotedPerceptron, make_learner,
                            rules_text, truth_vector)
from hlmrf.learning.rules import format_weight
from hlmrf.language.parser import parse_rules


def small(seed, **kw):
    return S.facts(seed, n=10, links=14, **kw)


@pytest.fixture(scope="module")
def data():
    return S.program(), small(0), small(1)


def store_with_truth(values, n=10, links=14, seed=0):
    store = S.facts(seed, n=n, links=links, with_truth=False)
    store.add_truth("Y", [(f"p{i}",) for i in range(n)], values=np.asarray(values, float))
    return store


#: MAP solves with a negative weight are non-convex and need not converge: cap their iterations.
CAPPED = hlmrf.AdmmSettings(max_iter=500)


# -- 1. a refit is a fresh fit --------------------------------------------------------------------
FRESH = {
    "perceptron": lambda: VotedPerceptron(init="uniform", schedule=False, epochs=4),
    "perceptron-latent": lambda: VotedPerceptron(init="uniform", epochs=3),
    "pseudolikelihood": lambda: MaxPseudoLikelihood(init="uniform", epochs=8),
    "pseudolikelihood-gd": lambda: MaxPseudoLikelihood(init="uniform", epochs=8, optimizer="gd"),
    "mse": lambda: MapLossLearner(loss="mse", init="uniform", epochs=4),
    "bce": lambda: MapLossLearner(loss="bce", init="uniform", epochs=4),
}


@pytest.mark.parametrize("name", sorted(FRESH))
def test_refit_on_the_same_instance_equals_a_fresh_fit(data, name):
    program, a, b = data
    fresh = FRESH[name]().fit(program, a)
    again = FRESH[name]().fit(program, a).fit(program, a)
    np.testing.assert_array_equal(again.weights_, fresh.weights_)
    # A previous fit on other data (same sizes, so a cached solver state would fit) leaks nothing.
    other = FRESH[name]().fit(program, b).fit(program, a)
    np.testing.assert_array_equal(other.weights_, fresh.weights_)
    assert [r.loss for r in other.history_] == [r.loss for r in fresh.history_]


def test_refit_drops_learned_state_of_the_previous_fit(data):
    program, a, _ = data
    learner = MaxPseudoLikelihood(init="uniform", epochs=3).fit(program, a)
    assert hasattr(learner, "optimizer_result_")
    learner.optimizer = "gd"  # sklearn's set_params style; the L-BFGS result must not survive
    learner.fit(program, a)
    assert not hasattr(learner, "optimizer_result_")
    learner.epochs = 0  # a fit that fails on its settings leaves no stale weights behind
    with pytest.raises(SettingsError):
        learner.fit(program, a)
    assert not hasattr(learner, "weights_")


def test_refit_with_latent_targets_equals_a_fresh_fit(data):
    program, a, b = data
    model = hlmrf.ground(program, a)
    truth = truth_vector(model, a)
    truth[::3] = np.nan
    fresh = VotedPerceptron(init="uniform", epochs=3).fit(model, truth)
    learner = VotedPerceptron(init="uniform", epochs=3)
    learner.fit(program, b)
    np.testing.assert_array_equal(learner.fit(model, truth).weights_, fresh.weights_)


# -- 2. never a non-finite weight -----------------------------------------------------------------
def assert_finite_result(learner, nonnegative=True):
    w = learner.weights_
    assert all(math.isfinite(x) for x in w), w
    if nonnegative:
        assert (w >= 0).all(), w
    assert all(math.isfinite(r.loss) for r in learner.history_)
    assert all(np.isfinite(r.weights).all() for r in learner.history_)
    assert np.isfinite(learner.model_.w).all()


def finite_or_clean_error(make, program, store, nonnegative=True):
    try:
        learner = make().fit(program, store)
    except SolverError as exc:
        msg = str(exc)
        assert "diverged" in msg and "epoch" in msg and "rule" in msg, msg
        assert "step_size" in msg or "l2" in msg, msg
        return exc
    assert_finite_result(learner, nonnegative)
    return learner


@pytest.mark.parametrize("make", [
    lambda: VotedPerceptron(step_size=1e308, schedule=False, scale_gradient=False, epochs=10),
    lambda: VotedPerceptron(step_size=1e308, schedule=False, epochs=10, nonnegative=False,
                            settings=CAPPED),
    lambda: MapLossLearner(step_size=1e3, decay=0.0, epochs=20, nonnegative=False, settings=CAPPED),
    lambda: MapLossLearner(step_size=1e100, decay=0.0, epochs=10),
    lambda: MaxPseudoLikelihood(optimizer="gd", step_size=1e308, epochs=10),
    lambda: MaxPseudoLikelihood(optimizer="gd", step_size=1e308, epochs=10, nonnegative=False),
], ids=["perceptron", "perceptron-signed", "mse-signed", "mse", "pl-gd", "pl-gd-signed"])
def test_huge_steps_give_finite_weights_or_a_divergence_error(data, make):
    program, a, _ = data
    out = finite_or_clean_error(make, program, a, nonnegative=make().nonnegative)
    if isinstance(out, SolverError):
        assert "lower step_size" in str(out)


def test_divergence_error_names_the_rule_the_epoch_and_the_fix(data):
    program, a, _ = data
    with pytest.raises(SolverError) as info:
        VotedPerceptron(step_size=1e308, schedule=False, scale_gradient=False,
                        epochs=10).fit(program, a)
    msg = str(info.value)
    assert "epoch" in msg and "VotedPerceptron" in msg and "lower step_size" in msg
    assert any(r.text in msg for r in program.rules), msg
    assert isinstance(info.value, RuntimeError)


@pytest.mark.parametrize("params", [
    dict(step_size=math.inf), dict(step_size=math.nan), dict(l2=math.inf), dict(l2=math.nan),
    dict(l1=math.inf), dict(step_size="big"), dict(epochs=True),
])
def test_perceptron_rejects_non_finite_hyperparameters(data, params):
    program, a, _ = data
    with pytest.raises(SettingsError):
        VotedPerceptron(**params).fit(program, a)


@pytest.mark.parametrize("make", [
    lambda: MapLossLearner(step_size=math.inf), lambda: MapLossLearner(l2=math.inf),
    lambda: MapLossLearner(decay=math.inf), lambda: MapLossLearner(tol=math.inf),
    lambda: MaxPseudoLikelihood(l2=math.inf), lambda: MaxPseudoLikelihood(step_size=math.inf,
                                                                          optimizer="gd"),
    lambda: VotedPerceptron(settings="tight"),
])
def test_other_learners_reject_non_finite_hyperparameters(data, make):
    program, a, _ = data
    with pytest.raises(SettingsError):
        make().fit(program, a)


@pytest.mark.parametrize("method", ["perceptron", "pseudolikelihood", "mse", "bce"])
@pytest.mark.parametrize("init,match", [
    (np.array([np.nan, 1.0, 1.0, 1.0]), "rule 1"), (np.array([1.0, np.inf, 1.0, 1.0]), "rule 2"),
    (np.array([1.0, 1.0, -2.0, 1.0]), "negative"), (np.array([1.0, 1.0]), "4 rules"),
])
def test_initial_weights_are_checked(data, method, init, match):
    program, a, _ = data
    with pytest.raises(SettingsError, match=match):
        make_learner(method, init=init, epochs=2).fit(program, a)


def test_negative_initial_weights_are_allowed_when_signed(data):
    program, a, _ = data
    learner = VotedPerceptron(init=np.array([1.0, 1.0, -0.5, 1.0]), nonnegative=False, epochs=2,
                              settings=CAPPED)
    finite_or_clean_error(lambda: learner, program, a, nonnegative=False)


def test_a_program_with_an_infinite_weight_is_a_rule_error(data):
    program, a, _ = data
    rules = list(program.rules)
    rules[1] = replace(rules[1], weight=math.inf)
    with pytest.raises(RuleError, match="weight"):
        VotedPerceptron(epochs=2).fit(replace(program, rules=tuple(rules)), a)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, 1.5, -0.25])
def test_truth_vectors_must_be_values_in_0_1(data, bad):
    program, a, _ = data
    model = hlmrf.ground(program, a)
    truth = truth_vector(model, a)
    truth[3] = bad
    with pytest.raises(DataError, match="truth"):
        VotedPerceptron(epochs=2).fit(model, truth)


@pytest.mark.parametrize("method", ["perceptron", "pseudolikelihood", "mse", "bce"])
@pytest.mark.parametrize("truth", ["zeros", "ones", "half"])
def test_zero_weight_starts_and_degenerate_truth_stay_finite(method, truth):
    value = {"zeros": 0.0, "ones": 1.0, "half": 0.5}[truth]
    store = store_with_truth(np.full(10, value))
    for init in (np.zeros(4), "uniform"):
        learner = make_learner(method, init=init, epochs=15).fit(S.program(), store)
        assert_finite_result(learner)


@pytest.mark.parametrize("method", ["perceptron", "pseudolikelihood", "mse", "bce"])
def test_many_iterations_with_large_steps_stay_finite(method):
    store = store_with_truth(np.full(10, 0.0))
    params = dict(epochs=300, step_size=50.0)
    if method == "pseudolikelihood":
        params.update(optimizer="gd", l2=0.0)
    finite_or_clean_error(lambda: make_learner(method, **params), S.program(), store)


def test_all_observed_data_is_a_clean_data_error():
    # Y observed, not a target: the model has no variable, so there is nothing to learn from.
    full = S.facts(0, n=6, links=5)
    store = hlmrf.FactStore()
    for name in ("A", "B", "Link"):
        p = full.get(name)
        store.add_observations(name, [[full.constants.names[c] for c in row] for row in p.obs_args],
                               values=p.obs_values)
    y = full.get("Y")
    rows = [(full.constants.names[row[0]],) for row in y.truth_args]
    store.add_observations("Y", rows, values=y.truth_values)
    store.add_truth("Y", rows, values=y.truth_values)
    for method in ("perceptron", "pseudolikelihood", "mse", "bce"):
        with pytest.raises(DataError, match="truth"):
            make_learner(method, epochs=2).fit(S.program(), store)


def test_a_program_without_weighted_rules_is_an_error():
    program = parse_rules("Y(X) <= A(X) .\n")
    store = store_with_truth(np.full(10, 0.5))
    with pytest.raises(RuleError, match="weighted rule"):
        VotedPerceptron(epochs=2).fit(program, store)
    empty = replace(program, rules=(), text="")
    with pytest.raises(HlmrfError):
        VotedPerceptron(epochs=2).fit(empty, store)
    with pytest.raises(HlmrfError):
        rules_text(empty, [])


# -- 3. a learned rule file re-parses to the learned weights ----------------------------------------
EVERY_CONSTRUCT = """\
// learned by hlmrf-learn; every construct the rule language has
1.5: Friends(A, B) & Smokes(A) -> Smokes(B) ^2   # trailing comment
Smokes(A) & (A != 'o\\'brien') -> Cancer(A) .
0.01 /* a comment before the colon */ : Knows(A, "back\\\\slash") -> Smokes(A) ^1
2e-3: !Cancer(X) ^2
HasCat(A, +C) = 1 .
7: Rating(U, +I) / |I| = Avg(U) ^2 {I: Rated(U, I)}
3: @Min[|B|, 2] * Knows(A, +B) >= 1 ^1
Friends(A, +B) <= 1 . {B: Nice(B) & !Smokes(B)}
0.5: Smokes(A) + Cancer(A) <= 1.0 ^2
1: Smokes('it\\'s') | Cancer("q\\"uote") ^2
"""

WEIGHTS = [0.0, 1e-300, 5e-324, 1e300, 1.2345678901234567, 1.2345678901234568e+20, 1e16,
           0.1 + 0.2, 123.0, 2.5e-7, 1 / 3, np.nextafter(1.0, 2.0), float(np.float32(0.1))]


def unweighted(rule):
    return rule if rule.hard else replace(rule, weight=0.0)


def soft_weights(program):
    return [r.weight for r in program.rules if not r.hard]


@pytest.mark.parametrize("x", WEIGHTS + [-0.0, np.float64(7.0), np.float32(0.1)])
def test_format_weight_reparses_to_the_same_float(x):
    text = format_weight(x)
    program = parse_rules(f"{text}: A(X) -> B(X) ^2\n")
    assert program.rules[0].weight == float(x), (x, text)
    assert not text.startswith("-")


def test_every_construct_round_trips_with_awkward_weights():
    program = parse_rules(EVERY_CONSTRUCT, "every.psl")
    soft = [i for i, r in enumerate(program.rules) if not r.hard]
    rng = np.random.default_rng(0)
    for trial in range(6):
        w = np.zeros(len(program.rules))
        w[soft] = rng.choice(WEIGHTS, size=len(soft))
        text = rules_text(program, w)
        again = parse_rules(text, "learned.psl")
        assert soft_weights(again) == [float(x) for x in w[soft]], text
        assert [unweighted(r) for r in again.rules] == [unweighted(r) for r in program.rules]
        assert "// learned by hlmrf-learn" in text and "/* a comment before the colon */" in text


@given(st.lists(st.floats(min_value=0.0, allow_nan=False, allow_infinity=False),
                min_size=7, max_size=7))
@settings(max_examples=60, deadline=None)
def test_any_finite_non_negative_weights_round_trip(ws):
    program = parse_rules(EVERY_CONSTRUCT)
    w = np.zeros(len(program.rules))
    w[[i for i, r in enumerate(program.rules) if not r.hard]] = ws
    assert soft_weights(parse_rules(rules_text(program, w))) == [float(x) + 0.0 for x in ws]


@pytest.mark.parametrize("bad,match", [(math.nan, "nan"), (math.inf, "inf"), (-0.5, "negative")])
def test_rules_text_refuses_weights_a_rule_file_cannot_hold(bad, match):
    program = parse_rules(EVERY_CONSTRUCT)
    w = np.ones(len(program.rules))
    w[3] = bad
    with pytest.raises(SettingsError, match=match) as info:
        rules_text(program, w)
    assert "!Cancer(X)" in str(info.value)


def test_program_built_in_code_round_trips():
    program = parse_rules(EVERY_CONSTRUCT)
    bare = replace(program, text="", rules=tuple(replace(r, span=None) for r in program.rules))
    w = np.where([r.hard for r in program.rules], 0.0, 1.2345678901234567e-200)
    again = parse_rules(rules_text(bare, w))
    assert soft_weights(again) == [1.2345678901234567e-200] * 7


def _write_facts(directory, store):
    directory.mkdir()
    names = store.constants.names
    for key, p in store.predicates.items():
        for kind, args, vals in (("obs", p.obs_args, p.obs_values), ("targets", p.target_args, None),
                                 ("truth", p.truth_args, p.truth_values)):
            lines = []
            for k, row in enumerate(args):  # values as repr: the facts are exactly the store's
                cols = [names[c] for c in row] + ([repr(float(vals[k]))] if vals is not None else [])
                lines.append("\t".join(cols))
            if lines:
                (directory / f"{key.lower()}_{kind}.txt").write_text("\n".join(lines) + "\n")


CLI_RULES = """\
// weights that print in exponent notation, a zero weight, a comment before a colon
1e-300: A(X) -> Y(X) ^2
0: B(X) -> !Y(X) ^2
Y(X) <= 1 .
2.5e+20 /* big */ : Link(X, Z) & Y(X) -> Y(Z) ^2
1.0000000000000002: !Y(X) ^2
"""


@pytest.mark.parametrize("method", ["perceptron", "pseudolikelihood", "mse", "bce"])
def test_cli_writes_a_file_its_parser_reads_back_exactly(tmp_path, capsys, method):
    (tmp_path / "rules.psl").write_text(CLI_RULES)
    _write_facts(tmp_path / "train", small(0))
    out = tmp_path / "learned.psl"
    rc = main([str(tmp_path / "rules.psl"), str(tmp_path / "train"), "--out", str(out),
               "--method", method, "--epochs", "3", "-q"])
    assert rc == 0, capsys.readouterr().err
    learned = parse_rules(out.read_text(), str(out))
    program = hlmrf.load_rules(tmp_path / "rules.psl")
    refit = make_learner(method, epochs=3).fit(program, hlmrf.load_facts(tmp_path / "train", program))
    assert [r.weight if r.weight is not None else 0.0 for r in learned.rules] == list(refit.weights_)
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".")] == []


def test_cli_divergence_exits_3_and_leaves_the_old_file(tmp_path, capsys):
    (tmp_path / "rules.psl").write_text(S.RULES)
    _write_facts(tmp_path / "train", small(0))
    out = tmp_path / "learned.psl"
    out.write_text("// the previous run\n1: A(X) -> Y(X)\n")
    rc = main([str(tmp_path / "rules.psl"), str(tmp_path / "train"), "--out", str(out),
               "--method", "pseudolikelihood", "--step-size", "1e308", "--allow-negative",
               "--epochs", "10", "-q"])
    err = capsys.readouterr().err
    assert rc == 3 and err.startswith("hlmrf-learn: error:") and "diverged" in err, err
    assert out.read_text() == "// the previous run\n1: A(X) -> Y(X)\n"
    assert sorted(os.listdir(tmp_path)) == ["learned.psl", "rules.psl", "train"]


def test_cli_negative_learned_weight_is_an_error_not_an_unparseable_file(tmp_path, capsys):
    (tmp_path / "rules.psl").write_text(S.RULES)
    _write_facts(tmp_path / "train", store_with_truth(np.zeros(10)))
    out = tmp_path / "learned.psl"
    rc = main([str(tmp_path / "rules.psl"), str(tmp_path / "train"), "--out", str(out),
               "--method", "pseudolikelihood", "--allow-negative", "--l2", "0", "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "negative" in err and "--allow-negative" in err, err
    assert not out.exists()


def test_cli_writes_through_an_atomic_replace(tmp_path, capsys, monkeypatch):
    import hlmrf.data.writer as writer

    (tmp_path / "rules.psl").write_text(S.RULES)
    _write_facts(tmp_path / "train", small(0))
    out = tmp_path / "learned.psl"
    out.write_text("old\n")
    replaced = []
    real = os.replace

    def spy(src, dst):
        replaced.append((os.path.dirname(str(src)), str(dst)))
        assert out.read_text() == "old\n"  # the target is never half-written
        return real(src, dst)

    monkeypatch.setattr(writer.os, "replace", spy)
    rc = main([str(tmp_path / "rules.psl"), str(tmp_path / "train"), "--out", str(out),
               "--epochs", "2", "-q"])
    assert rc == 0 and replaced == [(str(tmp_path), str(out))]
    assert len(parse_rules(out.read_text()).rules) == 4


# -- 4. random small learning problems --------------------------------------------------------------
def _log_uniform(lo, hi):
    return st.floats(lo, hi).map(lambda e: 10.0 ** e)


@st.composite
def learning_problem(draw):
    n = draw(st.integers(2, 8))
    store = S.facts(draw(st.integers(0, 10_000)), n=n, links=draw(st.integers(1, n)),
                    with_truth=False)
    kind = draw(st.sampled_from(["random", "zeros", "ones", "map"]))
    if kind == "map":
        w_star = np.array(draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 4.0]), min_size=4,
                                        max_size=4)))
        store = S.facts(draw(st.integers(0, 10_000)), n=n, links=min(n, 3), w_star=w_star)
    else:
        rng = np.random.default_rng(draw(st.integers(0, 10_000)))
        truth = {"random": rng.uniform(0, 1, n), "zeros": np.zeros(n), "ones": np.ones(n)}[kind]
        keep = [i for i in range(n) if i == 0 or draw(st.booleans()) or kind != "random"]
        store.add_truth("Y", [(f"p{i}",) for i in keep], values=truth[keep])
    return store


@st.composite
def learner_params(draw):
    method = draw(st.sampled_from(["perceptron", "pseudolikelihood", "mse", "bce"]))
    nonnegative = draw(st.booleans())
    # max_iter bounds the time of MAP solves that cannot converge (negative weights make the
    # MAP problem non-convex); any value >= 1 is valid.
    params = dict(epochs=draw(st.integers(1, 6)), nonnegative=nonnegative,
                  l2=draw(st.one_of(st.just(0.0), _log_uniform(-6, 300))),
                  settings=hlmrf.AdmmSettings(max_iter=draw(st.integers(1, 600))))
    init = draw(st.sampled_from(["model", "uniform", "zeros", "random"]))
    if init == "zeros":
        params["init"] = np.zeros(4)
    elif init == "random":
        lo = 0.0 if nonnegative else -3.0
        params["init"] = np.array(draw(st.lists(st.floats(lo, 1e6), min_size=4, max_size=4)))
    else:
        params["init"] = init
    step = _log_uniform(-8, 300)
    if method == "perceptron":
        params.update(step_size=draw(step), schedule=draw(st.booleans()), average=draw(st.booleans()),
                      scale_gradient=draw(st.booleans()),
                      l1=draw(st.one_of(st.just(0.0), _log_uniform(-6, 300))))
    elif method == "pseudolikelihood":
        params.update(optimizer=draw(st.sampled_from(["lbfgs", "gd"])), step_size=draw(step),
                      grid=draw(st.integers(3, 21)))
    else:
        params.update(step_size=draw(step), decay=draw(st.one_of(st.just(0.0), _log_uniform(-3, 3))),
                      keep_best=draw(st.booleans()), tol=draw(_log_uniform(-9, -1)))
    return method, params


GENERATED = {"fits": 0, "errors": {}}


@given(learning_problem(), learner_params())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_problems_give_finite_non_negative_weights_or_a_clean_error(store, spec):
    method, params = spec
    GENERATED["fits"] += 1
    try:
        learner = make_learner(method, **params).fit(S.program(), store)
    except HlmrfError as exc:
        GENERATED["errors"][type(exc).__name__] = GENERATED["errors"].get(type(exc).__name__, 0) + 1
        assert str(exc)
        return
    assert_finite_result(learner, params["nonnegative"])
    # The weights can always be written as a rule file when they are non-negative.
    if params["nonnegative"]:
        text = rules_text(S.program(), learner.weights_)
        assert soft_weights(parse_rules(text)) == [float(x) + 0.0 for x in learner.weights_]

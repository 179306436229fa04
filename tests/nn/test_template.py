"""The template ground once with inputs equals grounding with the inputs observed (the reference:
:func:`hlmrf.infer` on a store where the input atoms are observations at those values), and bad
inputs give a located error."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

torch = pytest.importorskip("torch")

import hlmrf  # noqa: E402
from hlmrf.errors import DataError, RuleError  # noqa: E402
from hlmrf.inference.settings import AdmmSettings  # noqa: E402
from hlmrf.nn import PSLLayer, ground_template  # noqa: E402

# Inputs (Score, Link) in rule bodies and heads, negated, with a coefficient in an arithmetic
# rule, inside a summation, and a hard rule over targets.
RULES = """
2.0: Score(A) & Link(A, B) -> Label(B) ^2
1.0: Label(A) -> Score(A) ^2
1.5: !Score(A) -> !Label(A) ^2
0.7: 2.0 * Score(A) + Label(A) <= 1.5 ^2
0.5: Label(B) >= Link(+A, B) ^2
0.3: Label(A) & Prior(A) -> Other(A) ^2
Other(A) + Label(A) <= 1 .
0.2: !Label(A) ^2
0.2: !Other(A) ^2
"""
PEOPLE = ["p0", "p1", "p2", "p3"]
LINKS = [("p0", "p1"), ("p1", "p2"), ("p2", "p3"), ("p3", "p0"), ("p0", "p2")]
TIGHT = AdmmSettings(eps_abs=1e-9, eps_rel=1e-8, gap_rel=1e-9, gap_abs=1e-12, constraint_tol=1e-9)


def _store(score=None, link=None):
    store = hlmrf.FactStore()
    for i, p in enumerate(PEOPLE):
        store.add_targets("Label", [(p,)])
        store.add_targets("Other", [(p,)])
        store.add_observations("Prior", [(p, 0.3 + 0.1 * i)])
    store.add_observations("Score", [(p, 0.5 if score is None else float(score[i])) for i, p in enumerate(PEOPLE)])
    store.add_observations("Link", [(a, b, 0.5 if link is None else float(link[k])) for k, (a, b) in enumerate(LINKS)])
    return store


values = st.lists(st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0)), min_size=9, max_size=9)


@settings(max_examples=15, deadline=None)
@given(values)
def test_map_state_equals_inference_with_the_inputs_observed(vals):
    program = hlmrf.parse_rules(RULES)
    layer = PSLLayer(program, _store(), ["Score", "Link"], settings=TIGHT, warm_start=False)
    assert [a for _, a in layer.input_atoms[:4]] == [(p,) for p in PEOPLE]
    score, link = np.array(vals[:4]), np.array(vals[4:])
    with torch.no_grad():
        y = layer(torch.tensor(np.r_[score, link]))
    # The reference grounds with the values folded in (and drops what they make trivial).
    run = hlmrf.infer(program, _store(score, link), TIGHT)
    out = layer.split(y)
    for pred in ("Label", "Other"):
        ref = run.values(pred)
        cols = layer.template.columns(pred)
        for j, got in zip(cols, out[pred].numpy()):
            assert abs(ref[layer.target_atoms[j][1]] - got) < 1e-5


def test_inputs_may_be_listed_and_keep_coefficients():
    program = hlmrf.parse_rules(RULES)
    tpl = ground_template(program, _store(), {"Score": [("p0",), ("p1",), ("p2",), ("p3",)], "Link": None})
    # 0.7: 2 Score(A) + Label(A) <= 1.5: Score enters the constant with coefficient 2.
    rows = np.flatnonzero(tpl.model.rule == 3)
    assert len(rows) == 4 and sorted(np.abs(tpl.B[rows].data)) == [2.0] * 4
    assert tpl.n_inputs == 9 and tpl.model.n == 8


@pytest.mark.parametrize("inputs, message", [
    (["Scroe"], "unknown predicate Scroe"),
    ({"Score": [("nobody",)]}, "no fact mentions"),
    ({"Score": [("p0", "p1")]}, "has 2 arguments"),
    ({"Label": [("p0",)]}, "both a target and an input"),
])
def test_bad_input_specs_are_data_errors(inputs, message):
    with pytest.raises(DataError, match=message):
        PSLLayer(hlmrf.parse_rules(RULES), _store(), inputs)


def test_an_input_predicate_in_a_filter_is_a_rule_error():
    rules = "1.0: Label(B) >= Link(+A, B) ^2 {A: Score(A)}\n"
    with pytest.raises(RuleError, match="not allowed in filter"):
        PSLLayer(hlmrf.parse_rules(rules), _store(), ["Score"])


@pytest.fixture(scope="module")
def layer():
    return PSLLayer(hlmrf.parse_rules(RULES), _store(), ["Score", "Link"])


@pytest.mark.parametrize("x, message", [
    (np.zeros(9), "must be a torch tensor"),
    (torch.zeros(2, 8, dtype=torch.float64), r"shape \(batch, 9\)"),
    (torch.zeros(2, 3, 9, dtype=torch.float64), r"shape \(batch, 9\)"),
    (torch.zeros(9, dtype=torch.int64), "float32 or float64"),
    (torch.full((2, 9), 1.5, dtype=torch.float64), r"\[0, 1\]: row 0, column 0 \(Score\(p0\)\) is 1.5"),
    (torch.tensor([[0.5] * 8 + [float("nan")]], dtype=torch.float64), r"column 8 \(Link\(p0, p2\)\)"),
])
def test_bad_tensors_are_data_errors(layer, x, message):
    with pytest.raises(DataError, match=message):
        layer(x)


def test_mapping_inputs(layer):
    score = torch.full((2, 4), 0.5, dtype=torch.float64)
    link = torch.full((2, 5), 0.5, dtype=torch.float64)
    with torch.no_grad():
        a = layer({"Score": score, "Link": link})
        b = layer(torch.cat([score, link], 1))
    assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(DataError, match="not an input predicate"):
        layer({"Score": score, "Lnk": link})
    with pytest.raises(DataError, match="no values given for the input predicate"):
        layer({"Score": score})
    with pytest.raises(DataError, match=r"shape \(batch, 5\)"):
        layer({"Score": score, "Link": score})


def test_import_hlmrf_imports_neither_torch_nor_hlmrf_nn():
    code = "import sys, hlmrf; assert 'torch' not in sys.modules and 'hlmrf.nn' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_gradient_matches_finite_differences_of_inference_with_the_inputs_observed():
    # The reference re-grounds with the values folded in at x +- h (hlmrf.infer), so it shares
    # neither the template nor the adjoint with the layer.
    program = hlmrf.parse_rules(RULES)
    layer = PSLLayer(program, _store(), ["Score", "Link"], settings=TIGHT, warm_start=False)
    checked = 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        x = rng.uniform(0.1, 0.9, 9)
        g = rng.standard_normal(layer.n_targets)
        xt = torch.tensor(x, requires_grad=True)
        (layer(xt) * torch.as_tensor(g)).sum().backward()

        def value(v):
            run = hlmrf.infer(program, _store(v[:4], v[4:]), TIGHT)
            return g @ np.array([run.values(p)[a] for p, a in layer.target_atoms])

        fds = []
        for h in (1e-3, 5e-4):
            fds.append(np.array([(value(x + h * e) - value(x - h * e)) / (2 * h) for e in np.eye(9)]))
        if not np.allclose(fds[0], fds[1], atol=1e-5, rtol=1e-4):
            continue  # the active set changes inside the step: a degenerate point
        assert np.allclose(xt.grad.numpy(), fds[0], atol=1e-4, rtol=1e-3), (xt.grad.numpy(), fds[0])
        checked += 1
    assert checked >= 3

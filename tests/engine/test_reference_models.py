"""The bundled examples against the reference Java PSL results (examples/*/expected*)."""
import numpy as np
import pytest

import hlmrf
from hlmrf.evaluation.metrics import evaluate


def _run(examples, name, **kw):
    program = hlmrf.load_rules(examples / name / "rules.psl")
    store = hlmrf.load_facts(examples / name / "facts", program)
    return hlmrf.infer(program, store, **kw)


def test_smokers_every_value_within_1e3_of_expected(examples):
    run = _run(examples, "smokers")
    assert run.result.status == hlmrf.Status.CONVERGED
    checked = 0
    for line in (examples / "smokers" / "expected.tsv").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        pred, arg, value = line.split("\t")
        assert abs(run.values(pred)[(arg,)] - float(value)) < 1e-3, (pred, arg)
        checked += 1
    assert checked == 10


def test_simple_acquaintances_matches_reference(examples):
    run = _run(examples, "simple-acquaintances")
    model, res = run.model, run.result
    assert model.m == 4532
    assert model.potentials_per_rule().tolist() == [131, 503, 1180, 2388, 212, 118]
    # energy with weights divided by the largest (20): reference 343.922, ours within 1e-3 or lower
    assert res.energy <= 343.922 * (1 + 1e-3)
    assert res.violation <= 1e-4
    expected = {}
    for line in (examples / "simple-acquaintances" / "expected" / "KNOWS.txt").read_text().splitlines():
        a, b, v = line.split("\t")
        expected[(a, b)] = float(v)
    ours = run.values("Knows")
    assert ours.keys() == expected.keys()
    assert max(abs(ours[k] - expected[k]) for k in ours) < 0.01


def test_simple_acquaintances_metrics_match_the_reference_readme(examples):
    # Our evaluator on the reference's own output reproduces its printed metrics exactly ...
    run = _run(examples, "simple-acquaintances")
    args, cols = run.model.index.atoms("Knows")
    names = run.model.index.constants
    ref = {}
    for line in (examples / "simple-acquaintances" / "expected" / "KNOWS.txt").read_text().splitlines():
        a, b, v = line.split("\t")
        ref[(a, b)] = float(v)
    y_ref = run.y.copy()
    y_ref[cols] = [ref[(names[i], names[j])] for i, j in args]
    m = evaluate(run.model, y_ref, run.store)["Knows"]
    assert m["count"] == 118
    assert (round(m["accuracy"], 6), round(m["f1"], 6), round(m["mae"], 6), round(m["mse"], 6),
            round(m["auroc"], 6)) == (0.915254, 0.933333, 0.100125, 0.049638, 0.982456)
    # ... and our own MAP state gives the same metrics to the reference's tolerance.
    ours = run.metrics()["Knows"]
    assert ours["accuracy"] == pytest.approx(0.915254, abs=1e-6)
    assert ours["f1"] == pytest.approx(0.933333, abs=1e-6)
    assert ours["auroc"] == pytest.approx(0.982456, abs=1e-6)
    assert ours["mae"] == pytest.approx(0.100125, abs=1e-4)
    assert ours["mse"] == pytest.approx(0.049638, abs=1e-4)


def test_acquaintances_agrees_with_cvxpy(examples):
    pytest.importorskip("cvxpy")
    from hlmrf.inference.check import solve_cvxpy

    run = _run(examples, "simple-acquaintances")
    ref = solve_cvxpy(run.model)
    assert ref.violation < 1e-6
    assert run.result.energy <= ref.energy * (1 + 1e-3)
    assert np.abs(run.y - ref.y).max() < 1e-3

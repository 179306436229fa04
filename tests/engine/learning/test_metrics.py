"""Evaluators against independent computations: closed cases, brute force, the reference's numbers."""
from pathlib import Path

import numpy as np
import pytest

import hlmrf
from hlmrf.evaluation import (auprc, auroc, categorical_accuracy, categorical_metrics,
                              continuous_metrics, discrete_metrics, evaluate, ranking_metrics)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "simple-acquaintances"


def _read(path):
    out = {}
    for line in Path(path).read_text().splitlines():
        cols = line.split("\t")
        out[tuple(cols[:-1])] = float(cols[-1])
    return out


def test_reference_metrics_of_simple_acquaintances():
    # The reference engine's printed MAP state scored against the truth, as it printed them.
    pred, truth = _read(EXAMPLE / "expected" / "KNOWS.txt"), _read(EXAMPLE / "facts" / "knows_truth.txt")
    keys = sorted(truth)
    p = np.array([pred[k] for k in keys])
    t = np.array([truth[k] for k in keys])
    d, c, r = discrete_metrics(p, t), continuous_metrics(p, t), ranking_metrics(p, t)
    assert d["accuracy"] == pytest.approx(0.915254, abs=1e-6)
    assert d["f1"] == pytest.approx(0.933333, abs=1e-6)
    assert c["mae"] == pytest.approx(0.100125, abs=1e-6)
    assert c["mse"] == pytest.approx(0.049638, abs=1e-6)
    assert r["auroc"] == pytest.approx(0.982456, abs=1e-6)


def test_discrete_closed_case():
    pred = np.array([0.9, 0.6, 0.4, 0.2, 0.7, 0.5])
    truth = np.array([1, 0, 1, 0, 1, 0.0])
    m = discrete_metrics(pred, truth)  # predicted positive: 0, 1, 4, 5 -> tp 2, fp 2, fn 1, tn 1
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["precision"] == pytest.approx(2 / 4)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert discrete_metrics(pred, truth, threshold=0.8)["accuracy"] == pytest.approx(4 / 6)
    none = discrete_metrics(np.zeros(3), np.zeros(3))
    assert none["precision"] == 0.0 and none["f1"] == 0.0 and none["accuracy"] == 1.0


def test_continuous_closed_case():
    m = continuous_metrics(np.array([0.0, 0.5, 1.0]), np.array([1.0, 0.5, 0.5]))
    assert m["mae"] == pytest.approx(1.5 / 3)
    assert m["mse"] == pytest.approx(1.25 / 3)
    assert np.isnan(continuous_metrics(np.zeros(0), np.zeros(0))["mae"])


def _auroc_pairs(s, y):
    pos, neg = s[y], s[~y]
    wins = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


def _average_precision_brute(s, y):
    # Step-wise PR curve over distinct thresholds, highest first (ties enter together).
    area, prev_recall = 0.0, 0.0
    for th in sorted(set(s.tolist()), reverse=True):
        sel = s >= th
        tp = np.sum(sel & y)
        recall, precision = tp / y.sum(), tp / sel.sum()
        area += (recall - prev_recall) * precision
        prev_recall = recall
    return area


@pytest.mark.parametrize("seed", range(6))
def test_ranking_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 40
    s = rng.integers(0, 8, n) / 8.0  # many ties
    y = rng.uniform(size=n) < 0.4
    y[0], y[1] = True, False
    assert auroc(s, y) == pytest.approx(_auroc_pairs(s, y), abs=1e-12)
    assert auprc(s, y) == pytest.approx(_average_precision_brute(s, y), abs=1e-12)


def test_ranking_closed_cases():
    assert auroc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1], bool)) == 1.0
    assert auroc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1], bool)) == 0.0
    assert auroc(np.full(4, 0.5), np.array([0, 1, 0, 1], bool)) == 0.5
    assert np.isnan(auroc(np.ones(3), np.ones(3, bool)))
    assert auprc(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1], bool)) == pytest.approx((1 + 2 / 3) / 2)


def test_categorical_against_brute_force():
    rng = np.random.default_rng(3)
    groups = rng.integers(0, 7, 50)
    pred = rng.integers(0, 4, 50) / 4.0
    truth = (rng.uniform(size=50) < 0.3).astype(float)
    hits = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        best = idx[np.argmax(pred[idx])]  # first of ties, as documented
        hits.append(truth[best] >= truth[idx].max())
    assert categorical_accuracy(pred, truth, groups) == pytest.approx(np.mean(hits))


def test_categorical_metrics_group_by_other_arguments():
    # HasLabel(entity, label): entity e1 predicted b (true b), e2 predicted a (true b).
    args = np.array([[0, 10], [0, 11], [1, 10], [1, 11]])
    pred = np.array([0.2, 0.8, 0.7, 0.3])
    truth = np.array([0.0, 1.0, 0.0, 1.0])
    assert categorical_metrics(pred, truth, args)["categorical_accuracy"] == 0.5
    assert categorical_metrics(pred, truth, args, category_index=1)["categorical_accuracy"] == 0.5


def test_evaluate_aligns_truth_with_targets_and_reports_categories():
    store = hlmrf.FactStore()
    store.add_observations("Obs", [("a",), ("b",)])
    store.add_targets("Lab", [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")])
    store.add_truth("Lab", [("b", "y", 1.0), ("a", "x", 1.0), ("b", "x", 0.0), ("a", "y", 0.0),
                            ("c", "x", 1.0)])  # c is not a target: unmatched
    program = hlmrf.parse_rules("1: Obs(P) -> Lab(P, 'x') ^2\n")
    model = hlmrf.ground(program, store)
    args, cols = model.index.atoms("Lab")
    names = model.index.constants
    values = {("a", "x"): 0.9, ("a", "y"): 0.1, ("b", "x"): 0.6, ("b", "y"): 0.4}
    y = np.zeros(model.n)
    for row, col in zip(args, range(cols.start, cols.stop)):
        y[col] = values[tuple(names[c] for c in row)]
    m = evaluate(model, y, store, categories={"lab": -1})["Lab"]
    assert m["count"] == 4 and m["unmatched"] == 1
    assert m["accuracy"] == pytest.approx(2 / 4)  # tp (a,x), tn (a,y), fp (b,x), fn (b,y)
    assert m["mae"] == pytest.approx((0.1 + 0.1 + 0.6 + 0.6) / 4)
    assert m["categorical_accuracy"] == pytest.approx(1 / 2)
    assert m["auroc"] == pytest.approx(_auroc_pairs(np.array([0.9, 0.1, 0.6, 0.4]),
                                                    np.array([1, 0, 0, 1], bool)))

"""A small end-to-end run that learns: a digit classifier trained only from sums of pairs, through
the PSL layer (the model of ``benchmarks/bench_addition.py``, at a few epochs)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_addition", BENCH / "bench_addition.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_addition_learns_digits_from_sums(bench):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Xtr, ytr, Xte, yte = bench.split(0)
        rng = np.random.default_rng(0)
        P, Pte = bench.pairs(300, len(Xtr), rng), bench.pairs(500, len(Xte), rng)
        sums = ytr[P[:, 0]] + ytr[P[:, 1]]
        untrained, _ = bench.train_psl(Xtr, sums, P, 0, seed=0)
        before, _ = bench.evaluate_psl(untrained, Xte, yte, Pte)
        net, times = bench.train_psl(Xtr, sums, P, 5, seed=0)
        after, sum_acc = bench.evaluate_psl(net, Xte, yte, Pte)
    finally:
        torch.set_num_threads(threads)
    assert len(times) == 5
    # No digit label was seen: only sums. Chance is 10%.
    assert before < 0.3
    assert after > 0.6 and after > before + 0.35, (before, after)
    assert sum_acc > 0.35


def test_neural_psl_forward_and_errors(bench):
    from hlmrf.errors import DataError
    from hlmrf.nn import NeuralPredicate, NeuralPSL

    layer = bench.addition_layer()
    net = torch.nn.Sequential(torch.nn.Linear(64, 10, dtype=torch.float64), torch.nn.Softmax(dim=1))
    model = NeuralPSL(layer, [NeuralPredicate("Neural", net, bench.DIGITS)])
    assert model.entities == {"Neural": ("a", "b")}
    feats = {"a": torch.rand(3, 64, dtype=torch.float64), "b": torch.rand(3, 64, dtype=torch.float64)}
    sums = torch.eye(19, dtype=torch.float64)[[0, 18, 9]]
    y = model(feats, {"SumIs": sums})
    digits = layer.split(y)["Digit"]
    assert digits.shape == (3, 20)
    # The hard rules: sum 0 forces 0 + 0, sum 18 forces 9 + 9, each image's digits sum to 1.
    assert torch.allclose(digits[0, [0, 10]], torch.ones(2, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(digits[1, [9, 19]], torch.ones(2, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(digits.reshape(3, 2, 10).sum(-1), torch.ones(3, 2, dtype=torch.float64), atol=1e-4)
    energy = layer.energy(y, model.inputs(feats, {"SumIs": sums})).sum()
    energy.backward()
    assert net[0].weight.grad is not None and float(net[0].weight.grad.abs().sum()) > 0
    with pytest.raises(DataError, match="no features given"):
        model({"a": feats["a"]}, {"SumIs": sums})
    with pytest.raises(DataError, match="no values for the input predicate"):
        model(feats)
    with pytest.raises(DataError, match="not an input predicate"):
        NeuralPSL(layer, [NeuralPredicate("Digit", net, bench.DIGITS)])
    with pytest.raises(DataError, match="not among the neural predicate's classes"):
        NeuralPSL(layer, [NeuralPredicate("Neural", net, bench.DIGITS[:5])])

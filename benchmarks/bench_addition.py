"""The addition task (learn a digit classifier from pairs of images labelled only with their sum)
on scikit-learn's bundled 8x8 digits, trained through PSL inference with :mod:`hlmrf.nn`.

The images (1,797, no download) are split once per seed into a training pool and a disjoint test
pool (a third). Training pairs are drawn from the training pool; their only label is the sum.
The PSL model of one pair (see ``RULES``) ties latent digits ``Digit(I, D)`` to the classifier's
softmax ``Neural(I, D)`` (a neural predicate) with squared rules and makes them consistent with
the observed sum ``SumIs(Z)`` (an input, one-hot) with hard rules; the classifier is trained by
NeuPSL's energy loss: the energy of the MAP state of the labelled model, differentiated through
the layer. A neural baseline predicts the sum directly from both images (19 classes, cross
entropy). Reported: digit accuracy of the classifier on the test images, sum accuracy on test
pairs (the two predicted digits added; the baseline's argmax), and seconds per training epoch.

    python benchmarks/bench_addition.py                      # the table in docs/neural.md
    python benchmarks/bench_addition.py --pairs 300 --seeds 1 --epochs 5   # a quick look
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

RULES = """
1.0: Neural(I, D) -> Digit(I, D) ^2
1.0: Digit(I, D) -> Neural(I, D) ^2
Digit(I, +D) = 1 .
Pair(A, B) & SumIs(Z) & Plus(X, Y, Z) & Digit(A, X) -> Digit(B, Y) .
Pair(A, B) & SumIs(Z) & Plus(X, Y, Z) & Digit(B, Y) -> Digit(A, X) .
Pair(A, B) & SumIs(Z) & Impossible(X, Z) -> !Digit(A, X) .
Pair(A, B) & SumIs(Z) & Impossible(Y, Z) -> !Digit(B, Y) .
"""
DIGITS = [str(d) for d in range(10)]
SUMS = [str(z) for z in range(19)]


def addition_layer(**kwargs):
    """The PSL layer of one pair ``(a, b)``: inputs ``Neural(a|b, D)`` and ``SumIs(Z)``, targets
    ``Digit(a|b, D)``."""
    import hlmrf
    from hlmrf.nn import PSLLayer

    store = hlmrf.FactStore()
    store.add_observations("Pair", [("a", "b")], arity=2)
    store.add_observations("Plus", [(str(x), str(y), str(x + y)) for x in range(10) for y in range(10)], arity=3)
    store.add_observations("Impossible", [(str(x), str(z)) for x in range(10) for z in range(19)
                                          if not 0 <= z - x <= 9], arity=2)
    for img in ("a", "b"):
        store.add_observations("Neural", [(img, d, 0.1) for d in DIGITS], arity=2)
        store.add_targets("Digit", [(img, d) for d in DIGITS])
    store.add_observations("SumIs", [(z, 0.0) for z in SUMS], arity=1)
    return PSLLayer(hlmrf.parse_rules(RULES), store, ["Neural", "SumIs"], **kwargs)


def split(seed: int):
    """``(X_train, y_train, X_test, y_test)``: the digits, pixels scaled to [0, 1], a third held
    out for testing."""
    from sklearn.datasets import load_digits

    data = load_digits()
    X, y = data.data.astype(np.float32) / 16.0, data.target
    perm = np.random.default_rng(seed).permutation(len(X))
    n_test = len(X) // 3
    te, tr = perm[:n_test], perm[n_test:]
    return X[tr], y[tr], X[te], y[te]


def pairs(n: int, pool: int, rng) -> np.ndarray:
    return rng.integers(0, pool, size=(n, 2))


def mlp(n_in: int, n_out: int, hidden: int = 128):
    import torch

    return torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_out))


def _epochs(opt, n_pairs: int, epochs: int, batch: int, seed: int, loss_of) -> list[float]:
    """``epochs`` passes over the pairs in a seeded random order, one optimiser step per batch of
    ``batch`` pair indices (``loss_of(idx)`` is the batch's loss); the seconds of each epoch."""
    rng = np.random.default_rng(seed)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = rng.permutation(n_pairs)
        for s in range(0, n_pairs, batch):
            loss = loss_of(order[s:s + batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return times


def train_psl(Xtr, ytr_pairs, P, epochs: int, seed: int, batch: int = 32, lr: float = 3e-3, dtype=None,
              device: str = "cpu"):
    """Train a digit classifier through the PSL layer on pairs ``P`` with sums ``ytr_pairs``;
    returns the classifier and the seconds of each epoch."""
    import torch
    from hlmrf.nn import NeuralPredicate, NeuralPSL

    dtype = dtype or torch.float64
    torch.manual_seed(seed)
    net = torch.nn.Sequential(mlp(64, 10), torch.nn.Softmax(dim=1)).to(device=device, dtype=dtype)
    model = NeuralPSL(addition_layer(), [NeuralPredicate("Neural", net, DIGITS)])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    Xt = torch.as_tensor(Xtr, dtype=dtype, device=device)
    onehot = torch.eye(19, dtype=dtype, device=device)

    def loss_of(idx):
        x = model.inputs({"a": Xt[P[idx, 0]], "b": Xt[P[idx, 1]]}, {"SumIs": onehot[ytr_pairs[idx]]})
        return model.layer.energy(model.layer(x), x).mean()

    return net, _epochs(opt, len(P), epochs, batch, seed, loss_of)


def train_baseline(Xtr, ytr_pairs, P, epochs: int, seed: int, batch: int = 32, lr: float = 3e-3):
    """An MLP from both images (128 pixels) to the sum (19 classes), cross entropy."""
    import torch

    torch.manual_seed(seed)
    net = mlp(128, 19)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    Xt = torch.as_tensor(Xtr)
    target = torch.as_tensor(ytr_pairs)

    def loss_of(idx):
        logits = net(torch.cat([Xt[P[idx, 0]], Xt[P[idx, 1]]], 1))
        return torch.nn.functional.cross_entropy(logits, target[idx])

    return net, _epochs(opt, len(P), epochs, batch, seed, loss_of)


def evaluate_psl(net, Xte, yte, Pte) -> tuple[float, float]:
    import torch

    w = next(net.parameters())
    with torch.no_grad():
        pred = net(torch.as_tensor(Xte, dtype=w.dtype, device=w.device)).argmax(1).cpu().numpy()
    digit = float((pred == yte).mean())
    total = float(((pred[Pte[:, 0]] + pred[Pte[:, 1]]) == (yte[Pte[:, 0]] + yte[Pte[:, 1]])).mean())
    return digit, total


def evaluate_baseline(net, Xte, yte, Pte) -> float:
    import torch

    Xt = torch.as_tensor(Xte)
    with torch.no_grad():
        pred = net(torch.cat([Xt[Pte[:, 0]], Xt[Pte[:, 1]]], 1)).argmax(1).numpy()
    return float((pred == yte[Pte[:, 0]] + yte[Pte[:, 1]]).mean())


def run(n_pairs: int, seed: int, epochs: int, device: str = "cpu", base_epochs: int = 200) -> dict:
    Xtr, ytr, Xte, yte = split(seed)
    rng = np.random.default_rng(1000 + seed)
    P = pairs(n_pairs, len(Xtr), rng)
    Pte = pairs(1000, len(Xte), rng)
    sums = ytr[P[:, 0]] + ytr[P[:, 1]]
    net, t_psl = train_psl(Xtr, sums, P, epochs, seed, device=device)
    digit, total = evaluate_psl(net, Xte, yte, Pte)
    base, t_base = train_baseline(Xtr, sums, P, base_epochs, seed)
    return {"digit": digit, "sum": total, "base_sum": evaluate_baseline(base, Xte, yte, Pte),
            "epoch_s": float(np.mean(t_psl)), "base_epoch_s": float(np.mean(t_base))}


def epochs_for(n_pairs: int, budget: int) -> int:
    """Epochs for a training set of ``n_pairs``: about ``budget`` pairs seen in all, 5 to 60."""
    return int(min(60, max(5, math.ceil(budget / n_pairs))))


def summary(values) -> str:
    v = np.asarray(values) * 100
    return f"{v.mean():.1f} ({v.min():.1f}-{v.max():.1f})"


def main(argv=None) -> None:
    import torch
    from _common import header, md_table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, nargs="+", default=[100, 300, 1000, 3000])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=None, help="epochs for every size (default: "
                    "about --budget pairs seen, 5 to 60 epochs)")
    ap.add_argument("--budget", type=int, default=12000)
    ap.add_argument("--baseline-epochs", type=int, default=200, help="epochs of the baseline at every "
                    "size (it is cheap: more than the PSL model gets, so it is not undertrained)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="where the classifier runs and the PSL layer "
                    "solves (the baseline stays on the CPU)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(header("Addition on the 8x8 digits: PSL layer (NeuPSL energy loss) vs a neural baseline"))
    rows = []
    for n in args.pairs:
        ep = args.epochs or epochs_for(n, args.budget)
        res = [run(n, seed, ep, args.device, args.baseline_epochs) for seed in range(args.seeds)]
        rows.append([f"{n:,}", ep, args.baseline_epochs, summary([r["digit"] for r in res]), summary([r["sum"] for r in res]),
                     summary([r["base_sum"] for r in res]), f"{np.mean([r['epoch_s'] for r in res]):.2f}",
                     f"{np.mean([r['base_epoch_s'] for r in res]):.3f}"])
        print(f"<!-- {n} pairs done: {res} -->", flush=True)
    print(md_table(["training pairs", "PSL epochs", "baseline epochs", "PSL digit acc. %", "PSL sum acc. %",
                    "baseline sum acc. %", "PSL s/epoch", "baseline s/epoch"], rows))
    print(f"\nmean (min-max) over {args.seeds} seed(s); test: {1797 // 3} held-out images, 1,000 pairs of "
          f"them; torch threads: {args.threads}; device: {args.device}")


if __name__ == "__main__":
    main()

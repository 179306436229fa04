"""Weight learning on simple-acquaintances: held-out metrics of uniform vs learned weights.

The example ships one fold, so the Knows truth is split deterministically into two halves
(:func:`hlmrf.learning.folds.split_truth`, symmetric pairs kept together): learn on one half with
the other half latent, score the held-out half with the learned weights, then swap the halves.
Prints a Markdown table (mean over the two folds) with the seconds per learning epoch.

    python benchmarks/bench_learning.py [--epochs-scale 1.0]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
import hlmrf
from hlmrf.learning import (MapLossLearner, MaxPseudoLikelihood, VotedPerceptron,
                            program_with_weights)
from hlmrf.learning.folds import split_truth

EXAMPLE = ROOT / "examples" / "simple-acquaintances"
KEYS = ("accuracy", "f1", "mae", "auroc")


def learners(scale: float):
    e = lambda n: max(1, int(round(n * scale)))  # noqa: E731
    return {
        "perceptron (reference defaults)": lambda: VotedPerceptron(init="uniform", epochs=e(25)),
        "pseudolikelihood": lambda: MaxPseudoLikelihood(init="uniform", epochs=e(100)),
        "mse (implicit diff.)": lambda: MapLossLearner(loss="mse", init="uniform", epochs=e(30)),
        "bce (implicit diff.)": lambda: MapLossLearner(loss="bce", init="uniform", epochs=e(30)),
    }


def heldout(program, test, w) -> dict:
    m = hlmrf.infer(program_with_weights(program, w), test).metrics()["Knows"]
    return {k: m[k] for k in KEYS}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every epoch count")
    args = ap.parse_args(argv)
    program = hlmrf.load_rules(EXAMPLE / "rules.psl")
    store = hlmrf.load_facts(EXAMPLE / "facts", program)
    folds = [split_truth(store, 2, f, symmetric=True) for f in (0, 1)]
    hard = np.array([r.hard for r in program.rules])
    rows = [("uniform weights", [heldout(program, te, np.where(hard, 0.0, 1.0)) for _, te in folds],
             float("nan"), None)]
    rows.append(("rule-file weights", [heldout(program, te, [r.weight or 0.0 for r in program.rules])
                                       for _, te in folds], float("nan"), None))
    for name, make in learners(args.epochs_scale).items():
        scores, per_epoch, weights = [], [], []
        for tr, te in folds:
            t0 = time.perf_counter()
            fitted = make().fit(program, tr)
            per_epoch.append((time.perf_counter() - t0) / max(len(fitted.history_), 1))
            scores.append(heldout(program, te, fitted.weights_))
            weights.append(fitted.weights_)
        rows.append((name, scores, float(np.mean(per_epoch)), np.mean(weights, axis=0)))
    print(f"simple-acquaintances, 2 truth folds (held-out Knows atoms: "
          f"{', '.join(str(len(te.get('Knows').truth_args)) for _, te in folds)}); mean over folds\n")
    print("| weights | accuracy | F1 | MAE | AUROC | s / epoch | mean learned weights |")
    print("|---|---|---|---|---|---|---|")
    for name, scores, sec, w in rows:
        mean = {k: np.mean([s[k] for s in scores]) for k in KEYS}
        ws = "" if w is None else " ".join(f"{x:.2f}" for x, h in zip(w, hard) if not h)
        st = "" if np.isnan(sec) else f"{sec:.3f}"
        print(f"| {name} | {mean['accuracy']:.4f} | {mean['f1']:.4f} | {mean['mae']:.4f} | "
              f"{mean['auroc']:.4f} | {st} | {ws} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Evaluators, as the reference engine names them: discrete, continuous, categorical, ranking.

Each takes predicted values and truth values (aligned arrays) and returns plain floats. Truth at
or above the threshold counts as positive. :func:`evaluate` aligns a solved model's target atoms
with a store's truth atoms. Nothing here reads files or prints.
"""
from __future__ import annotations

import numpy as np


def discrete_metrics(pred: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of ``pred >= threshold`` against ``truth >= threshold``."""
    p = np.asarray(pred) >= threshold
    t = np.asarray(truth) >= threshold
    tp = float(np.sum(p & t))
    fp = float(np.sum(p & ~t))
    fn = float(np.sum(~p & t))
    n = len(p)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": float(np.mean(p == t)) if n else float("nan"), "precision": precision,
            "recall": recall, "f1": f1}


def continuous_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Mean absolute and mean squared error."""
    diff = np.asarray(pred, float) - np.asarray(truth, float)
    if len(diff) == 0:
        return {"mae": float("nan"), "mse": float("nan")}
    return {"mae": float(np.mean(np.abs(diff))), "mse": float(np.mean(diff * diff))}


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with ties counted half); nan without both classes."""
    s = np.asarray(scores, float)
    y = np.asarray(labels, bool)
    npos, nneg = int(y.sum()), int((~y).sum())
    if npos == 0 or nneg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    srt = s[order]
    # average ranks over ties
    bounds = np.r_[0, np.flatnonzero(np.diff(srt)) + 1, len(s)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        ranks[order[a:b]] = (a + b + 1) / 2.0
    u = ranks[y].sum() - npos * (npos + 1) / 2.0
    return float(u / (npos * nneg))


def auprc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the precision-recall curve (average precision, ties grouped)."""
    s = np.asarray(scores, float)
    y = np.asarray(labels, bool)
    npos = int(y.sum())
    if npos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    srt, yy = s[order], y[order]
    ends = np.r_[np.flatnonzero(np.diff(srt)), len(s) - 1]
    tp = np.cumsum(yy)[ends]
    k = ends + 1
    precision = tp / k
    recall = tp / npos
    prev = np.r_[0.0, recall[:-1]]
    return float(np.sum((recall - prev) * precision))


def ranking_metrics(pred: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """AUROC and AUPRC of ``pred`` as scores for the labels ``truth >= threshold``."""
    labels = np.asarray(truth) >= threshold
    return {"auroc": auroc(pred, labels), "auprc": auprc(pred, labels)}


def categorical_accuracy(pred: np.ndarray, truth: np.ndarray, groups: np.ndarray) -> float:
    """Share of groups (e.g. entities) whose argmax prediction is an argmax of the truth.

    Ties in the prediction go to the first atom of the group in input order.
    """
    pred, truth, groups = np.asarray(pred, float), np.asarray(truth, float), np.asarray(groups)
    if len(groups) == 0:
        return float("nan")
    _, inv = np.unique(groups, return_inverse=True, axis=0 if groups.ndim > 1 else None)
    inv = inv.reshape(-1)
    ng = int(inv.max()) + 1
    # Sort by (group, -pred, position): the first atom of each group run is its argmax.
    order = np.lexsort((np.arange(len(pred)), -pred, inv))
    first = order[np.r_[0, np.flatnonzero(np.diff(inv[order])) + 1]]
    tmax = np.full(ng, -np.inf)
    np.maximum.at(tmax, inv, truth)
    return float(np.mean(truth[first] >= tmax[inv[first]]))


def categorical_metrics(pred: np.ndarray, truth: np.ndarray, args: np.ndarray,
                        category_index: int | tuple[int, ...] = -1) -> dict[str, float]:
    """Categorical accuracy of atoms whose ``category_index`` argument(s) hold the category; the
    other arguments name the entity (the reference's CategoricalEvaluator)."""
    args = np.asarray(args)
    idx = np.atleast_1d(category_index) % max(args.shape[1], 1)
    entity = np.delete(args, idx, axis=1)
    if entity.shape[1] == 0:
        entity = np.zeros((len(args), 1), dtype=args.dtype)
    return {"categorical_accuracy": categorical_accuracy(pred, truth, entity)}


def evaluate(model, y: np.ndarray, store, threshold: float = 0.5,
             categories: dict[str, int | tuple[int, ...]] | None = None) -> dict[str, dict]:
    """Metrics per open predicate that has truth atoms, matched to the model's variables.

    Returns ``{PREDICATE: {"count", "unmatched", "accuracy", "precision", "recall", "f1", "mae",
    "mse", "auroc", "auprc"}}``; ``unmatched`` truth atoms (not targets) are left out of the
    metrics. ``categories`` maps a predicate name to the argument position(s) of its category
    and adds ``categorical_accuracy`` for it.
    """
    from hlmrf.grounding.relational import lookup_rows

    cats = {k.upper(): v for k, v in (categories or {}).items()}
    out = {}
    index = model.index
    for name in index.predicates:
        p = store.get(name)
        if p is None or len(p.truth_args) == 0:
            continue
        args, cols = index.atoms(name)
        pos = lookup_rows(args, p.truth_args, max(len(store.constants), 1))
        ok = pos >= 0
        pred = y[cols][pos[ok]]
        truth = p.truth_values[ok]
        row = {"count": int(ok.sum()), "unmatched": int((~ok).sum())}
        row.update(discrete_metrics(pred, truth, threshold))
        row.update(continuous_metrics(pred, truth))
        row.update(ranking_metrics(pred, truth, threshold))
        if name.upper() in cats:
            row.update(categorical_metrics(pred, truth, p.truth_args[ok], cats[name.upper()]))
        out[name] = row
    return out

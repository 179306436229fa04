"""From candidate scores to chosen objects: the decision rule, written once.

For each mention ``j`` of a question with score row ``s = scores[j]``:

- a **plural** (or not unique) mention chooses every object with ``s >= threshold`` (0.5);
- a **unique** mention (the question presupposes one object) chooses the objects with
  ``s >= threshold`` that lie within ``tie`` (0.05) of its best score, and, if none reaches the
  threshold, its best object when that scores above 0 (the presupposition says one exists);
  ties are kept, never broken by index.

A question's chosen objects are the union over its **referred** mentions (every mention but the
members of an "either A or B" union), which is what the referred objects of CLEVR's programs
count. This module does not solve or render.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..clevr.parser import QuestionParse

__all__ = ["THRESHOLD", "TIE", "mention_picks", "choose_mentions", "choose_objects", "object_weights"]

THRESHOLD = 0.5
TIE = 0.05


def mention_picks(scores: np.ndarray, parse: QuestionParse, threshold: float = THRESHOLD,
                  tie: float = TIE) -> list[list[int]]:
    """The rule above, on one question: each mention's chosen object indices (ascending lists).

    Plain Python floats (the same float64 comparisons as numpy): a question has a handful of
    mentions and at most ten objects, where numpy's per-call overhead would cost several times the
    work.
    """
    rows = np.asarray(scores, np.float64).tolist()
    out = []
    for j, m in enumerate(parse.mentions):
        s = rows[j]
        if not s:
            out.append([])
            continue
        if m.unique and not m.plural:
            best = max(s)
            if best >= threshold:
                lo = max(threshold, best - tie)
            elif best > 0:
                lo = best - 1e-9
            else:
                out.append([])
                continue
        else:
            lo = threshold
        out.append([i for i, v in enumerate(s) if v >= lo])
    return out


def choose_mentions(scores: np.ndarray, parse: QuestionParse, threshold: float = THRESHOLD,
                    tie: float = TIE) -> list[np.ndarray]:
    """The chosen object indices of every mention (sorted int arrays), by the rule above."""
    return [np.asarray(p, np.int64) for p in mention_picks(scores, parse, threshold, tie)]


def choose_objects(scores: np.ndarray, parse: QuestionParse, threshold: float = THRESHOLD,
                   tie: float = TIE) -> tuple[int, ...]:
    """The question's chosen objects: the union of its referred mentions' choices, sorted."""
    picks = mention_picks(scores, parse, threshold, tie)
    return tuple(sorted({i for p, m in zip(picks, parse.mentions) if m.referred for i in p}))


def object_weights(scores: np.ndarray, parse: QuestionParse, chosen: Sequence[int]) -> np.ndarray:
    """Each chosen object's weight for a score-weighted mask: its best score over referred mentions."""
    ref = [j for j, m in enumerate(parse.mentions) if m.referred]
    if not ref or not len(chosen):
        return np.ones(len(chosen))
    return scores[ref][:, list(chosen)].max(axis=0)

"""The in-memory executor of join plans: relational operators on integer-coded numpy tables.

A table is an ``(rows, columns)`` int64 array of constant codes. Joins are sort-merge joins
(``argsort`` + ``searchsorted`` + ``repeat``), never a Python loop per row; multi-column keys are
packed into one int64 (mixed radix, re-densified with ``np.unique`` where the radix would
overflow). This module knows plans and tables, not rules or potentials.
"""
from __future__ import annotations

from typing import Callable, Mapping, Union

import numpy as np

from hlmrf.grounding.plan import Filter, JoinPlan, Scan
from hlmrf.language.ast import Constant

_LIMIT = np.int64(2**62)


def pack_keys(left: np.ndarray, right: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray]:
    """Pack the rows of two ``(n, k)`` code tables into comparable int64 keys, consistently."""
    k = left.shape[1]
    if k == 0:
        return np.zeros(len(left), np.int64), np.zeros(len(right), np.int64)
    base = max(int(base), 1)
    lk, rk = left[:, 0].astype(np.int64), right[:, 0].astype(np.int64)
    span = base
    for j in range(1, k):
        if span * base >= _LIMIT:
            both = np.concatenate([lk, rk])
            _, inv = np.unique(both, return_inverse=True)
            lk, rk = inv[: len(lk)].astype(np.int64), inv[len(lk):].astype(np.int64)
            span = int(inv.max()) + 1 if len(inv) else 1
        lk = lk * base + left[:, j]
        rk = rk * base + right[:, j]
        span *= base
    return lk, rk


def join_indices(left_keys: np.ndarray, right_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All pairs ``(i, j)`` with ``left_keys[i] == right_keys[j]`` (left order preserved)."""
    order = np.argsort(right_keys, kind="stable")
    srt = right_keys[order]
    lo = np.searchsorted(srt, left_keys, side="left")
    hi = np.searchsorted(srt, left_keys, side="right")
    counts = hi - lo
    li = np.repeat(np.arange(len(left_keys)), counts)
    if len(li) == 0:
        return li, li.copy()
    offsets = np.cumsum(counts) - counts
    within = np.arange(len(li)) - np.repeat(offsets, counts)
    ri = order[np.repeat(lo, counts) + within]
    return li, ri


def lookup_rows(reference: np.ndarray, query: np.ndarray, base: int) -> np.ndarray:
    """Index of each query row in ``reference`` (rows unique), or -1 when absent."""
    if len(reference) == 0 or len(query) == 0:
        return np.full(len(query), -1, dtype=np.int64)
    rk, qk = pack_keys(reference, query, base)
    order = np.argsort(rk, kind="stable")
    srt = rk[order]
    pos = np.searchsorted(srt, qk)
    pos_c = np.minimum(pos, len(srt) - 1)
    found = srt[pos_c] == qk
    return np.where(found, order[pos_c], -1)


def match_pattern(rows: np.ndarray, pattern, code_of: Callable[[str], int | None]):
    """Rows of a relation that fit an atom's pattern (constants, repeated variables).

    Returns ``(rows, variables)``: the matching rows projected to the pattern's distinct variables.
    """
    keep = np.ones(len(rows), dtype=bool)
    first: dict[str, int] = {}
    for j, item in enumerate(pattern):
        if isinstance(item, Constant):
            code = code_of(item.value)
            keep &= rows[:, j] == (code if code is not None else -1)
        elif item in first:
            keep &= rows[:, j] == rows[:, first[item]]
        else:
            first[item] = j
    sel = rows[keep] if not keep.all() else rows
    variables = list(first)
    return sel[:, [first[v] for v in variables]], variables


def apply_filter(table: np.ndarray, cols: list[str], f: Filter, code_of, rank: Callable[[], np.ndarray]):
    def column(x):
        if isinstance(x, Constant):
            code = code_of(x.value)
            return np.int64(code if code is not None else -1)
        return table[:, cols.index(x)]

    left, right = column(f.left), column(f.right)
    if f.op == "!=":
        keep = left != right
    elif f.op == "==":
        keep = left == right
    else:  # "%": only one of (a, b), (b, a): the one in sorted name order.
        r = rank()
        lr = r[left] if np.ndim(left) else (r[left] if left >= 0 else -1)
        rr = r[right] if np.ndim(right) else (r[right] if right >= 0 else -1)
        keep = lr < rr
    return table[np.broadcast_to(keep, (len(table),))]


def execute(plan: JoinPlan, relation: Callable[[Scan], np.ndarray], base: int,
            code_of: Callable[[str], int | None], rank: Callable[[], np.ndarray]) -> np.ndarray:
    """Run a plan; return the ``(groundings, len(plan.variables))`` table of substitutions."""
    table = np.zeros((1, 0), dtype=np.int64)
    cols: list[str] = []
    for step in plan.steps:
        if isinstance(step, Filter):
            table = apply_filter(table, cols, step, code_of, rank)
            continue
        rows, variables = match_pattern(relation(step), step.pattern, code_of)
        shared = [v for v in variables if v in cols]
        if shared:
            lk, rk = pack_keys(table[:, [cols.index(v) for v in shared]],
                               rows[:, [variables.index(v) for v in shared]], base)
            li, ri = join_indices(lk, rk)
        else:
            li = np.repeat(np.arange(len(table)), len(rows))
            ri = np.tile(np.arange(len(rows)), len(table))
        new = [v for v in variables if v not in cols]
        table = np.concatenate([table[li], rows[ri][:, [variables.index(v) for v in new]]], axis=1)
        cols += new
        if len(table) == 0:
            break
    if len(table) == 0:
        return np.zeros((0, len(plan.variables)), dtype=np.int64)
    return table[:, [cols.index(v) for v in plan.variables]]

"""The in-memory executor of join plans: relational operators on integer-coded numpy tables.

A table is an ``(rows, columns)`` int64 array of constant codes. Joins are sort-merge joins
(``argsort`` + ``searchsorted`` + ``repeat``), never a Python loop per row; multi-column keys are
packed into one int64 (mixed radix, re-densified with ``np.unique`` where the radix would
overflow). Every constant a plan mentions must have a code (grounding codes the rules' constants
that no fact mentions after the data's, so no sentinel code can alias a real one).
:func:`count_rows` counts what :func:`execute` would return without building it, so grounding can
refuse a rule that will not fit before allocating it. This module knows plans and tables, not rules
or potentials.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from hlmrf.data.keys import pack_keys
from hlmrf.grounding.plan import Filter, JoinPlan, Scan
from hlmrf.language.ast import Constant

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


_DENSE_FACTOR = 8
_DENSE_MAX = 1 << 25
"""lookup_rows indexes a direct table when the reference's keys span at most 8 times its rows
(and at most 32M keys, 256 MB); otherwise it sorts and binary-searches."""


def lookup_rows(reference: np.ndarray, query: np.ndarray, base: int) -> np.ndarray:
    """Index of each query row in ``reference`` (rows unique), or -1 when absent."""
    if len(reference) == 0 or len(query) == 0:
        return np.full(len(query), -1, dtype=np.int64)
    rk, qk = pack_keys(reference, query, base)
    lo, hi = int(rk.min()), int(rk.max())
    span = hi - lo + 1
    if span <= max(_DENSE_FACTOR * len(rk), 1 << 16) and span <= _DENSE_MAX:
        # Keys in a narrow range (codes of a predicate's arguments usually are): a direct table
        # instead of a binary search per query, which is slow on millions of unordered queries.
        table = np.full(span, -1, dtype=np.int64)
        table[rk - lo] = np.arange(len(rk))
        out = np.full(len(qk), -1, dtype=np.int64)
        inside = (qk >= lo) & (qk <= hi)
        out[inside] = table[qk[inside] - lo]
        return out
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
            keep &= rows[:, j] == _code(code_of, item)
        elif item in first:
            keep &= rows[:, j] == rows[:, first[item]]
        else:
            first[item] = j
    sel = rows[keep] if not keep.all() else rows
    variables = list(first)
    return sel[:, [first[v] for v in variables]], variables


def _code(code_of: Callable[[str], int | None], constant: Constant) -> np.int64:
    code = code_of(constant.value)
    if code is None:  # grounding codes every constant of the rules; a sentinel would alias
        raise ValueError(f"the constant {constant} has no code")
    return np.int64(code)


def filter_mask(table: np.ndarray, cols: list[str], f: Filter, code_of,
                rank: Callable[[], np.ndarray]) -> np.ndarray:
    """Which rows of ``table`` (columns named ``cols``) pass the comparison ``f``."""
    def column(x):
        return _code(code_of, x) if isinstance(x, Constant) else table[:, cols.index(x)]

    left, right = column(f.left), column(f.right)
    if f.op == "!=":
        keep = left != right
    elif f.op == "==":
        keep = left == right
    else:  # "%": only one of (a, b), (b, a): the one in sorted name order.
        r = rank()
        keep = r[left] < r[right]
    return np.broadcast_to(keep, (len(table),))


def apply_filter(table: np.ndarray, cols: list[str], f: Filter, code_of, rank: Callable[[], np.ndarray]):
    return table[filter_mask(table, cols, f, code_of, rank)]


def execute(plan: JoinPlan, relation: Callable[[Scan], np.ndarray], base: int,
            code_of: Callable[[str], int | None], rank: Callable[[], np.ndarray],
            part: tuple[int, int] = (0, 1)) -> np.ndarray:
    """Run a plan; return the ``(groundings, len(plan.variables))`` table of substitutions.

    ``part = (k, K)`` runs it on the ``k``-th of ``K`` even slices of the first scan's matching
    rows: joins and filters keep the order of their left table, so the ``K`` parts, concatenated
    in order, are exactly the whole result, while each holds about ``1/K`` of it in memory
    (grounding runs a large rule part by part). A plan that does not start with a scan has one
    part: ``(0, K)`` returns everything, ``(k > 0, K)`` nothing.
    """
    k, parts = part
    sliced = parts > 1 and bool(plan.steps) and isinstance(plan.steps[0], Scan)
    if parts > 1 and not sliced and k > 0:
        return np.zeros((0, len(plan.variables)), dtype=np.int64)
    table = np.zeros((1, 0), dtype=np.int64)
    cols: list[str] = []
    for i, step in enumerate(plan.steps):
        if isinstance(step, Filter):
            table = apply_filter(table, cols, step, code_of, rank)
            continue
        rows, variables = match_pattern(relation(step), step.pattern, code_of)
        if i == 0 and sliced:
            rows = rows[(len(rows) * k) // parts:(len(rows) * (k + 1)) // parts]
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


def _step_vars(step) -> set[str]:
    if isinstance(step, Filter):
        return {x for x in (step.left, step.right) if isinstance(x, str)}
    return {x for x in step.pattern if isinstance(x, str)}


def _aggregate(table: np.ndarray, weight: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``table`` with the summed weights of their copies."""
    if len(table) == 0:
        return table, weight
    if table.shape[1] == 0:
        return table[:1], np.array([weight.sum()])
    keys, _ = pack_keys(table, table[:0], base)  # one int64 per row: a 1-d unique is fast
    _, first, inv = np.unique(keys, return_index=True, return_inverse=True)
    return table[first], np.bincount(inv.ravel(), weights=weight, minlength=len(first))


def count_rows(plan: JoinPlan, relation: Callable[[Scan], np.ndarray], base: int,
               code_of: Callable[[str], int | None], rank: Callable[[], np.ndarray],
               cap: int = 2_000_000, _splits: int = 3) -> tuple[int, bool]:
    """How many rows :func:`execute` would return for ``plan``, without building them.

    Returns ``(count, exact)``. The plan runs on weighted tables: after each step the table is
    projected to the variables that later steps still use, each distinct row weighted by how many
    rows it stands for, so a cartesian product costs one multiplication and a chain of equi-joins
    one pass over each relation (a group-by count per join key). A ``!=`` comparison would keep
    its variables in the tables, so it is counted by difference instead: the rows without it
    minus the rows with its two sides made equal (up to three of them, by inclusion-exclusion).
    The count is exact while no intermediate join has more than ``cap`` pairs; past that it is
    an upper bound: the exact count so far times, for each remaining scan, the largest number of
    its rows sharing one join key (comparisons ignored, since they only remove rows).
    """
    neq = [f for f in plan.steps if isinstance(f, Filter) and f.op == "!="]
    if neq and _splits > 0:
        f = neq[0]
        rest = tuple(step for step in plan.steps if step is not f)
        n_all, exact_all = count_rows(replace(plan, steps=rest), relation, base, code_of, rank,
                                      cap, _splits - 1)
        equal = _equate(rest, f.left, f.right)
        if equal is None:
            return n_all, exact_all
        n_eq, exact_eq = count_rows(replace(plan, steps=equal), relation, base, code_of, rank,
                                    cap, _splits - 1)
        return (n_all - n_eq, True) if exact_all and exact_eq else (n_all, False)
    steps = plan.steps
    need_after: list[set[str]] = []
    later: set[str] = set()
    for step in reversed(steps):
        need_after.append(set(later))
        later |= _step_vars(step)
    need_after.reverse()

    table = np.zeros((1, 0), dtype=np.int64)
    weight = np.ones(1)
    cols: list[str] = []
    bound: set[str] = set()
    for k, step in enumerate(steps):
        if isinstance(step, Filter):
            keep = filter_mask(table, cols, step, code_of, rank)
            table, weight = table[keep], weight[keep]
        else:
            rows, variables = match_pattern(relation(step), step.pattern, code_of)
            shared = [v for v in variables if v in cols]
            kept = [v for v in variables if v in shared or v in need_after[k]]
            mult = np.ones(len(rows))
            if len(kept) < len(variables):  # match_pattern's rows are distinct: only a projection merges
                rows, mult = _aggregate(rows[:, [variables.index(v) for v in kept]], mult, base)
            if shared:
                lk, rk = pack_keys(table[:, [cols.index(v) for v in shared]],
                                   rows[:, [kept.index(v) for v in shared]], base)
                keys, inv = np.unique(rk, return_inverse=True)
                n_per = np.bincount(inv.ravel(), minlength=len(keys))
                w_per = np.bincount(inv.ravel(), weights=mult, minlength=len(keys))
                if len(keys):
                    pos = np.minimum(np.searchsorted(keys, lk), len(keys) - 1)
                    hit = keys[pos] == lk
                    pairs = int(np.where(hit, n_per[pos], 0).sum())
                    total = float((weight * np.where(hit, w_per[pos], 0.0)).sum())
                else:
                    pairs, total = 0, 0.0
            else:
                pairs, total = len(table) * len(rows), float(weight.sum() * mult.sum())
            bound |= set(variables)
            if pairs > cap:
                return _bound_rest(total, steps[k + 1:], bound, relation, code_of), False
            if shared:
                li, ri = join_indices(lk, rk)
            else:
                li = np.repeat(np.arange(len(table)), len(rows))
                ri = np.tile(np.arange(len(rows)), len(table))
            new = [v for v in kept if v not in cols]
            table = np.concatenate([table[li], rows[ri][:, [kept.index(v) for v in new]]], axis=1)
            weight = weight[li] * mult[ri]
            cols += new
        if len(table) == 0:
            return 0, True
        keep_cols = [v for v in cols if v in need_after[k]]
        if len(keep_cols) < len(cols):
            table, weight = _aggregate(table[:, [cols.index(v) for v in keep_cols]], weight, base)
            cols = keep_cols
    total = float(weight.sum())
    return _as_count(total), total < 2.0 ** 53  # floats count exactly up to 2^53


def _as_count(x) -> int:
    """A float count as an int; past 1e18 (no grounding is that large) it saturates."""
    return int(round(min(float(x), 1e18)))


def _equate(steps, left, right):
    """``steps`` with ``right`` replaced by ``left`` (a variable renamed, or bound to a constant);
    None when both are different constants (no row has them equal)."""
    if isinstance(right, Constant) and not isinstance(left, Constant):
        left, right = right, left
    if isinstance(right, Constant):  # both constants
        return steps if left.value == right.value else None

    def sub(x):
        return left if x == right else x

    out = []
    for step in steps:
        if isinstance(step, Filter):
            out.append(Filter(step.op, sub(step.left), sub(step.right)))
        else:
            out.append(replace(step, pattern=tuple(sub(x) for x in step.pattern)))
    return tuple(out)


def _bound_rest(total: float, rest, bound: set[str], relation, code_of) -> int:
    for step in rest:
        if isinstance(step, Filter):
            continue
        rows, variables = match_pattern(relation(step), step.pattern, code_of)
        shared = [variables.index(v) for v in variables if v in bound]
        if not shared or len(rows) == 0:
            fan = len(rows)
        else:
            fan = int(np.unique(rows[:, shared], axis=0, return_counts=True)[1].max())
        total *= fan
        bound |= set(variables)
    return _as_count(total)

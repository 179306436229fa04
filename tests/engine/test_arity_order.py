"""``ground._order_by_arity``: each rule's rows ordered by their number of copies, window by window,
as a permutation that moves every per-row array with its row (against a row-by-row reference)."""
from __future__ import annotations

import importlib

import numpy as np
from hypothesis import given, settings, strategies as st

G = importlib.import_module("hlmrf.grounding.ground")  # the module, not the function of that name


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 5)), min_size=0, max_size=60),
       st.integers(1, 7), st.integers(0, 2**31 - 1))
def test_rows_are_ordered_by_arity_within_rule_windows(rows, window, seed):
    rng = np.random.default_rng(seed)
    rows = sorted(rows, key=lambda r: r[0])  # a rule's rows are contiguous in a model
    rule = np.array([r for r, _ in rows], np.int32)
    cnt = np.array([k for _, k in rows], np.int64)
    indptr = np.r_[0, np.cumsum(cnt)].astype(np.int32)
    indices = rng.integers(0, 50, indptr[-1]).astype(np.int32)
    data = rng.normal(size=indptr[-1])
    c = rng.normal(size=len(rows))
    sub = np.arange(len(rows), dtype=np.int64)
    before = [(int(rule[i]), c[i], tuple(indices[indptr[i]:indptr[i + 1]]), tuple(data[indptr[i]:indptr[i + 1]]))
              for i in range(len(rows))]
    old = G.ARITY_WINDOW
    G.ARITY_WINDOW = window
    try:
        G._order_by_arity(indptr, indices, data, rule, (c, None, sub))
    finally:
        G.ARITY_WINDOW = old
    after = [(int(rule[i]), c[i], tuple(indices[indptr[i]:indptr[i + 1]]), tuple(data[indptr[i]:indptr[i + 1]]))
             for i in range(len(rows))]
    # every row moved whole, with its substitution row: after[i] is before[sub[i]]
    assert after == [before[int(s)] for s in sub]
    # within a rule's window, by count, stably (substitution rows increase within a count)
    starts = [i for i in range(len(rows)) if i == 0 or rule[i] != rule[i - 1]]
    for a, b in zip(starts, starts[1:] + [len(rows)]):
        for lo in range(a, b, window):
            hi = min(lo + window, b)
            assert sorted(sub[lo:hi]) == list(range(lo, hi))  # rows stay in their window
            key = [(int(cnt[s]), int(s)) for s in sub[lo:hi]]
            assert key == sorted(key)

"""``hlmrf.data.keys``: packed row keys are equal exactly when the rows are equal, including when
the radix would overflow int64 and the leading columns are re-densified first."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from hlmrf.data.keys import pack_keys, row_keys


@st.composite
def tables(draw):
    k = draw(st.integers(0, 5))
    base = draw(st.sampled_from([1, 2, 7, 1000, 2**20, 2**40]))  # 2**20 over 4+ columns overflows
    codes = st.integers(0, base - 1)
    left = draw(st.lists(st.lists(codes, min_size=k, max_size=k), max_size=25))
    right = draw(st.lists(st.lists(codes, min_size=k, max_size=k), max_size=25))
    as_table = lambda rows: np.array(rows, np.int64).reshape(len(rows), k)  # noqa: E731
    return as_table(left), as_table(right), base


@settings(max_examples=300, deadline=None)
@given(tables())
def test_keys_equal_exactly_when_rows_equal(case):
    left, right, base = case
    lk, rk = pack_keys(left, right, base)
    assert lk.dtype == rk.dtype == np.int64
    both, keys = np.concatenate([left, right]), np.concatenate([lk, rk])
    for i in range(len(both)):
        same_row = (both == both[i]).all(axis=1)
        np.testing.assert_array_equal(keys == keys[i], same_row)


@settings(max_examples=100, deadline=None)
@given(tables())
def test_row_keys_find_the_duplicates_np_unique_finds(case):
    table = case[0]
    if table.shape[1] == 0:
        return
    n_distinct = len(np.unique(table, axis=0)) if len(table) else 0
    assert len(np.unique(row_keys(table))) == n_distinct

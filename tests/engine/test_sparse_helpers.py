"""The memory-lean CSR helpers of hlmrf.model.hlmrf against scipy's own operations."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings, strategies as st

from hlmrf.model import hlmrf as H


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 40), st.integers(1, 30), st.floats(0.0, 0.6), st.integers(0, 2**31 - 1),
       st.lists(st.integers(0, 39), max_size=25), st.sampled_from([np.int32, np.int64]))
def test_select_rows_and_column_counts_equal_scipys(m, n, density, seed, picks, itype):
    A = sp.random(m, n, density=density, format="csr", random_state=seed)
    A.indices, A.indptr = A.indices.astype(itype), A.indptr.astype(itype)
    rows = np.array([r for r in picks if r < m], dtype=np.int64)
    got = H.select_rows(A, rows)
    assert got.shape == (len(rows), n) and got.indices.dtype in (np.int32, itype)
    assert abs(got - A[rows]).sum() == 0 if len(rows) else got.nnz == 0
    np.testing.assert_array_equal(H.column_counts(A), np.bincount(A.indices, minlength=n))


def test_column_counts_over_several_chunks(monkeypatch):
    monkeypatch.setattr(H, "_CHUNK", 7)
    A = sp.random(30, 12, density=0.5, format="csr", random_state=3)
    np.testing.assert_array_equal(H.column_counts(A, 12), np.bincount(A.indices, minlength=12))


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 3), st.integers(0, 60), st.integers(0, 200), st.integers(1, 50), st.integers(0, 2**31 - 1))
def test_lookup_rows_direct_table_equals_the_binary_search(arity, n_ref, n_query, base, seed):
    """relational.lookup_rows' direct-table path (narrow key ranges) against its sort-and-search
    path: the same index, or -1, for every query row."""
    import importlib

    R = importlib.import_module("hlmrf.grounding.relational")
    rng = np.random.default_rng(seed)
    ref = np.unique(rng.integers(0, base, size=(n_ref, arity)), axis=0)
    ref = ref[rng.permutation(len(ref))]
    query = rng.integers(0, base + 2, size=(n_query, arity))
    dense = R.lookup_rows(ref, query, base + 2)
    saved = R._DENSE_MAX
    try:
        R._DENSE_MAX = 0  # force the binary search
        searched = R.lookup_rows(ref, query, base + 2)
    finally:
        R._DENSE_MAX = saved
    np.testing.assert_array_equal(dense, searched)
    hit = dense >= 0
    if len(ref):
        np.testing.assert_array_equal(ref[dense[hit]], query[hit])

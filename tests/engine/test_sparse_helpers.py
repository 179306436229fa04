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

"""Contiguous row ranges of a model, one per worker, balanced by work (local copies plus rows).

No torch here: the single-process code and the tests use it too.
"""
from __future__ import annotations

import numpy as np


def row_ranges(indptr: np.ndarray, parts: int) -> list[slice]:
    """``parts`` contiguous slices of the rows of a CSR matrix with row pointers ``indptr``, each
    with about the same number of local copies plus rows (the per-row and per-copy work of an
    ADMM iteration; the fused kernel splits its chunks the same way). Some slices are empty
    when there are fewer rows than parts."""
    if parts < 1:
        raise ValueError(f"parts must be >= 1, not {parts}")
    indptr = np.asarray(indptr)
    m = len(indptr) - 1
    L = int(indptr[-1]) if m > 0 else 0
    work = indptr[:-1].astype(np.int64) + np.arange(m)  # copies and rows before each row
    cuts = np.searchsorted(work, np.linspace(0, L + m, parts + 1)[1:-1])
    bounds = np.r_[0, cuts, m].astype(np.int64)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]

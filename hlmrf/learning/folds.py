"""Deterministic train/test folds of a store's truth, for data sets that ship a single fold.

The folds keep every observation and every target (so both ground to the same model) and
partition only the truth atoms: the training fold's held-out targets become latent, the test fold
scores them. The fold of an atom is a hash of its argument names (stable across runs, platforms
and Python's hash seed); with ``symmetric`` the arguments are sorted first, so ``Knows(a, b)`` and
``Knows(b, a)`` share a fold. This is transductive evaluation, not a second independent fold.
"""
from __future__ import annotations

import copy
import zlib

import numpy as np

from hlmrf.data.store import FactStore
from hlmrf.errors import SettingsError


def fold_of(names, k: int, symmetric: bool = False, salt: str = "") -> int:
    """The fold in ``range(k)`` of one atom given its argument names."""
    key = sorted(names) if symmetric else list(names)
    return zlib.crc32(("\x1f".join([salt, *key])).encode("utf-8")) % k


def split_truth(store: FactStore, k: int = 2, test_fold: int = 0, predicates=None,
                symmetric: bool = False, salt: str = "") -> tuple[FactStore, FactStore]:
    """``(train, test)`` copies of ``store``: the test copy keeps the truth atoms in
    ``test_fold``, the train copy the others (for ``predicates``, default all with truth)."""
    if k < 2 or not 0 <= test_fold < k:
        raise SettingsError(f"need k >= 2 and 0 <= test_fold < k (got k={k}, test_fold={test_fold})")
    train, test = copy.deepcopy(store), copy.deepcopy(store)
    keys = [p.upper() for p in predicates] if predicates is not None else list(store.predicates)
    names = store.constants.names
    for key in keys:
        p = store.predicates.get(key)
        if p is None or len(p.truth_args) == 0:
            continue
        folds = np.array([fold_of([names[c] for c in row], k, symmetric, salt) for row in p.truth_args])
        for copy_, keep in ((train, folds != test_fold), (test, folds == test_fold)):
            q = copy_.predicates[key]
            q.truth_args = p.truth_args[keep]
            q.truth_values = p.truth_values[keep]
    return train, test

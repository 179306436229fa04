"""Many HL-MRFs stacked into one block-diagonal model, and the answer split back per model.

After PyTorch Geometric's ``Batch``: the models' variables and rows are concatenated (no padding),
so the stacked coefficient matrix is block-diagonal, and assignment vectors (``var_batch``,
``row_batch``) say which model each variable and row belongs to. Each model keeps its own
variables, constraints and rule map: rule codes are offset by ``rule_ptr`` so the stacked model's
``energy_by_rule`` lists every model's rules in turn. This module only stacks and splits (numpy and
scipy); solving the stack is the solvers' business (:func:`hlmrf.inference.torch_admm.solve_batch`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from hlmrf.model.hlmrf import HLMRF, GroundIndex


def _n_rules(model: HLMRF) -> int:
    return len(model.index.rule_texts) or (int(model.rule.max()) + 1 if model.m else 0)


@dataclass(frozen=True)
class ModelBatch:
    """A block-diagonal union of models.

    Attributes
    ----------
    models : the models, in order.
    model : the stacked :class:`HLMRF` (``var_ptr[-1]`` variables, ``row_ptr[-1]`` rows).
    var_ptr : (B + 1,) int64; model ``b`` owns variables ``var_ptr[b]:var_ptr[b + 1]``.
    row_ptr : (B + 1,) int64; model ``b`` owns rows ``row_ptr[b]:row_ptr[b + 1]``.
    rule_ptr : (B + 1,) int64; model ``b``'s rule codes are offset by ``rule_ptr[b]``.
    var_batch : (N,) int64, the model of each variable.
    row_batch : (M,) int64, the model of each row.
    """

    models: tuple[HLMRF, ...]
    model: HLMRF
    var_ptr: np.ndarray
    row_ptr: np.ndarray
    rule_ptr: np.ndarray
    var_batch: np.ndarray
    row_batch: np.ndarray

    @classmethod
    def from_models(cls, models: Sequence[HLMRF]) -> "ModelBatch":
        """Stack ``models`` (any number, including models without rows or variables)."""
        models = tuple(models)
        B = len(models)
        ns = np.fromiter((m.n for m in models), np.int64, B)
        ms = np.fromiter((m.m for m in models), np.int64, B)
        nr = np.fromiter((_n_rules(m) for m in models), np.int64, B)
        var_ptr = np.r_[0, np.cumsum(ns)].astype(np.int64)
        row_ptr = np.r_[0, np.cumsum(ms)].astype(np.int64)
        rule_ptr = np.r_[0, np.cumsum(nr)].astype(np.int64)
        mats = [m.A.tocsr() for m in models]
        nnz = np.fromiter((A.nnz for A in mats), np.int64, B)
        nnz_ptr = np.r_[0, np.cumsum(nnz)].astype(np.int64)

        def cat(arrays, dtype):
            return np.concatenate(arrays).astype(dtype, copy=False) if B else np.zeros(0, dtype)

        # Shift each block's column indices and row pointers by where the block starts; the
        # offsets are repeated per entry so the whole stack is built with a few concatenations.
        indices = cat([A.indices for A in mats], np.int64) + np.repeat(var_ptr[:-1], nnz)
        indptr = np.r_[0, cat([A.indptr[1:] for A in mats], np.int64) + np.repeat(nnz_ptr[:-1], ms)]
        data = cat([A.data for A in mats], np.float64)
        A = sp.csr_matrix((data, indices, indptr.astype(np.int64)), shape=(int(row_ptr[-1]), int(var_ptr[-1])))
        row_batch = np.repeat(np.arange(B, dtype=np.int64), ms)
        rule = cat([m.rule for m in models], np.int64) + rule_ptr[:-1][row_batch]
        texts = tuple(t for m in models for t in (m.index.rule_texts or [f"rule {i}" for i in range(_n_rules(m))]))
        stacked = HLMRF(A, cat([m.c for m in models], np.float64), cat([m.w for m in models], np.float64),
                        cat([m.p for m in models], np.int8), cat([m.kind for m in models], np.int8),
                        rule.astype(np.int32), GroundIndex(rule_texts=texts))
        return cls(models, stacked, var_ptr, row_ptr, rule_ptr,
                   np.repeat(np.arange(B, dtype=np.int64), ns), row_batch)

    @property
    def num_models(self) -> int:
        return len(self.models)

    def __len__(self) -> int:
        return len(self.models)

    def split(self, y: np.ndarray) -> list[np.ndarray]:
        """Split a stacked variable vector (length ``var_ptr[-1]``) into one array per model."""
        y = np.asarray(y)
        if y.shape[0] != self.var_ptr[-1]:
            raise ValueError(f"expected {self.var_ptr[-1]} values (the batch's variables), got {y.shape[0]}")
        return [y[s:e].copy() for s, e in zip(self.var_ptr[:-1], self.var_ptr[1:])]

    def split_rows(self, r: np.ndarray) -> list[np.ndarray]:
        """Split a per-row array (length ``row_ptr[-1]``) into one array per model."""
        r = np.asarray(r)
        if r.shape[0] != self.row_ptr[-1]:
            raise ValueError(f"expected {self.row_ptr[-1]} values (the batch's rows), got {r.shape[0]}")
        return [r[s:e].copy() for s, e in zip(self.row_ptr[:-1], self.row_ptr[1:])]

    def stack(self, ys: Sequence[np.ndarray]) -> np.ndarray:
        """The inverse of :meth:`split`: one vector from per-model values (e.g. warm starts)."""
        if len(ys) != len(self.models):
            raise ValueError(f"expected {len(self.models)} arrays (one per model), got {len(ys)}")
        for b, y in enumerate(ys):
            if np.shape(y) != (self.models[b].n,):
                raise ValueError(f"array {b} has shape {np.shape(y)}; model {b} has {self.models[b].n} variables")
        return np.concatenate([np.asarray(y, np.float64) for y in ys]) if ys else np.zeros(0)

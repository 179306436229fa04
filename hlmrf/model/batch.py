"""Many HL-MRFs stacked into one block-diagonal model, and the answer split back per model.

After PyTorch Geometric's ``Batch``: the models' variables and rows are concatenated (no padding),
so the stacked coefficient matrix is block-diagonal, and assignment vectors (``var_batch``,
``row_batch``) say which model each variable and row belongs to. Each model keeps its own
variables, constraints and rule map: rule codes are offset by ``rule_ptr`` so the stacked model's
``energy_by_rule`` lists every model's rules in turn. A model that is block-diagonal already (one
grounding of many independent problems) is cut into a batch by :meth:`ModelBatch.from_blocks`
without building a model per block until one is asked for. This module only stacks and splits
(numpy and scipy); solving the stack is the solvers' business
(:func:`hlmrf.inference.torch_admm.solve_batch`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, overload

import numpy as np
import scipy.sparse as sp

from hlmrf.model.hlmrf import HLMRF, GroundIndex


def _n_rules(model: HLMRF) -> int:
    return len(model.index.rule_texts) or (int(model.rule.max()) + 1 if model.m else 0)


class _Blocks(Sequence):
    """The blocks of a stacked model as a read-only sequence of :class:`HLMRF`, each built (and
    kept) on first access: cutting thousands of blocks costs little until someone asks for one."""

    def __init__(self, stacked: HLMRF, var_ptr: np.ndarray, row_ptr: np.ndarray, rule_ptr: np.ndarray,
                 index: GroundIndex):
        self._stacked, self._var_ptr, self._row_ptr, self._rule_ptr = stacked, var_ptr, row_ptr, rule_ptr
        self._index = index
        self._built: list[HLMRF | None] = [None] * (len(var_ptr) - 1)
        A = stacked.A
        # int32 index arrays spare scipy a downcast check per block (half the build time).
        small = A.nnz < 2**31 and A.shape[1] < 2**31
        it = np.int32 if small else np.int64
        self._indptr, self._indices = A.indptr.astype(it, copy=False), A.indices.astype(it, copy=False)

    def __len__(self) -> int:
        return len(self._built)

    @overload
    def __getitem__(self, b: int) -> HLMRF: ...

    @overload
    def __getitem__(self, b: slice) -> tuple[HLMRF, ...]: ...

    def __getitem__(self, b):
        if isinstance(b, slice):
            return tuple(self[i] for i in range(*b.indices(len(self))))
        b = range(len(self))[b]  # negative indices; IndexError past the end
        model = self._built[b]
        if model is None:
            model = self._built[b] = self._build(b)
        return model

    def _build(self, b: int) -> HLMRF:
        st = self._stacked
        r0, r1 = int(self._row_ptr[b]), int(self._row_ptr[b + 1])
        v0, v1 = int(self._var_ptr[b]), int(self._var_ptr[b + 1])
        a0, a1 = self._indptr[r0], self._indptr[r1]
        A = sp.csr_matrix((st.A.data[a0:a1], self._indices[a0:a1] - v0, self._indptr[r0:r1 + 1] - a0),
                          shape=(r1 - r0, v1 - v0))
        return HLMRF(A, st.c[r0:r1], st.w[r0:r1], st.p[r0:r1], st.kind[r0:r1],
                     st.rule[r0:r1] - self._rule_ptr[b].astype(st.rule.dtype), self._index)

    def __repr__(self) -> str:
        return f"<{len(self)} blocks>"


@dataclass(frozen=True)
class ModelBatch:
    """A block-diagonal union of models.

    Attributes
    ----------
    models : the models, in order (a tuple; from :meth:`from_blocks`, a lazy sequence that builds
        each on first access).
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

    @classmethod
    def from_blocks(cls, model: HLMRF, var_batch: np.ndarray, num_models: int | None = None) -> "ModelBatch":
        """Cut a block-diagonal ``model`` into a batch of its blocks.

        ``var_batch[i]`` is the block of variable ``i``; it must be non-decreasing (each block's
        variables consecutive, in order) and every row must touch the variables of one block
        only. Rows are sorted (stably) by their block; block ``b`` is the rows and variables of
        block ``b``, with the model's rule texts (so ``rule_ptr[b] = b * rules``, as
        :meth:`from_models` would give for the blocks). ``num_models`` (default: the largest
        block + 1) may add trailing empty blocks. ``models`` is a lazy sequence: a block's
        :class:`HLMRF` is built when first accessed, so cutting costs a few array passes however
        many blocks there are. Each block's index holds the rule texts only (not the atoms).

        Raises
        ------
        ValueError : ``var_batch`` of the wrong length, decreasing or out of range, an empty row,
            or a row that touches two blocks.
        """
        var_batch = np.asarray(var_batch, np.int64).reshape(-1)
        if var_batch.shape[0] != model.n:
            raise ValueError(f"var_batch has {var_batch.shape[0]} entries; the model has {model.n} variables")
        B = (int(var_batch[-1]) + 1 if model.n else 0) if num_models is None else int(num_models)
        if model.n and (var_batch[0] < 0 or var_batch[-1] >= B or (np.diff(var_batch) < 0).any()):
            raise ValueError("var_batch must be non-decreasing in [0, num_models): give each block's "
                             "variables consecutively (permute the model's columns first)")
        A = model.A.tocsr()
        lengths = np.diff(A.indptr)
        if model.m and (lengths == 0).any():
            raise ValueError(f"row {int(np.flatnonzero(lengths == 0)[0])} is empty; a block has no row to claim it")
        row_batch = var_batch[A.indices[A.indptr[:-1]]] if model.m else np.zeros(0, np.int64)
        if model.m and (var_batch[A.indices] != np.repeat(row_batch, lengths)).any():
            bad = int(np.repeat(np.arange(model.m), lengths)[var_batch[A.indices] != np.repeat(row_batch, lengths)][0])
            raise ValueError(f"row {bad} touches the variables of two blocks: the model is not block-diagonal "
                             "under var_batch")
        c, w, p, kind, rule = model.c, model.w, model.p, model.kind, model.rule
        if (np.diff(row_batch) < 0).any():
            order = np.argsort(row_batch, kind="stable")
            A, row_batch = A[order], row_batch[order]
            c, w, p, kind, rule = c[order], w[order], p[order], kind[order], rule[order]
        if not A.has_sorted_indices:
            A = A.copy()
            A.sort_indices()
        var_ptr = np.searchsorted(var_batch, np.arange(B + 1)).astype(np.int64)
        row_ptr = np.searchsorted(row_batch, np.arange(B + 1)).astype(np.int64)
        nr = _n_rules(model)
        rule_ptr = np.arange(B + 1, dtype=np.int64) * nr
        texts = tuple(model.index.rule_texts) or tuple(f"rule {i}" for i in range(nr))
        stacked = HLMRF(A, c, w, p, kind, (rule + rule_ptr[:-1][row_batch]).astype(np.int32),
                        GroundIndex(rule_texts=texts * B))
        blocks = _Blocks(stacked, var_ptr, row_ptr, rule_ptr, GroundIndex(rule_texts=texts))
        return cls(blocks, stacked, var_ptr, row_ptr, rule_ptr, var_batch.copy(), row_batch)

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

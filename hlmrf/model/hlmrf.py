"""A ground hinge-loss MRF as flat arrays, and the index that maps it back to atoms and rules.

Potentials are arrays, not objects (after LINQS PSL's flat term store): a CSR matrix ``A`` of
coefficients, constants ``c``, weights ``w``, exponents ``p`` and kind codes (see
:mod:`hlmrf.model.terms` for the formulas). Row ``i`` contributes ``w_i * f(A_i y - c_i)`` to the
energy, or constrains ``A_i y - c_i`` when hard. This module evaluates energies and violations; it
does not solve (see :mod:`hlmrf.inference`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from typing import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from hlmrf.model.terms import Kind, term_energy, term_violation


_CHUNK = 1 << 20


def code_counts(codes: np.ndarray, n: int) -> np.ndarray:
    """``np.bincount(codes, minlength=n)`` for non-negative codes below ``n``, counted a million
    at a time: ``np.bincount`` on a whole int32 array would first copy it to int64 (8 bytes per
    entry)."""
    out = np.zeros(n, np.int64)
    for s in range(0, len(codes), _CHUNK):
        out += np.bincount(codes[s:s + _CHUNK], minlength=n)
    return out


def column_counts(A: sp.csr_matrix, n: int | None = None) -> np.ndarray:
    """Entries per column of a CSR matrix (:func:`code_counts` of its column indices)."""
    return code_counts(A.indices, A.shape[1] if n is None else n)


ENERGY_CHUNK = 1 << 18
"""Rows per chunk of :meth:`HLMRF.energy_by_rule`."""


def select_rows(A: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """``A[rows]`` for a few rows of a large CSR matrix, touching only those rows: scipy's
    fancy indexing copies the whole index arrays to int64 first when ``rows`` is int64."""
    rows = np.asarray(rows, dtype=np.int64)
    starts = A.indptr[rows].astype(np.int64)
    counts = A.indptr[rows + 1].astype(np.int64) - starts
    indptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    take = np.repeat(starts - indptr[:-1], counts) + np.arange(indptr[-1])
    itype = A.indices.dtype
    return sp.csr_matrix((A.data[take], A.indices[take], indptr.astype(itype)),
                         shape=(len(rows), A.shape[1]))


@dataclass(frozen=True)
class GroundIndex:
    """What a model's rows and columns mean.

    Attributes
    ----------
    var_predicate : (n,) int32, index into ``predicates`` of each variable's predicate.
    var_args : list per predicate of the ``(k, arity)`` constant codes of its variables, in
        variable order; ``var_offsets[j]`` is the first variable of predicate ``j``.
    rule_texts : the text of each rule, indexed by a row's ``rule`` code.
    constants : the constant names, indexed by code.
    """

    predicates: tuple[str, ...] = ()
    var_offsets: tuple[int, ...] = ()
    var_args: tuple[np.ndarray, ...] = ()
    rule_texts: tuple[str, ...] = ()
    constants: tuple[str, ...] | list = ()

    def atoms(self, predicate: str) -> tuple[np.ndarray, slice]:
        """``(args, columns)``: the argument codes of a predicate's variables and their slice."""
        j = self.predicates.index(predicate)
        start = self.var_offsets[j]
        return self.var_args[j], slice(start, start + len(self.var_args[j]))

    def atom_name(self, var: int) -> str:
        j = int(np.searchsorted(np.asarray(self.var_offsets), var, side="right") - 1)
        args = self.var_args[j][var - self.var_offsets[j]]
        return f"{self.predicates[j]}({', '.join(self.constants[a] for a in args)})"


@dataclass(frozen=True)
class HLMRF:
    """A hinge-loss MRF over ``n`` variables in [0, 1].

    Attributes
    ----------
    A : (m, n) CSR coefficient matrix, sorted indices, no empty rows.
    c : (m,) constants; row ``i`` is ``d_i = A_i y - c_i``.
    w : (m,) weights (0 for hard rows).
    p : (m,) int8 exponents, 1 or 2.
    kind : (m,) int8 :class:`~hlmrf.model.terms.Kind` codes.
    rule : (m,) int32 index of the rule each row came from.
    index : the :class:`GroundIndex` mapping columns to atoms and ``rule`` codes to rules.
    share : ``(k, N)`` when this is worker ``k``'s share of a model ground on ``N`` workers
        (``ground(..., share=(k, N))``): only that worker's rows, over all ``n`` variables;
        None for a whole model.
    """

    A: sp.csr_matrix
    c: np.ndarray
    w: np.ndarray
    p: np.ndarray
    kind: np.ndarray
    rule: np.ndarray
    index: GroundIndex = field(default_factory=GroundIndex)
    share: tuple[int, int] | None = None

    @property
    def n(self) -> int:
        return self.A.shape[1]

    @property
    def m(self) -> int:
        return self.A.shape[0]

    @property
    def hard(self) -> np.ndarray:
        return self.kind >= Kind.LEQ

    def row_atoms(self, i: int) -> dict[str, float]:
        """Row ``i``'s coefficients by atom name (``{"Knows(a, b)": -1.0, ...}``), for tests and
        messages that compare potentials with hand derivations."""
        lo, hi = self.A.indptr[i], self.A.indptr[i + 1]
        return {self.index.atom_name(int(j)): float(a)
                for j, a in zip(self.A.indices[lo:hi], self.A.data[lo:hi])}

    def distance(self, y: np.ndarray) -> np.ndarray:
        return self.A @ np.asarray(y, dtype=np.float64) - self.c

    def energy(self, y: np.ndarray) -> float:
        """Total weighted energy of the soft rows at ``y``."""
        return float(term_energy(self.distance(y), self.w, self.p, self.kind).sum())

    def _n_rules(self) -> int:
        """The length ``np.bincount(self.rule, minlength=len(rule_texts))`` would have."""
        return max(len(self.index.rule_texts), int(self.rule.max()) + 1 if len(self.rule) else 0)

    def energy_by_rule(self, y: np.ndarray) -> np.ndarray:
        """Energy per rule (length = number of rules).

        Computed :data:`ENERGY_CHUNK` rows at a time and summed per rule chunk by chunk: no
        model-sized array (the whole-array form held half a dozen, and a per-row energy array
        plus ``rule`` widened to int64 for ``np.bincount`` still made the peak of a large
        ``hlmrf-infer`` run after its solve). A row's distance and energy do not depend on the
        others; only the order of the per-rule sums differs from one whole-array ``bincount``.
        """
        y = np.asarray(y, dtype=np.float64)
        out = np.zeros(self._n_rules())
        for r0 in range(0, self.m, ENERGY_CHUNK):
            r1 = min(r0 + ENERGY_CHUNK, self.m)
            d = self.A[r0:r1] @ y
            d -= self.c[r0:r1]
            e = term_energy(d, self.w[r0:r1], self.p[r0:r1], self.kind[r0:r1])
            out += np.bincount(self.rule[r0:r1], weights=e, minlength=len(out))
        return out

    def violation(self, y: np.ndarray) -> float:
        """Largest violation of a hard constraint at ``y`` (0 when all hold)."""
        if not self.hard.any():
            return 0.0
        return float(term_violation(self.distance(y), self.kind).max())

    def violated_rows(self, y: np.ndarray, tol: float = 1e-4) -> np.ndarray:
        return np.flatnonzero(term_violation(self.distance(y), self.kind) > tol)

    def potentials_per_rule(self) -> np.ndarray:
        """Rows per rule (:func:`code_counts`: no int64 copy of ``rule``)."""
        return code_counts(self.rule, self._n_rules())

    def normalized(self, wmax: float | None = None) -> "HLMRF":
        """The same model with weights divided by the largest (PSL's default before inference);
        the MAP state is unchanged, the energy scales. ``wmax``: the divisor, when it is not this
        model's largest weight (a worker's share divides by the whole model's)."""
        if wmax is None:
            wmax = float(self.w.max()) if self.m and (self.w > 0).any() else 1.0
        return replace(self, w=self.w / wmax) if wmax > 0 else self

    def with_weights(self, rule_weights: np.ndarray) -> "HLMRF":
        """Re-weight every soft row by its rule's weight (hard rows keep 0)."""
        w = np.where(self.hard, 0.0, np.asarray(rule_weights, dtype=np.float64)[self.rule])
        return replace(self, w=w)

    @staticmethod
    def from_rows(rows: Sequence[tuple[Mapping[int, float], float, float, int, int, int]], n: int, index: GroundIndex | None = None) -> "HLMRF":
        """Build from a list of ``(coefs: dict[var, a], c, w, p, kind, rule)`` (tests, small models)."""
        indptr, indices, data = [0], [], []
        c, w, p, kind, rule = [], [], [], [], []
        for coefs, ci, wi, pi, ki, ri in rows:
            items = sorted(coefs.items())
            indices += [j for j, _ in items]
            data += [a for _, a in items]
            indptr.append(len(indices))
            c.append(ci), w.append(wi), p.append(pi), kind.append(int(ki)), rule.append(ri)
        A = sp.csr_matrix((np.asarray(data, float), np.asarray(indices, np.int64),
                           np.asarray(indptr, np.int64)), shape=(len(c), n))
        return HLMRF(A, np.asarray(c, float), np.asarray(w, float), np.asarray(p, np.int8),
                     np.asarray(kind, np.int8), np.asarray(rule, np.int32),
                     index or GroundIndex(rule_texts=tuple(f"rule {i}" for i in range(max(rule, default=-1) + 1))))

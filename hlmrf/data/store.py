"""The in-memory fact store: observed, target and truth atoms per predicate, integer-coded.

Constants are interned once into a :class:`ConstantTable`; each predicate holds its atoms as an
``(n, arity)`` int64 array, so grounding can join relations with numpy instead of Python loops. A
predicate with targets is *open* (its target atoms become variables); every other predicate is
*closed* and takes the closed-world assumption (unlisted atoms are 0). This module does no file I/O
(see :mod:`hlmrf.data.loader`) and knows nothing about rules.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from hlmrf.errors import DataError


class ConstantTable:
    """Interns constant strings to dense integer codes."""

    def __init__(self) -> None:
        self._code: dict[str, int] = {}
        self.names: list[str] = []
        self._rank: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.names)

    def intern(self, name: str) -> int:
        code = self._code.get(name)
        if code is None:
            code = len(self.names)
            self._code[name] = code
            self.names.append(name)
            self._rank = None
        return code

    def intern_rows(self, rows: Sequence[Sequence[str]]) -> np.ndarray:
        """Intern a table of strings; return an ``(n, k)`` int64 array of codes."""
        get = self._code.get
        out = []
        for row in rows:
            codes = []
            for name in row:
                c = get(name)
                if c is None:
                    c = self.intern(name)
                codes.append(c)
            out.append(codes)
        return np.asarray(out, dtype=np.int64)

    def lookup(self, name: str) -> int | None:
        return self._code.get(name)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return np.asarray(self.names, dtype=object)[codes]

    def rank(self) -> np.ndarray:
        """Each code's position in the sorted order of the names (for PSL's `%` operator)."""
        if self._rank is None or len(self._rank) != len(self.names):
            order = np.argsort(np.asarray(self.names, dtype=object), kind="stable")
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(len(order))
            self._rank = rank
        return self._rank


@dataclass
class PredicateData:
    """The atoms of one predicate. Arrays of codes are ``(n, arity)`` int64."""

    name: str
    arity: int
    obs_args: np.ndarray = field(default=None)  # type: ignore[assignment]
    obs_values: np.ndarray = field(default=None)  # type: ignore[assignment]
    target_args: np.ndarray = field(default=None)  # type: ignore[assignment]
    truth_args: np.ndarray = field(default=None)  # type: ignore[assignment]
    truth_values: np.ndarray = field(default=None)  # type: ignore[assignment]
    declared_open: bool | None = None

    def __post_init__(self) -> None:
        empty = np.zeros((0, self.arity), dtype=np.int64)
        for name in ("obs_args", "target_args", "truth_args"):
            if getattr(self, name) is None:
                setattr(self, name, empty.copy())
        for name in ("obs_values", "truth_values"):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(0))

    @property
    def open(self) -> bool:
        if self.declared_open is not None:
            return self.declared_open
        return len(self.target_args) > 0


class FactStore:
    """Observed, target and truth atoms for a set of predicates.

    Build it from Python data::

        store = FactStore()
        store.add_observations("Lived", [("alice", "paris"), ("bob", "paris")])
        store.add_observations("Likes", [("alice", "jazz", 0.8)])   # last column: value
        store.add_targets("Knows", [("alice", "bob")])
        store.add_truth("Knows", [("alice", "bob", 1.0)])

    or from files with :func:`hlmrf.data.loader.load_facts`. Predicate names match
    case-insensitively.
    """

    def __init__(self, constants: ConstantTable | None = None) -> None:
        self.constants = constants if constants is not None else ConstantTable()
        self.predicates: dict[str, PredicateData] = {}

    # -- declaration ---------------------------------------------------------------------------
    def declare(self, name: str, arity: int, open: bool | None = None) -> PredicateData:
        """Declare a predicate (optional: adding atoms declares it); ``open`` overrides the rule
        that a predicate with targets is open."""
        key = name.upper()
        pred = self.predicates.get(key)
        if pred is None:
            pred = PredicateData(name, arity)
            self.predicates[key] = pred
        elif pred.arity != arity:
            raise DataError(f"predicate {name} has arity {pred.arity}, not {arity}")
        if open is not None:
            pred.declared_open = open
        return pred

    def get(self, name: str) -> PredicateData | None:
        return self.predicates.get(name.upper())

    # -- adding atoms --------------------------------------------------------------------------
    def add_observations(self, name: str, rows: Iterable[Sequence], values: Sequence[float] | None = None,
                         arity: int | None = None) -> None:
        """Add observed atoms. Each row is the arguments, optionally followed by the value
        (when ``arity`` is given or the predicate is declared); ``values`` may be given apart."""
        args, vals = self._split(name, rows, values, arity)
        pred = self.declare(name, args.shape[1])
        pred.obs_args = np.concatenate([pred.obs_args, args])
        pred.obs_values = np.concatenate([pred.obs_values, vals])

    def add_targets(self, name: str, rows: Iterable[Sequence], arity: int | None = None) -> None:
        """Add target atoms (the unknowns to infer); their predicate becomes open."""
        rows = [tuple(r) for r in rows]
        if arity is None:
            pred = self.get(name)
            arity = pred.arity if pred is not None else (len(rows[0]) if rows else 0)
        bad = [r for r in rows if len(r) != arity]
        if bad:
            raise DataError(f"target {name}{bad[0]} has {len(bad[0])} arguments; {name} takes {arity}")
        args = self.constants.intern_rows([[str(a) for a in r] for r in rows]) if rows else \
            np.zeros((0, arity), dtype=np.int64)
        pred = self.declare(name, arity)
        pred.target_args = np.concatenate([pred.target_args, args.reshape(-1, arity)])

    def add_truth(self, name: str, rows: Iterable[Sequence], values: Sequence[float] | None = None,
                  arity: int | None = None) -> None:
        """Add ground-truth values for evaluation (and learning)."""
        args, vals = self._split(name, rows, values, arity)
        pred = self.declare(name, args.shape[1])
        pred.truth_args = np.concatenate([pred.truth_args, args])
        pred.truth_values = np.concatenate([pred.truth_values, vals])

    def _split(self, name, rows, values, arity):
        rows = [tuple(r) for r in rows]
        if arity is None:
            pred = self.get(name)
            arity = pred.arity if pred is not None else None
        if not rows:
            if values is not None and len(list(values)):
                raise DataError(f"{name}: 0 rows but {len(list(values))} values")
            if arity is None:
                raise DataError(f"{name}: no rows, so its arity is unknown; declare the predicate "
                                f"first (store.declare({name!r}, arity)) or pass arity=")
            return np.zeros((0, arity), dtype=np.int64), np.zeros(0)
        if values is None:
            if arity is None:
                # Without a declared arity the last column is a value only if it is numeric in
                # every row and there is more than one column.
                arity = len(rows[0])
                if len(rows[0]) > 1 and all(_is_number(r[-1]) for r in rows):
                    arity -= 1
            args, vals = [], []
            for r in rows:
                if len(r) == arity:
                    args.append([str(a) for a in r])
                    vals.append(1.0)
                elif len(r) == arity + 1:
                    args.append([str(a) for a in r[:-1]])
                    vals.append(_value(name, r[:-1], r[-1]))
                else:
                    raise DataError(f"{name}{r}: expected {arity} arguments and an optional value")
        else:
            values = list(values)
            if len(values) != len(rows):
                raise DataError(f"{name}: {len(rows)} rows but {len(values)} values")
            want = arity if arity is not None else len(rows[0])
            bad = next((r for r in rows if len(r) != want), None)
            if bad is not None:
                raise DataError(f"{name}{bad}: expected {want} arguments like the other rows")
            args = [[str(a) for a in r] for r in rows]
            vals = [_value(name, r, v) for r, v in zip(rows, values)]
            arity = want
        vals = np.asarray(vals, dtype=np.float64)
        bad = np.flatnonzero(~((vals >= 0) & (vals <= 1)))
        if len(bad):
            raise DataError(f"{name}{tuple(args[bad[0]])}: value {vals[bad[0]]} is outside [0, 1]")
        return self.constants.intern_rows(args).reshape(-1, arity), vals

    # -- integer-coded atoms (constants interned by the caller) ------------------------------
    def add_observation_codes(self, name: str, codes: np.ndarray, values: np.ndarray | None = None) -> None:
        """Add observed atoms given as an ``(n, arity)`` array of codes from ``self.constants``.

        The fast path for adapters that build many facts with numpy (no per-row Python work).
        """
        codes, arity = self._check_codes(name, codes)
        vals = self._check_values(name, codes, values)
        pred = self.declare(name, arity)
        pred.obs_args = np.concatenate([pred.obs_args, codes]) if len(pred.obs_args) else codes
        pred.obs_values = np.concatenate([pred.obs_values, vals]) if len(pred.obs_values) else vals

    def add_target_codes(self, name: str, codes: np.ndarray) -> None:
        """Add target atoms given as an ``(n, arity)`` array of codes from ``self.constants``."""
        codes, arity = self._check_codes(name, codes)
        pred = self.declare(name, arity)
        pred.target_args = np.concatenate([pred.target_args, codes]) if len(pred.target_args) else codes

    def add_truth_codes(self, name: str, codes: np.ndarray, values: np.ndarray | None = None) -> None:
        """Add truth atoms given as an ``(n, arity)`` array of codes from ``self.constants``."""
        codes, arity = self._check_codes(name, codes)
        vals = self._check_values(name, codes, values)
        pred = self.declare(name, arity)
        pred.truth_args = np.concatenate([pred.truth_args, codes]) if len(pred.truth_args) else codes
        pred.truth_values = np.concatenate([pred.truth_values, vals]) if len(pred.truth_values) else vals

    def add_codes(self, name: str, kind: str, codes: np.ndarray, values: np.ndarray | None = None) -> None:
        """``kind`` is ``"obs"``, ``"targets"`` or ``"truth"``: the loaders' one entry point."""
        if kind == "obs":
            self.add_observation_codes(name, codes, values)
        elif kind == "targets":
            self.add_target_codes(name, codes)
        elif kind == "truth":
            self.add_truth_codes(name, codes, values)
        else:
            raise ValueError(f"kind must be obs, targets or truth, not {kind!r}")

    def _check_values(self, name: str, codes: np.ndarray, values) -> np.ndarray:
        vals = np.ones(len(codes)) if values is None else np.asarray(values, dtype=np.float64).ravel()
        if len(vals) != len(codes):
            raise DataError(f"{name}: {len(codes)} atoms but {len(vals)} values")
        bad = np.flatnonzero(~((vals >= 0) & (vals <= 1)))
        if len(bad):
            raise DataError(f"{name}: value {vals[bad[0]]} of atom {bad[0]} is outside [0, 1]")
        return vals

    def _check_codes(self, name: str, codes) -> tuple[np.ndarray, int]:
        codes = np.asarray(codes, dtype=np.int64)
        pred = self.get(name)
        if codes.ndim != 2:
            if pred is None:
                raise DataError(f"{name}: codes must be an (n, arity) array")
            codes = codes.reshape(-1, pred.arity)
        if len(codes) and (codes.min() < 0 or codes.max() >= len(self.constants)):
            raise DataError(f"{name}: a code is not in the constant table (0..{len(self.constants) - 1}); "
                            "intern constants with store.constants.intern first")
        return np.ascontiguousarray(codes), codes.shape[1]

    # -- views ---------------------------------------------------------------------------------
    def summary(self) -> dict[str, dict[str, int]]:
        return {p.name: {"arity": p.arity, "observed": len(p.obs_args), "targets": len(p.target_args),
                         "truth": len(p.truth_args), "open": p.open}
                for p in self.predicates.values()}


def _value(name: str, row, v) -> float:
    """An atom's value as a float, or a DataError naming the atom."""
    try:
        return float(v)
    except (TypeError, ValueError):
        raise DataError(f"{name}{tuple(row)}: value {v!r} is not a number; give a value in [0, 1]") from None


def _is_number(x) -> bool:
    if isinstance(x, (int, float)):
        return True
    try:
        float(x)
        return True
    except (TypeError, ValueError):
        return False

"""Ground a program once with some observed atoms left as inputs: the template of a torch layer.

A template is a ground model whose constants depend on the values ``x`` of chosen observed atoms
(the *inputs*): row ``i`` is ``d_i(y) = a_i . y - (c_i - b_i . x)``, with ``b_i`` the
coefficients the inputs have in that row. The grounder folds observed values into the constants,
but it also drops groundings by their values (a body atom observed 0, a head observed 1), so
grounding with placeholder values would give a model that is only right at those values. Instead
the input atoms are grounded as *targets*: their coefficients land in the model's columns, every
grounding that any input value could make active is kept, and an input that multiplies inside an
arithmetic rule keeps its coefficient. The input columns are then cut out into ``B`` (``m x
n_in``). Rows left with no target (groundings over inputs and observations only) carry no
information about the targets and are dropped, hard ones included: a hard rule over inputs alone
is not checked. This module is numpy and scipy only; :mod:`hlmrf.nn.layer` puts torch around it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from hlmrf.data.store import FactStore
from hlmrf.errors import DataError
from hlmrf.language.ast import Program
from hlmrf.model.hlmrf import HLMRF, GroundIndex

__all__ = ["Template", "ground_template"]


@dataclass(frozen=True)
class Template:
    """A model over the targets whose constants are affine in the input atoms' values.

    Attributes
    ----------
    model : the :class:`HLMRF` over the targets; its ``c`` is the constant at ``x = 0``.
    B : (m, n_in) CSR: row ``i``'s constant at ``x`` is ``model.c[i] - B[i] . x``.
    input_atoms : ``(predicate, args)`` of each input, in column order of ``x``.
    target_atoms : ``(predicate, args)`` of each target, in column order of ``y``.
    rule_weights : (rules,) the program's weight per rule (0 for hard rules).
    soft_rules : (rules,) bool, whether each rule is weighted.
    """

    model: HLMRF
    B: sp.csr_matrix
    input_atoms: tuple[tuple[str, tuple[str, ...]], ...]
    target_atoms: tuple[tuple[str, tuple[str, ...]], ...]
    rule_weights: np.ndarray
    soft_rules: np.ndarray

    @property
    def n_inputs(self) -> int:
        return self.B.shape[1]

    def constants(self, x: np.ndarray) -> np.ndarray:
        """Row constants for a batch of input values ``x`` (``(batch, n_in)``): ``(batch, m)``."""
        x = np.asarray(x, np.float64).reshape(-1, self.n_inputs)
        return self.model.c[None, :] - np.asarray(self.B @ x.T).T

    def columns(self, predicate: str, which: str = "target") -> np.ndarray:
        """The positions of ``predicate``'s atoms among the targets (``which="target"``) or the
        inputs (``which="input"``)."""
        atoms = self.target_atoms if which == "target" else self.input_atoms
        key = predicate.upper()
        return np.array([j for j, (p, _) in enumerate(atoms) if p.upper() == key], np.int64)


def _input_rows(store: FactStore, name: str, spec) -> tuple[object, np.ndarray]:
    pred = store.get(name)
    if pred is None:
        known = ", ".join(sorted(p.name for p in store.predicates.values())) or "none"
        raise DataError(f"unknown predicate {name} among the inputs: the facts know {known}; "
                        f"declare it (store.declare({name!r}, arity)) or fix the spelling")
    if spec is None:
        if len(pred.obs_args) == 0:
            raise DataError(f"input predicate {pred.name} has no observed atoms in the template; "
                            f"add them (their values do not matter) or list the input atoms")
        return pred, pred.obs_args.copy()
    rows = []
    for atom in spec:
        atom = (atom,) if isinstance(atom, str) else tuple(atom)
        if len(atom) != pred.arity:
            raise DataError(f"input atom {pred.name}{atom} has {len(atom)} arguments; "
                            f"{pred.name} takes {pred.arity}")
        codes = [store.constants.lookup(str(a)) for a in atom]
        if any(c is None for c in codes):
            bad = [a for a, c in zip(atom, codes) if c is None]
            raise DataError(f"input atom {pred.name}{atom} names constant(s) {bad} that no fact "
                            f"mentions; add an observation or target that uses them")
        rows.append(codes)
    if not rows:
        raise DataError(f"no input atoms listed for {pred.name}")
    args = np.asarray(rows, np.int64).reshape(-1, pred.arity)
    if len(np.unique(args, axis=0)) != len(args):
        raise DataError(f"input atoms of {pred.name} are listed more than once")
    return pred, args


def _rows_in(args: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Position of each row of ``args`` in ``table`` (-1 when absent)."""
    index = {tuple(r): i for i, r in enumerate(table.tolist())}
    return np.array([index.get(tuple(r), -1) for r in args.tolist()], np.int64)


def ground_template(program: Program, store: FactStore,
                    inputs: Mapping[str, Sequence | None] | Sequence[str]) -> Template:
    """Ground ``program`` on ``store`` once, with the atoms named in ``inputs`` as inputs.

    Parameters
    ----------
    program, store : the rules and the template's facts (targets, fixed observations, and the
        input atoms; an input atom's observed value, if any, is ignored).
    inputs : ``{predicate: atoms}``, where ``atoms`` lists argument tuples or is ``None`` for
        every observed atom of the predicate in ``store``; a list of predicate names means
        ``None`` for each.

    Raises
    ------
    DataError : an unknown predicate or constant, an input atom that is also a target.
    GroundingError, RuleError : as :func:`hlmrf.ground` (an input predicate is open while
        grounding, so an atom of it that a rule reaches must be an input or an observation, and it
        may not appear in a filter).
    """
    from hlmrf.grounding.ground import ground

    if not isinstance(inputs, Mapping):
        inputs = {name: None for name in inputs}
    if not inputs:
        raise DataError("no inputs: name at least one observed predicate whose values are inputs")
    chosen: dict[str, np.ndarray] = {}
    preds = {}
    for name, spec in inputs.items():
        pred, args = _input_rows(store, name, spec)
        key = name.upper()
        if key in chosen:
            raise DataError(f"input predicate {pred.name} is named twice")
        clash = _rows_in(args, pred.target_args) >= 0
        if clash.any():
            atom = tuple(store.constants.names[c] for c in args[np.flatnonzero(clash)[0]])
            raise DataError(f"{pred.name}{atom} is both a target and an input")
        chosen[key], preds[key] = args, pred
    # A copy of the store (sharing the constant table) with the inputs moved to the targets.
    work = FactStore(store.constants)
    for key, pred in store.predicates.items():
        if key in chosen:
            args = chosen[key]
            keep = np.ones(len(pred.obs_args), bool)
            if len(pred.obs_args):
                keep[_rows_in(args, pred.obs_args)[_rows_in(args, pred.obs_args) >= 0]] = False
            pred = dataclasses.replace(pred, obs_args=pred.obs_args[keep], obs_values=pred.obs_values[keep],
                                       target_args=np.concatenate([pred.target_args, args]), declared_open=True)
        else:
            pred = dataclasses.replace(pred)
        work.predicates[key] = pred
    full = ground(program, work)
    idx = full.index
    names = store.constants.names
    is_input = np.zeros(full.n, bool)
    input_cols = []
    input_atoms = []
    for key, args in chosen.items():
        pname = work.predicates[key].name
        var_args, cols = idx.atoms(pname)
        pos = _rows_in(args, var_args)
        input_cols.append(np.arange(cols.start, cols.stop)[pos])
        input_atoms += [(pname, tuple(names[c] for c in row)) for row in args]
    input_cols = np.concatenate(input_cols)
    is_input[input_cols] = True
    target_cols = np.flatnonzero(~is_input)
    A = full.A.tocsc()
    At, Bx = A[:, target_cols].tocsr(), A[:, input_cols].tocsr()
    keep = np.flatnonzero(np.diff(At.indptr) > 0)
    At, Bx = At[keep], Bx[keep]
    At.sort_indices()
    Bx.sort_indices()
    # The index over the targets only: each predicate keeps its non-input columns.
    preds_t, offs_t, args_t, target_atoms = [], [], [], []
    for j, pname in enumerate(idx.predicates):
        start = idx.var_offsets[j]
        k = len(idx.var_args[j])
        mask = ~is_input[start:start + k]
        if mask.any():
            preds_t.append(pname)
            offs_t.append(sum(len(a) for a in args_t))
            args_t.append(idx.var_args[j][mask])
            target_atoms += [(pname, tuple(idx.constants[c] for c in row)) for row in idx.var_args[j][mask]]
    index = GroundIndex(tuple(preds_t), tuple(offs_t), tuple(args_t), idx.rule_texts, idx.constants)
    model = HLMRF(At, full.c[keep], full.w[keep], full.p[keep], full.kind[keep], full.rule[keep], index)
    weights = np.array([0.0 if r.hard else float(r.weight) for r in program.rules])
    soft = np.array([not r.hard for r in program.rules], bool)
    return Template(model, Bx, tuple(input_atoms), tuple(target_atoms), weights, soft)


def template_from_model(model: HLMRF, B, input_names: Sequence[str] | None = None) -> Template:
    """A :class:`Template` from a ground model and an input matrix ``B`` (``m x n_in``): row
    ``i``'s constant at ``x`` is ``model.c[i] - B[i] . x``. For models built without a program
    (random models in tests, a hand-made HLMRF); rule weights are each rule's largest row weight.
    """
    B = sp.csr_matrix(B, dtype=np.float64)
    if B.shape[0] != model.m:
        raise DataError(f"B has {B.shape[0]} rows; the model has {model.m}")
    n_rules = len(model.index.rule_texts) or (int(model.rule.max()) + 1 if model.m else 0)
    soft = model.kind <= 1  # Kind.LINEAR, Kind.HINGE
    weights = np.zeros(n_rules)
    np.maximum.at(weights, model.rule[soft], model.w[soft])
    soft_rules = np.bincount(model.rule[soft], minlength=n_rules) > 0
    names = list(input_names) if input_names is not None else [f"x{j}" for j in range(B.shape[1])]
    return Template(model, B, tuple(("X", (s,)) for s in names),
                    tuple(("Y", (f"y{j}",)) for j in range(model.n)), weights, soft_rules)

"""Ground a rule program against a fact store into an :class:`~hlmrf.model.HLMRF`.

PSL's semantics: a logical rule's clause becomes the Lukasiewicz hinge
``max(0, sum_neg y - sum_pos y - (#neg - 1))``; observed atoms fold into the constant; groundings
that are fully observed or can never be violated (``x | !x``, a head observed true) are dropped; a
clause of a single literal grounds to a linear term. Arithmetic rules ground one row per
substitution (a weighted ``=`` to two hinges). Every open atom a grounding reaches must be a target
or an observation. The joins are planned by :mod:`hlmrf.grounding.plan` and run by
:mod:`hlmrf.grounding.relational`; this module turns the substitution tables into potentials.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hlmrf.data.store import FactStore
from hlmrf.errors import GroundingError, RuleError
from hlmrf.grounding.plan import JoinPlan, Scan, plan_rule
from hlmrf.grounding.relational import execute, lookup_rows
from hlmrf.language.ast import ArithmeticRule, Constant, LogicalRule, Program
from hlmrf.model.hlmrf import HLMRF, GroundIndex
from hlmrf.model.terms import Kind


@dataclass
class _AtomTable:
    """All known atoms of one predicate: targets first (variables), then observations."""

    args: np.ndarray  # (k, arity)
    var: np.ndarray  # (k,) variable index or -1
    value: np.ndarray  # (k,) observed value (nan for variables)
    open: bool
    name: str


def _atom_tables(store: FactStore) -> tuple[dict[str, _AtomTable], list[str], list[int], list[np.ndarray]]:
    tables: dict[str, _AtomTable] = {}
    preds, offsets, var_args = [], [], []
    nvar = 0
    for key, p in store.predicates.items():
        targets = p.target_args if p.open else p.target_args[:0]
        t = len(targets)
        tables[key] = _AtomTable(
            np.concatenate([targets, p.obs_args]),
            np.concatenate([np.arange(nvar, nvar + t), np.full(len(p.obs_args), -1)]).astype(np.int64),
            np.concatenate([np.full(t, np.nan), p.obs_values]),
            p.open, p.name)
        if p.open:
            preds.append(p.name)
            offsets.append(nvar)
            var_args.append(targets)
            nvar += t
    return tables, preds, offsets, var_args


def check_program(program: Program, store: FactStore) -> None:
    """Every predicate of the rules exists in the data with the same arity."""
    for rule in program.rules:
        atoms = rule.atoms if isinstance(rule, ArithmeticRule) else [l.atom for l in rule.body + rule.head]
        for atom in atoms:
            p = store.get(atom.predicate)
            if p is None:
                known = ", ".join(sorted(q.name for q in store.predicates.values())) or "none"
                raise RuleError(
                    f"unknown predicate {atom.predicate}: no facts file or declaration mentions it "
                    f"(known: {known}); add {atom.predicate.lower()}_obs.txt or "
                    f"{atom.predicate.lower()}_targets.txt, or fix the spelling",
                    atom.span, program.text)
            if p.arity != len(atom.args):
                raise RuleError(f"{atom.predicate} takes {p.arity} arguments in the data, "
                                f"but {len(atom.args)} are given here", atom.span, program.text)


def ground(program: Program, store: FactStore) -> HLMRF:
    """Ground ``program`` on ``store``.

    Returns the model; ``model.index`` maps its columns to target atoms and its ``rule`` codes to
    the program's rules.

    Raises
    ------
    RuleError : unknown predicate, arity mismatch, a head variable no body atom binds.
    GroundingError : an open atom reached by grounding that is neither a target nor observed; a
        fully observed hard constraint that the data violates.
    """
    check_program(program, store)
    tables, preds, offsets, var_args = _atom_tables(store)
    consts = store.constants
    base = max(len(consts), 1)

    relations: dict[tuple[str, str], np.ndarray] = {}

    def relation(scan: Scan) -> np.ndarray:
        key = (scan.predicate, scan.relation)
        if key not in relations:
            t = tables[scan.predicate]
            if scan.relation == "support":
                keep = (t.var >= 0) | (t.value > 0)
                relations[key] = t.args[keep]
            else:
                relations[key] = t.args
        return relations[key]

    sizes = {}
    for key, t in tables.items():
        sizes[(key, "known")] = len(t.args)
        sizes[(key, "support")] = int(((t.var >= 0) | (t.value > 0)).sum())

    blocks = []
    for r, rule in enumerate(program.rules):
        plan = plan_rule(r, rule, sizes, program.text)
        subs = execute(plan, relation, base, consts.lookup, consts.rank)
        blocks.append(_rows_of_rule(r, rule, plan, subs, tables, base, consts, program))

    n = sum(len(a) for a in var_args)
    index = GroundIndex(tuple(preds), tuple(offsets), tuple(var_args),
                        tuple(rule.text or str(rule) for rule in program.rules), consts.names)
    return _assemble(blocks, n, index)


def _literal_atoms(pattern, plan: JoinPlan, subs: np.ndarray, consts) -> np.ndarray:
    cols = []
    for item in pattern:
        if isinstance(item, Constant):
            code = consts.lookup(item.value)
            cols.append(np.full(len(subs), -1 if code is None else code, dtype=np.int64))
        else:
            cols.append(subs[:, plan.variables.index(item)])
    return np.stack(cols, axis=1) if cols else np.zeros((len(subs), 0), dtype=np.int64)


def _resolve(atom, pattern, plan, subs, tables, base, consts, program, rule, must_exist: bool):
    """Variable index (or -1) and observed value (0 when absent) of one literal per grounding."""
    t = tables[atom.key]
    args = _literal_atoms(pattern, plan, subs, consts)
    idx = lookup_rows(t.args, args, base)
    missing = idx < 0
    if missing.any() and t.open:
        bad = args[missing][:5]
        names = ", ".join(f"{atom.predicate}({', '.join(repr(consts.names[c]) if c >= 0 else '?' for c in row)})"
                          for row in bad)
        span = f"{atom.span}: " if atom.span else ""
        raise GroundingError(
            f"{span}rule `{rule.text or rule}` reaches {int(missing.sum())} atom(s) of the open "
            f"predicate {atom.predicate} that are neither targets nor observations, e.g. {names}. "
            f"Found one or more RandomVariableAtoms that were not explicitly specified in the "
            f"targets: add them to {atom.predicate.lower()}_targets.txt (or observe them in "
            f"{atom.predicate.lower()}_obs.txt), or restrict the rule's body so it does not reach them")
    var = np.where(missing, -1, t.var[np.maximum(idx, 0)])
    val = np.where(missing | (var >= 0), 0.0, t.value[np.maximum(idx, 0)])
    return var, val


def _rows_of_rule(r, rule, plan, subs, tables, base, consts, program):
    g = len(subs)
    if isinstance(rule, LogicalRule):
        clause = rule.clause()
        patterns = {s.literal: s.pattern for s in plan.steps if isinstance(s, Scan)}
        patterns.update({l.literal: l.pattern for l in plan.lookups})
        n_neg = sum(l.negated for l in clause)
        c = np.full(g, float(n_neg - 1))
        vars_, coefs = [], []
        sat = np.zeros(g, dtype=bool)
        for i, lit in enumerate(clause):
            var, val = _resolve(lit.atom, patterns[i], plan, subs, tables, base, consts, program, rule,
                                must_exist=i in patterns)
            s = 1.0 if lit.negated else -1.0
            observed = var < 0
            sat |= observed & (val == (0.0 if lit.negated else 1.0))
            c -= s * val
            vars_.append(var)
            coefs.append(np.full(g, s))
        if rule.hard:
            kinds = [(Kind.LEQ, 1.0, 0.0)]
        else:
            kind = Kind.LINEAR if len(clause) == 1 else Kind.HINGE
            kinds = [(kind, 1.0, rule.weight)]
    else:
        patterns = {s.literal: s.pattern for s in plan.steps if isinstance(s, Scan)}
        sign = -1.0 if rule.op == ">=" else 1.0
        sat = np.zeros(g, dtype=bool)
        c = np.full(g, -sign * rule.lhs.constant)
        vars_, coefs = [], []
        for i, (coef, atom) in enumerate(rule.lhs.terms):
            var, val = _resolve(atom, patterns[i], plan, subs, tables, base, consts, program, rule, True)
            c -= sign * coef * val
            vars_.append(var)
            coefs.append(np.full(g, sign * coef))
        if rule.hard:
            kinds = [(Kind.EQ if rule.op == "=" else Kind.LEQ, 1.0, 0.0)]
        elif rule.op == "=":
            kinds = [(Kind.HINGE, 1.0, rule.weight), (Kind.HINGE, -1.0, rule.weight)]
        else:
            kinds = [(Kind.HINGE, 1.0, rule.weight)]
    var = np.stack(vars_, axis=1) if vars_ else np.zeros((g, 0), np.int64)
    coef = np.stack(coefs, axis=1) if coefs else np.zeros((g, 0))
    out = []
    for kind, flip, weight in kinds:
        out.append(_block(r, rule, var, flip * coef, flip * c, kind, weight, program, tables, sat))
    return out


def _block(r, rule, var, coef, c, kind, weight, program, tables, sat):
    g = len(c)
    present = var >= 0
    rows = np.repeat(np.arange(g), present.sum(axis=1))
    A = sp.csr_matrix((coef[present], (rows, var[present])), shape=(g, _nvars(tables)))
    A.sum_duplicates()
    A.eliminate_zeros()
    nnz = np.diff(A.indptr)
    if kind in (Kind.LEQ, Kind.EQ):
        # A fully observed hard constraint the data violates cannot be fixed by inference.
        lo = -np.asarray((-A).maximum(0).sum(axis=1)).ravel() - c
        hi = np.asarray(A.maximum(0).sum(axis=1)).ravel() - c
        broken = (nnz == 0) & ((lo > 1e-6) | ((kind == Kind.EQ) & (hi < -1e-6)))
        if broken.any():
            raise GroundingError(f"hard rule `{rule.text or rule}` is violated by observed atoms "
                                 f"alone in {int(broken.sum())} grounding(s); fix the observations "
                                 "or make the rule soft by giving it a weight")
    # PSL keeps every grounding with a variable, even one its observed values keep from ever being
    # violated; it drops the fully observed ones and those with a literal observed true (``sat``).
    keep = (nnz > 0) & ~sat
    A = A[keep]
    m = A.shape[0]
    p = 2 if (rule.squared and kind <= Kind.HINGE) else 1
    return (A, c[keep], np.full(m, float(weight)), np.full(m, p, np.int8), np.full(m, int(kind), np.int8),
            np.full(m, r, np.int32))


def _nvars(tables) -> int:
    return sum(int((t.var >= 0).sum()) for t in tables.values())


def _assemble(blocks, n: int, index: GroundIndex) -> HLMRF:
    flat = [b for rule_blocks in blocks for b in rule_blocks]
    if not flat:
        return HLMRF(sp.csr_matrix((0, n)), np.zeros(0), np.zeros(0), np.zeros(0, np.int8),
                     np.zeros(0, np.int8), np.zeros(0, np.int32), index)
    A = sp.vstack([b[0] for b in flat], format="csr")
    A.sort_indices()
    cat = [np.concatenate([b[k] for b in flat]) for k in range(1, 6)]
    return HLMRF(A, *cat, index=index)

"""Ground a rule program against a fact store into an :class:`~hlmrf.model.HLMRF`.

PSL's semantics: a logical rule's clause becomes the Lukasiewicz hinge
``max(0, sum_neg y - sum_pos y - (#neg - 1))``; observed atoms fold into the constant; groundings
that are fully observed or can never be violated (``x | !x``, a head observed true) are dropped; a
clause of a single literal grounds to a linear term. Arithmetic rules ground one row per
substitution of their non-summation variables (a weighted ``=`` to two hinges); a summation atom
expands, per grounding, into the ground atoms it sums over (a vectorised join plus ``bincount``
aggregation, never a Python loop per substitution), filtered by its filter clause, and ``|X|``
counts them. As in the reference, groundings without a target atom, and one-atom groundings that
no value can violate, are dropped. Every open atom a grounding reaches must be a target
or an observation. The joins are planned by :mod:`hlmrf.grounding.plan` and run by
:mod:`hlmrf.grounding.relational`; this module turns the substitution tables into potentials.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hlmrf.data.store import FactStore
from hlmrf.errors import GroundingError, RuleError
from hlmrf.grounding.plan import Scan, UnionPlan, plan_rule
from hlmrf.grounding.relational import execute, join_indices, lookup_rows, match_pattern, pack_keys
from hlmrf.language.ast import ArithmeticRule, BoolOp, Comparison, Constant, Program, Variable, coef_value
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


@dataclass(frozen=True)
class SubstitutionIndex(GroundIndex):
    """A :class:`GroundIndex` that also keeps, per rule, the substitutions its rows came from.

    ``substitutions[r]`` is ``(variables, codes)``: the rule's variable names and an
    ``(groundings, len(variables))`` table of constant codes (for a summation rule, the variables
    other than the summation variables); ``row_substitution[i]`` is the row of that table model row
    ``i`` came from. Built only when asked (``ground(..., keep_substitutions=True)``).
    """

    substitutions: tuple = ()
    row_substitution: np.ndarray = None  # type: ignore[assignment]


def ground(program: Program, store: FactStore, keep_substitutions: bool = False) -> HLMRF:
    """Ground ``program`` on ``store``.

    Returns the model; ``model.index`` maps its columns to target atoms and its ``rule`` codes to
    the program's rules. With ``keep_substitutions`` the index is a :class:`SubstitutionIndex`
    that also maps every row to the substitution it grounds (for ``--ground-rules``).

    Raises
    ------
    RuleError : unknown predicate, arity mismatch, a head variable no body atom binds, an open
        predicate in a filter clause.
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
            elif scan.relation == "targets":
                relations[key] = t.args[t.var >= 0]
            else:
                relations[key] = t.args
        return relations[key]

    sizes = {}
    for key, t in tables.items():
        sizes[(key, "known")] = len(t.args)
        sizes[(key, "support")] = int(((t.var >= 0) | (t.value > 0)).sum())
        sizes[(key, "targets")] = int((t.var >= 0).sum())

    ctx = _Context(tables, base, consts, program, _nvars(tables))
    blocks, subs_kept = [], []
    for r, rule in enumerate(program.rules):
        plan = plan_rule(r, rule, sizes, program.text)
        if isinstance(plan, UnionPlan):
            parts = [execute(p, relation, base, consts.lookup, consts.rank) for p in plan.parts]
            subs = np.unique(np.concatenate(parts), axis=0) if parts else np.zeros((0, len(plan.variables)), np.int64)
        else:
            subs = execute(plan, relation, base, consts.lookup, consts.rank)
        if isinstance(rule, ArithmeticRule):
            rule_blocks, variables, table = _rows_of_arithmetic(r, rule, plan, subs, ctx)
        else:
            rule_blocks = _rows_of_logical(r, rule, plan, subs, ctx)
            variables, table = plan.variables, subs
        blocks.append(rule_blocks)
        subs_kept.append((tuple(variables), table))

    n = sum(len(a) for a in var_args)
    texts = tuple(rule.text or str(rule) for rule in program.rules)
    if keep_substitutions:
        row_sub = np.concatenate([b[6] for rb in blocks for b in rb]) if any(blocks) else np.zeros(0, np.int64)
        index = SubstitutionIndex(tuple(preds), tuple(offsets), tuple(var_args), texts, consts.names,
                                  tuple(subs_kept), row_sub)
    else:
        index = GroundIndex(tuple(preds), tuple(offsets), tuple(var_args), texts, consts.names)
    return _assemble(blocks, n, index)


@dataclass
class _Context:
    tables: dict
    base: int
    consts: object
    program: Program
    n: int


def _literal_atoms(pattern, plan, subs: np.ndarray, consts) -> np.ndarray:
    cols = []
    for item in pattern:
        if isinstance(item, Constant):
            code = consts.lookup(item.value)
            cols.append(np.full(len(subs), -1 if code is None else code, dtype=np.int64))
        else:
            cols.append(subs[:, plan.variables.index(item)])
    return np.stack(cols, axis=1) if cols else np.zeros((len(subs), 0), dtype=np.int64)


def _resolve_args(atom, args, ctx: _Context, rule, may_be_missing: bool = False):
    """Variable index (or -1) and observed value (0 when absent) of ground atoms ``args``."""
    t = ctx.tables[atom.key]
    idx = lookup_rows(t.args, args, ctx.base)
    missing = idx < 0
    if missing.any() and t.open and not may_be_missing:
        consts = ctx.consts
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
    return var, val, missing


def _rows_of_logical(r, rule, plan, subs, ctx: _Context):
    g = len(subs)
    clause = rule.clause()
    patterns = {} if isinstance(plan, UnionPlan) else {
        s.literal: s.pattern for s in plan.steps if isinstance(s, Scan)}
    patterns.update({l.literal: l.pattern for l in plan.lookups})
    n_neg = sum(l.negated for l in clause)
    c = np.full(g, float(n_neg - 1))
    vars_, coefs = [], []
    sat = np.zeros(g, dtype=bool)
    for i, lit in enumerate(clause):
        args = _literal_atoms(patterns[i], plan, subs, ctx.consts)
        var, val, _ = _resolve_args(lit.atom, args, ctx, rule)
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
    var = np.stack(vars_, axis=1) if vars_ else np.zeros((g, 0), np.int64)
    coef = np.stack(coefs, axis=1) if coefs else np.zeros((g, 0))
    rows = np.repeat(np.arange(g), var.shape[1])
    out = []
    for kind, flip, weight in kinds:
        out.append(_block(r, rule, g, rows, var.ravel(), flip * coef.ravel(), flip * c, kind, weight,
                          ctx, ~sat, None))
    return out


def _rows_of_arithmetic(r, rule: ArithmeticRule, plan, subs, ctx: _Context):
    """Potential rows of an arithmetic rule; summations are group-by aggregations per grounding.

    Each summation atom is expanded into ``(grounding, atom)`` entries with one vectorised join
    (open predicate: the atoms present in the data; closed predicate: every constant the
    predicate has at the summed position, absent atoms being 0, as the reference engine does);
    filters drop entries, ``|X|`` is the number of entries left per grounding (a ``bincount``).
    """
    sums = set(rule.sum_variables)
    if sums:
        cols = [plan.variables.index(v) for v in plan.project]
        G = subs[:, cols]
        if len(G):
            G = np.unique(G, axis=0) if G.shape[1] else G[:1]
        variables = plan.project
    else:
        G, variables = subs, plan.variables
    g = len(G)
    entries = []  # (term index, rows into G, var, val)
    cards: dict[str, np.ndarray] = {}
    for i, (coef, atom) in enumerate(rule.lhs.terms):
        if atom.sum_variables:
            rows, args = _expand_summation(atom, G, variables, ctx)
            for f in rule.filters:
                if f.variable in atom.sum_variables and len(rows):
                    keep = _eval_filter(f, f.formula, atom, rows, args, G, variables, ctx, rule)
                    rows, args = rows[keep], args[keep]
            var, val, _ = _resolve_args(atom, args, ctx, rule, may_be_missing=True)
            for v in atom.sum_variables:
                cards[v] = np.bincount(rows, minlength=g).astype(np.float64)
        else:
            args = _literal_atoms(_pattern_of(atom), _Cols(variables), G, ctx.consts)
            rows = np.arange(g)
            var, val, _ = _resolve_args(atom, args, ctx, rule)
        entries.append((i, rows, var, val))

    sign = -1.0 if rule.op == ">=" else 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        const = np.broadcast_to(np.asarray(coef_value(rule.lhs.constant, cards), float), (g,))
        bad = ~np.isfinite(const)
        c = -sign * np.where(bad, 0.0, const)
        all_rows, all_var, all_coef = [], [], []
        n_atoms = np.zeros(g, np.int64)
        for i, rows, var, val in entries:
            k_all = np.broadcast_to(np.asarray(coef_value(rule.lhs.terms[i][0], cards), float), (g,))
            bad |= ~np.isfinite(k_all)  # undefined even where its sum is empty: skip
            k = np.where(np.isfinite(k_all), k_all, 0.0)[rows]
            c -= np.bincount(rows, weights=sign * k * val, minlength=g)
            n_atoms += np.bincount(rows, minlength=g)
            all_rows.append(rows), all_var.append(var), all_coef.append(sign * k)
    rows = np.concatenate(all_rows) if all_rows else np.zeros(0, np.int64)
    var = np.concatenate(all_var) if all_var else np.zeros(0, np.int64)
    coef = np.concatenate(all_coef) if all_coef else np.zeros(0)
    # Groundings whose sums are all empty have nothing to constrain (the reference skips them);
    # a coefficient undefined because some |X| is 0 skips the grounding too.
    keep = (n_atoms > 0) & ~bad
    single = n_atoms == 1
    if rule.hard:
        kinds = [(Kind.EQ if rule.op == "=" else Kind.LEQ, 1.0, 0.0)]
    elif rule.op == "=":
        kinds = [(Kind.HINGE, 1.0, rule.weight), (Kind.HINGE, -1.0, rule.weight)]
    else:
        kinds = [(Kind.HINGE, 1.0, rule.weight)]
    out = [_block(r, rule, g, rows, var, flip * coef, flip * c, kind, weight, ctx, keep, single)
           for kind, flip, weight in kinds]
    return out, variables, G


class _Cols:
    """Just enough of a plan for :func:`_literal_atoms`: the column order of a table."""

    def __init__(self, variables):
        self.variables = tuple(variables)


def _pattern_of(atom):
    return tuple(a.name if isinstance(a, Variable) else a for a in atom.args)


def _expand_summation(atom, G, variables, ctx: _Context):
    """``(rows into G, (entries, arity) ground atom codes)`` of a summation atom."""
    t = ctx.tables[atom.key]
    pattern = _pattern_of(atom)
    sums = atom.sum_variables
    matched, mvars = match_pattern(t.args, pattern, ctx.consts.lookup)
    g = len(G)
    if t.open:
        # The atoms present in the data (targets and observations), joined on the other variables.
        shared = [v for v in mvars if v not in sums]
        lk, rk = pack_keys(G[:, [variables.index(v) for v in shared]],
                           matched[:, [mvars.index(v) for v in shared]], ctx.base)
        rows, ri = join_indices(lk, rk)
        values = {v: matched[ri, mvars.index(v)] for v in sums}
    else:
        # Closed: every constant the predicate has at each summed position (absent atoms are 0).
        cands = [np.unique(matched[:, mvars.index(v)]) for v in sums]
        sizes = [len(cnd) for cnd in cands]
        total = int(np.prod(sizes)) if sizes else 1
        rows = np.repeat(np.arange(g), total)
        values = {}
        rep = total
        for v, cnd in zip(sums, cands):
            rep //= max(len(cnd), 1)
            values[v] = np.tile(np.repeat(cnd, rep), g * total // max(len(cnd) * rep, 1)) \
                if len(cnd) else np.zeros(0, np.int64)
    cols = []
    for item in pattern:
        if isinstance(item, Constant):
            code = ctx.consts.lookup(item.value)
            cols.append(np.full(len(rows), -1 if code is None else code, np.int64))
        elif item in values:
            cols.append(values[item])
        else:
            cols.append(G[rows, variables.index(item)])
    args = np.stack(cols, axis=1) if cols else np.zeros((len(rows), 0), np.int64)
    return rows, args


def _eval_filter(f, e, atom, rows, args, G, variables, ctx: _Context, rule) -> np.ndarray:
    """Crisp truth of a filter formula per entry: an atom is true when its value is > 0."""
    sum_col = {v: args[:, k] for k, v in enumerate(_pattern_of(atom)) if isinstance(v, str)}

    def column(term):
        if isinstance(term, Constant):
            code = ctx.consts.lookup(term.value)
            return np.full(len(rows), -1 if code is None else code, np.int64)
        if term.name == f.variable:
            return sum_col[term.name]
        return G[rows, variables.index(term.name)]

    if isinstance(e, BoolOp):
        parts = [_eval_filter(f, i, atom, rows, args, G, variables, ctx, rule) for i in e.items]
        return np.logical_and.reduce(parts) if e.op == "&" else np.logical_or.reduce(parts)
    if isinstance(e, Comparison):
        left, right = column(e.left), column(e.right)
        if e.op == "!=":
            return left != right
        if e.op == "==":
            return left == right
        rank = ctx.consts.rank()
        return np.where((left >= 0) & (right >= 0), rank[np.maximum(left, 0)] < rank[np.maximum(right, 0)], False)
    t = ctx.tables[e.atom.key]
    if t.open:
        raise RuleError(f"Open predicate ({e.atom.predicate}) not allowed in filter. Only closed "
                        f"predicates may appear in filters: {e.atom.predicate} has targets; filter on "
                        "an observed (closed) predicate instead", e.atom.span, ctx.program.text)
    fargs = np.stack([column(a) for a in e.atom.args], axis=1) if e.atom.args else \
        np.zeros((len(rows), 0), np.int64)
    idx = lookup_rows(t.args, fargs, ctx.base)
    truth = (idx >= 0) & (t.value[np.maximum(idx, 0)] > 0)
    return ~truth if e.negated else truth


def _block(r, rule, g, rows, var, coef, c, kind, weight, ctx: _Context, keep_g, single):
    """One kind of potential for ``g`` groundings given as COO entries ``(rows, var, coef)``.

    ``keep_g`` marks the groundings to keep (not trivially satisfied); ``single`` marks those with
    exactly one atom, dropped when no value in [0, 1] can violate them (as the reference does).
    """
    present = var >= 0
    A = sp.csr_matrix((coef[present], (rows[present], var[present])), shape=(g, ctx.n))
    A.sum_duplicates()
    A.eliminate_zeros()
    nnz = np.diff(A.indptr)
    if kind in (Kind.LEQ, Kind.EQ):
        # A fully observed hard constraint the data violates cannot be fixed by inference.
        lo = -np.asarray((-A).maximum(0).sum(axis=1)).ravel() - c
        hi = np.asarray(A.maximum(0).sum(axis=1)).ravel() - c
        broken = (nnz == 0) & keep_g & ((lo > 1e-6) | ((kind == Kind.EQ) & (hi < -1e-6)))
        if broken.any():
            raise GroundingError(f"hard rule `{rule.text or rule}` is violated by observed atoms "
                                 f"alone in {int(broken.sum())} grounding(s); fix the observations "
                                 "or make the rule soft by giving it a weight")
    keep = (nnz > 0) & keep_g
    if single is not None and kind in (Kind.HINGE, Kind.LEQ):
        # One atom, a*y - c <= 0 for every y in [0, 1]: never violated.
        top = np.asarray(A.maximum(0).sum(axis=1)).ravel() - c
        keep &= ~(single & (top <= 0))
    sel = np.flatnonzero(keep)
    A = A[sel]
    m = A.shape[0]
    p = 2 if (rule.squared and kind <= Kind.HINGE) else 1
    return (A, c[sel], np.full(m, float(weight)), np.full(m, p, np.int8), np.full(m, int(kind), np.int8),
            np.full(m, r, np.int32), sel.astype(np.int64))


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

"""Join plans: which relations a rule's grounding scans, joins, filters and looks up.

A plan is a plain value computed from the rule and relation sizes alone, so any engine can execute
it: the in-memory numpy executor (:mod:`hlmrf.grounding.relational`, the default), or an SQL
engine (DuckDB out of core, Spark SQL on a cluster) by translating scans to tables, shared variables
to equi-joins and filters to ``WHERE`` clauses (:meth:`JoinPlan.to_sql` shows the translation;
:func:`coded_sql` is the one those backends run). The plan says nothing about how a join is
computed.

Relations a plan can scan, per predicate:

- ``"support"``: atoms that can make the grounding non-trivial as a *binding* literal of a logical
  rule: observed atoms with value > 0, plus targets of an open predicate (an observed 0 makes the
  ground clause trivially satisfied);
- ``"known"``: every observed atom plus every target (arithmetic rules, and pure-head priors);
- ``"targets"``: the target atoms of an open predicate (one branch per literal of a rule that is a
  disjunction of positive literals, whose groundings are those that reach a target).

An arithmetic rule with summation atoms scans them like ordinary atoms (the summation variable
bound like any other) and keeps the distinct substitutions of its other variables
(``JoinPlan.project``); expanding the sums is grounding's job, not the plan's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Union

from hlmrf.errors import RuleError
from hlmrf.language.ast import ArithmeticRule, Atom, Comparison, Constant, Variable


@dataclass(frozen=True)
class Scan:
    """Scan ``relation`` of ``predicate`` and bind the atom's argument pattern."""

    literal: int
    predicate: str
    pattern: tuple[Union[str, Constant], ...]  # variable names, or constants to match
    relation: str  # "support" | "known"


@dataclass(frozen=True)
class Filter:
    op: str  # "!=", "==", "%"
    left: Union[str, Constant]
    right: Union[str, Constant]


@dataclass(frozen=True)
class Lookup:
    """After the joins, look up this literal's ground atom (a variable, a value, or missing)."""

    literal: int
    predicate: str
    pattern: tuple[Union[str, Constant], ...]


@dataclass(frozen=True)
class JoinPlan:
    rule: int
    variables: tuple[str, ...]  # output columns, in binding order
    steps: tuple[Union[Scan, Filter], ...]
    lookups: tuple[Lookup, ...]
    project: tuple[str, ...] | None = None  # SELECT DISTINCT these (summation rules)

    def sql_scans(self, table, constant) -> tuple[list[str], list[str], dict[str, str]]:
        """The scans as SQL: ``(FROM items, WHERE conditions, first column of each variable)``.

        ``table(scan)`` names a scan's table (columns ``a0, a1, ...``), ``constant(c)`` writes a
        constant as an SQL literal. Shared by :meth:`to_sql` and :func:`coded_sql`.
        """
        froms, where, first_col = [], [], {}
        for step in self.steps:
            if isinstance(step, Scan):
                alias = f"t{len(froms)}"
                froms.append(f"{table(step)} AS {alias}")
                for k, item in enumerate(step.pattern):
                    col = f"{alias}.a{k}"
                    if isinstance(item, Constant):
                        where.append(f"{col} = {constant(item)}")
                    elif item in first_col:
                        where.append(f"{col} = {first_col[item]}")
                    else:
                        first_col[item] = col
        return froms, where, first_col

    def to_sql(self) -> str:
        """The plan as one SQL query over tables ``<predicate>_<relation>(a0, a1, ...)``.

        Documentation of the separation; :func:`coded_sql` is the same translation on
        integer-coded tables, which the DuckDB and Spark backends run.
        """
        froms, where, first_col = self.sql_scans(lambda s: f"{s.predicate.lower()}_{s.relation}",
                                                 lambda c: f"'{c.value}'")
        for step in self.steps:
            if isinstance(step, Filter):
                l, r = (f"'{x.value}'" if isinstance(x, Constant) else first_col[x]
                        for x in (step.left, step.right))
                where.append(f"{l} {'<>' if step.op == '!=' else '=' if step.op == '==' else '<'} {r}")
        cols = ", ".join(f"{first_col[v]} AS {v}" for v in (
            self.variables if self.project is None else self.project)) or "1"
        sql = f"SELECT DISTINCT {cols}\nFROM " + ",\n     ".join(froms)
        if where:
            sql += "\nWHERE " + "\n  AND ".join(where)
        return sql


@dataclass(frozen=True)
class UnionPlan:
    """The union of several join plans over the same output variables (``SELECT ... UNION``)."""

    rule: int
    variables: tuple[str, ...]
    parts: tuple[JoinPlan, ...]
    lookups: tuple[Lookup, ...]

    def to_sql(self) -> str:
        return "\nUNION\n".join(p.to_sql() for p in self.parts)


def coded_sql(plan: JoinPlan, table: Callable[[Scan], str], code: Callable[[Constant], int],
              ranks: Callable[[], str], variables=None) -> str | None:
    """The plan's query over integer-coded tables, selecting ``variables`` (default: the plan's) as
    ``v0, v1, ...`` (``1 AS v_`` when there are none); None for a plan without scans (the numpy
    executor runs those: one empty substitution).

    ``table(scan)`` names a scan's table of codes (columns ``a0, a1, ...``), ``code(c)`` is a
    constant's code, and ``ranks()`` names a ``(code, r)`` table of each code's position in the
    sorted order of the names, for PSL's ``%``. Standard SQL that DuckDB and Spark SQL both run.
    """
    variables = plan.variables if variables is None else variables
    froms, where, col = plan.sql_scans(table, lambda c: str(int(code(c))))
    if not froms:
        return None
    for step in plan.steps:
        if not isinstance(step, Filter):
            continue
        left, right = (str(int(code(x))) if isinstance(x, Constant) else col[x] for x in (step.left, step.right))
        if step.op == "%":
            name = ranks()
            a, b = f"k{len(froms)}", f"k{len(froms) + 1}"
            froms += [f"{name} AS {a}", f"{name} AS {b}"]
            where += [f"{a}.code = {left}", f"{b}.code = {right}", f"{a}.r < {b}.r"]
        else:
            where.append(f"{left} {'<>' if step.op == '!=' else '='} {right}")
    select = ", ".join(f"{col[v]} AS v{i}" for i, v in enumerate(variables)) or "1 AS v_"
    query = f"SELECT {select} FROM {', '.join(froms)}"
    return query + (f" WHERE {' AND '.join(where)}" if where else "")


def ordered_coded_sql(plan: "JoinPlan | UnionPlan", table: Callable[[Scan], str],
                      code: Callable[[Constant], int], ranks: Callable[[], str]) -> str | None:
    """:func:`coded_sql` of the plan, distinct for a union (as ``np.unique(axis=0)`` gives it) and
    sorted by the substitutions' codes; None when a part has no scan."""
    parts = plan.parts if isinstance(plan, UnionPlan) else (plan,)
    queries = [coded_sql(p, table, code, ranks, plan.variables) for p in parts]
    if any(q is None for q in queries):
        return None
    order = ", ".join(f"v{i}" for i in range(len(plan.variables))) or "1"
    if isinstance(plan, UnionPlan):
        return f"SELECT * FROM ({' UNION '.join(queries)}) ORDER BY {order}"
    return f"{queries[0]} ORDER BY {order}"


def constant_code(code_of: Callable[[str], "int | None"], c: Constant) -> int:
    """``c``'s integer code from ``code_of(name)`` (grounding codes every constant of the rules
    before it plans, so None is a bug, not bad input)."""
    code = code_of(c.value)
    if code is None:
        raise ValueError(f"the constant {c} has no code")
    return int(code)


class CodedSQL:
    """What the SQL executors share (DuckDB's and Spark's): constants by code and a plan's query
    (:func:`coded_sql`) over the tables their ``_table(scan)`` and ``_ranks()`` name."""

    _code_of: Callable[[str], "int | None"]

    def _table(self, scan: Scan) -> str:
        raise NotImplementedError

    def _ranks(self) -> str:
        raise NotImplementedError

    def _code(self, c: Constant) -> int:
        return constant_code(self._code_of, c)

    def sql(self, plan: JoinPlan, variables=None) -> str | None:
        """The plan's query (:func:`coded_sql`), selecting ``variables`` (default: the plan's) as
        ``v0, v1, ...``; None for a plan without scans."""
        return coded_sql(plan, self._table, self._code, self._ranks, variables)

    def ordered_sql(self, plan: "JoinPlan | UnionPlan") -> str | None:
        """The plan's substitutions, distinct for a union and sorted by their codes
        (:func:`ordered_coded_sql`); None when a part has no scan."""
        return ordered_coded_sql(plan, self._table, self._code, self._ranks)


def _pattern(atom: Atom):
    return tuple(a.name if isinstance(a, Variable) else a for a in atom.args)


def _cmp_vars(c: Comparison) -> set[str]:
    return {t.name for t in (c.left, c.right) if isinstance(t, Variable)}


def plan_rule(rule_index: int, rule, sizes: Mapping[tuple[str, str], int], text: str = "") -> JoinPlan:
    """Plan the grounding query of one rule.

    Parameters
    ----------
    sizes : ``(PREDICATE, relation) -> number of rows``, to order the joins (smallest first,
        always joining on a shared variable when one exists).
    text : the rule file's text, for error carets.
    """
    project = None
    if isinstance(rule, ArithmeticRule):
        atoms = list(rule.atoms)
        scans = [Scan(i, a.key, _pattern(a), "known") for i, a in enumerate(atoms)]
        lookups: list[Lookup] = []
        head_vars: set[str] = set()
        sums = set(rule.sum_variables)
        if sums:
            seen: list[str] = []
            for a in atoms:
                seen += [v for v in a.variables() if v not in sums and v not in seen]
            project = tuple(seen)
    else:
        clause = rule.clause()
        binding = [i for i, l in enumerate(clause) if l.negated]
        if not binding and len(clause) > 1:
            return _plan_disjunction(rule_index, rule, clause, sizes, text)
        if not binding:
            binding = [0]
            relation = "known"
        else:
            relation = "support"
        scans = [Scan(i, clause[i].atom.key, _pattern(clause[i].atom), relation) for i in binding]
        lookups = [Lookup(i, l.atom.key, _pattern(l.atom)) for i, l in enumerate(clause)
                   if i not in binding]
        head_vars = {v for i, l in enumerate(clause) if i not in binding for v in l.atom.variables()}
    bound_by_scans = {v for s in scans for v in s.pattern if isinstance(v, str)}
    for lit_vars, where in ((head_vars, "head"),):
        missing = sorted(lit_vars - bound_by_scans)
        if missing:
            lit = next(l for l in rule.clause() if not l.negated and set(l.atom.variables()) & set(missing))
            raise RuleError(
                f"variable {missing[0]} of {lit} is not bound by any positive body atom. Any variable "
                "used in a negated (non-functional) predicate must also participate in a positive "
                "(non-functional) predicate; add an atom that binds it to the body", lit.span, text)
    for c in rule.comparisons:
        unbound = sorted(_cmp_vars(c) - bound_by_scans)
        if unbound:
            raise RuleError(f"variable {unbound[0]} in the comparison {c} appears in no atom of the "
                            "rule; compare only variables that atoms bind", c.span, text)

    # Greedy join order: start from the smallest relation; then prefer scans sharing a variable.
    remaining = list(scans)
    ordered: list[Scan] = []
    bound: list[str] = []
    while remaining:
        def cost(s: Scan):
            shares = any(isinstance(v, str) and v in bound for v in s.pattern)
            return (0 if (shares or not ordered) else 1, sizes.get((s.predicate, s.relation), 0))
        best = min(remaining, key=cost)
        remaining.remove(best)
        ordered.append(best)
        for v in best.pattern:
            if isinstance(v, str) and v not in bound:
                bound.append(v)
    steps: list[Union[Scan, Filter]] = []
    pending = [Filter(c.op, *(t.name if isinstance(t, Variable) else t for t in (c.left, c.right)))
               for c in rule.comparisons]
    have: set[str] = set()
    for s in ordered:
        steps.append(s)
        have |= {v for v in s.pattern if isinstance(v, str)}
        for f in list(pending):
            if all(not isinstance(x, str) or x in have for x in (f.left, f.right)):
                steps.append(f)
                pending.remove(f)
    return JoinPlan(rule_index, tuple(bound), tuple(steps), tuple(lookups), project)


def _plan_disjunction(rule_index, rule, clause, sizes, text) -> UnionPlan:
    """``w: A(X) | B(X)``: the groundings that reach a target of some literal.

    One branch per literal scans that literal's targets and binds every variable of the rule, so
    each literal must mention them all. (The reference engine rejects such rules outright: no
    literal is negated in the clause, so none binds variables for its grounding query.)
    """
    order: list[str] = []
    for l in clause:
        order += [v for v in l.atom.variables() if v not in order]
    for l in clause:
        missing = [v for v in order if v not in l.atom.variables()]
        if missing:
            raise RuleError(
                f"variable {missing[0]} does not appear in {l}: in a disjunction of positive literals "
                "every literal must mention every variable, since each literal's targets enumerate "
                f"the groundings. Any variable used in a negated (non-functional) predicate must also "
                f"participate in a positive (non-functional) predicate; add a body that binds "
                f"{missing[0]}, e.g. `Person({missing[0]}) -> ...`", l.span, text)
    for c in rule.comparisons:
        unbound = sorted(_cmp_vars(c) - set(order))
        if unbound:
            raise RuleError(f"variable {unbound[0]} in the comparison {c} appears in no atom of the "
                            "rule; compare only variables that atoms bind", c.span, text)
    parts = []
    for i, l in enumerate(clause):
        steps: list[Union[Scan, Filter]] = [Scan(i, l.atom.key, _pattern(l.atom), "targets")]
        steps += [Filter(c.op, *(t.name if isinstance(t, Variable) else t for t in (c.left, c.right)))
                  for c in rule.comparisons]
        parts.append(JoinPlan(rule_index, tuple(order), tuple(steps), ()))
    lookups = tuple(Lookup(i, l.atom.key, _pattern(l.atom)) for i, l in enumerate(clause))
    return UnionPlan(rule_index, tuple(order), tuple(parts), lookups)

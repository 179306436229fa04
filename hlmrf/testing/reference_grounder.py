"""A slow, obviously correct grounder: PSL's semantics by enumerating every substitution.

Independent of :mod:`hlmrf.grounding` (no join plans, no integer codes, no packed keys): each
variable of a rule ranges over every constant of the data, atoms are looked up by their tuple of
constant strings, and a ground rule is written down term by term. It covers logical rules (any
mix of negated and positive literals, comparisons ``!=``, ``==``, ``%``, constants present in the
data or not) and arithmetic rules without summation atoms; summations and filters are left to the
hand-derived tests.

PSL's semantics, as the reference engine and hlmrf define them:

- An atom is a *target* (a variable), *observed* (its value), or absent. Absent atoms of a closed
  predicate are 0 (closed world); an absent atom of an open predicate (one with targets) that a
  ground rule needs is an error ("not explicitly specified in the targets").
- A logical rule's clause is ``!b1 | ... | !bk | h1 | ... | hl``. Its groundings are the
  substitutions under which every literal that is negated in the clause has a target or an
  observed value > 0 (the others make the clause true, and the reference's query over those atoms
  does not return them); a clause without negated literals is grounded where one of its atoms is
  a target (several literals) or exists in the data (one literal). A grounding with an observed
  literal that is true is dropped, and so is one whose atoms' coefficients all cancel.
- An arithmetic rule's groundings are the substitutions under which every atom exists in the data
  (target or observed, any value). Groundings with no target left are dropped (a hard one that the
  observations violate is an error); a soft or ``<=`` grounding of a single atom that no value in
  [0, 1] can violate is dropped too.

The output is a ``Counter`` of canonical rows ``(rule, kind, weight, p, ((atom, coef), ...), c)``
meaning ``w * max(0, sum coef * atom - c)^p`` (hinge), ``(...)`` (linear), ``<= 0`` or ``= 0``
(hard); kinds use :class:`hlmrf.model.terms.Kind` codes.
"""
from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field

from hlmrf.language.ast import ArithmeticRule, Constant, LogicalRule, Variable, coef_value
from hlmrf.model.terms import Kind


class ReferenceRuleError(Exception):
    """The rule has a variable that no binding atom binds (hlmrf raises a RuleError)."""


@dataclass
class ReferenceGroundingError(Exception):
    """``kind`` is ``"open"`` (absent atoms of an open predicate) or ``"hard"`` (observations
    violate a hard rule); ``atoms`` holds the offending absent atoms' names."""

    rule: int
    kind: str
    atoms: set = field(default_factory=set)


@dataclass
class Data:
    """``observed[pred][args] = value``, ``targets[pred] = {args, ...}``, ``arity[pred]``."""

    arity: dict
    observed: dict
    targets: dict

    def constants(self) -> list[str]:
        out = set()
        for table in list(self.observed.values()) + list(self.targets.values()):
            for args in table:
                out.update(args)
        return sorted(out)

    def is_open(self, pred: str) -> bool:
        return bool(self.targets.get(pred))

    def status(self, pred: str, args: tuple):
        """``("target", None)``, ``("observed", value)`` or ``("absent", None)``."""
        if args in self.targets.get(pred, ()):
            return "target", None
        if args in self.observed.get(pred, {}):
            return "observed", self.observed[pred][args]
        return "absent", None


def _ground_args(atom, sub) -> tuple:
    return tuple(a.value if isinstance(a, Constant) else sub[a.name] for a in atom.args)


def _term_value(t, sub):
    return t.value if isinstance(t, Constant) else sub[t.name]


def _comparisons_hold(rule, sub) -> bool:
    for c in rule.comparisons:
        a, b = _term_value(c.left, sub), _term_value(c.right, sub)
        if c.op == "!=" and not a != b:
            return False
        if c.op == "==" and not a == b:
            return False
        if c.op == "%" and not a < b:
            return False
    return True


def _variables(rule) -> list[str]:
    atoms = list(rule.atoms) if isinstance(rule, ArithmeticRule) else [l.atom for l in rule.clause()]
    out: list[str] = []
    for atom in atoms:
        for a in atom.args:
            if isinstance(a, Variable) and a.name not in out:
                out.append(a.name)
    return out


def check_rule(rule) -> None:
    """PSL's safety condition: every variable is bound by a literal that enumerates groundings."""
    cmp_vars = {t.name for c in rule.comparisons for t in (c.left, c.right) if isinstance(t, Variable)}
    if isinstance(rule, ArithmeticRule):
        bound = set(_variables(rule))
        if not cmp_vars <= bound:
            raise ReferenceRuleError
        return
    clause = rule.clause()
    binding = [l for l in clause if l.negated]
    if not binding and len(clause) > 1:
        everything = set(_variables(rule))
        if any(set(l.atom.variables()) != everything for l in clause) or not cmp_vars <= everything:
            raise ReferenceRuleError
        return
    if not binding:
        binding = [clause[0]]
    bound = {v for l in binding for v in l.atom.variables()}
    if not set(_variables(rule)) <= bound or not cmp_vars <= bound:
        raise ReferenceRuleError


def _name(pred: str, args: tuple) -> str:
    return f"{pred}({', '.join(args)})"


def _row(r, kind, weight, p, coefs: dict, c: float):
    terms = tuple(sorted((a, round(k, 9)) for a, k in coefs.items() if abs(k) > 1e-12))
    return (r, int(kind), round(float(weight), 9), int(p), terms, round(float(c), 9) + 0.0)


def ground_reference(program, data: Data) -> Counter:
    """Every ground potential of ``program`` on ``data``, as a Counter of canonical rows.

    Raises :class:`ReferenceRuleError` or :class:`ReferenceGroundingError` where hlmrf must raise
    a RuleError or a GroundingError (the first rule with a problem, as grounding goes rule by rule).
    """
    for rule in program.rules:
        check_rule(rule)
    consts = data.constants()
    rows: Counter = Counter()
    for r, rule in enumerate(program.rules):
        rule_rows: list = []
        missing_open: set = set()
        variables = _variables(rule)
        for values in itertools.product(consts, repeat=len(variables)):
            sub = dict(zip(variables, values))
            if not _comparisons_hold(rule, sub):
                continue
            if isinstance(rule, ArithmeticRule):
                rule_rows += _arithmetic(r, rule, sub, data)
            else:
                rule_rows += _logical(r, rule, sub, data, missing_open)
        if missing_open:
            raise ReferenceGroundingError(r, "open", missing_open)
        for row in rule_rows:
            if row == "violated":
                raise ReferenceGroundingError(r, "hard")
        rows.update(rule_rows)
    return rows


def _logical(r, rule: LogicalRule, sub, data: Data, missing_open: set) -> list:
    clause = rule.clause()
    atoms = [(l.atom.predicate, _ground_args(l.atom, sub)) for l in clause]
    status = [data.status(p, a) for p, a in atoms]
    binding = [i for i, l in enumerate(clause) if l.negated]
    if binding:
        if not all(status[i][0] == "target" or (status[i][0] == "observed" and status[i][1] > 0)
                   for i in binding):
            return []
    elif len(clause) > 1:
        if not any(s == "target" for s, _ in status):
            return []
    elif status[0][0] == "absent":
        return []
    coefs: dict = {}
    c = float(sum(l.negated for l in clause) - 1)
    satisfied = False
    for l, (pred, args), (state, value) in zip(clause, atoms, status):
        s = 1.0 if l.negated else -1.0
        if state == "target":
            name = _name(pred, args)
            coefs[name] = coefs.get(name, 0.0) + s
            continue
        if state == "absent":
            if data.is_open(pred):
                missing_open.add(f"{pred}({', '.join(repr(a) for a in args)})")
                continue
            value = 0.0
        satisfied |= value == (0.0 if l.negated else 1.0)
        c -= s * value
    if satisfied:
        return []
    if not any(abs(k) > 1e-12 for k in coefs.values()):
        return ["violated"] if rule.hard and -c > 1e-6 else []
    if rule.hard:
        return [_row(r, Kind.LEQ, 0.0, 1, coefs, c)]
    kind = Kind.LINEAR if len(clause) == 1 else Kind.HINGE
    return [_row(r, kind, rule.weight, 2 if rule.squared else 1, coefs, c)]


def _arithmetic(r, rule: ArithmeticRule, sub, data: Data) -> list:
    terms = []
    for coef, atom in rule.lhs.terms:
        args = _ground_args(atom, sub)
        state, value = data.status(atom.predicate, args)
        if state == "absent":
            return []  # not in the data: the reference's query does not return the substitution
        terms.append((float(coef_value(coef)), _name(atom.predicate, args), state, value))
    sign = -1.0 if rule.op == ">=" else 1.0
    c = -sign * float(coef_value(rule.lhs.constant))
    coefs: dict = {}
    for k, name, state, value in terms:
        if state == "target":
            coefs[name] = coefs.get(name, 0.0) + sign * k
        else:
            c -= sign * k * value
    if rule.hard:
        kinds = [(Kind.EQ if rule.op == "=" else Kind.LEQ, 1.0, 0.0)]
    elif rule.op == "=":
        kinds = [(Kind.HINGE, 1.0, rule.weight), (Kind.HINGE, -1.0, rule.weight)]
    else:
        kinds = [(Kind.HINGE, 1.0, rule.weight)]
    out = []
    live = {a: k for a, k in coefs.items() if abs(k) > 1e-12}
    for kind, flip, weight in kinds:
        row_coefs, row_c = {a: flip * k for a, k in live.items()}, flip * c
        if not live:
            if kind in (Kind.LEQ, Kind.EQ) and (-row_c > 1e-6 or (kind == Kind.EQ and -row_c < -1e-6)):
                out.append("violated")
            continue
        if len(terms) == 1 and kind in (Kind.HINGE, Kind.LEQ):
            if sum(max(k, 0.0) for k in row_coefs.values()) - row_c <= 0:
                continue  # one atom that no value in [0, 1] can push past the bound
        p = 2 if (rule.squared and kind <= Kind.HINGE) else 1
        out.append(_row(r, kind, weight, p, row_coefs, row_c))
    return out


def model_rows(model) -> Counter:
    """The same canonical rows, read off an hlmrf model."""
    out: Counter = Counter()
    for i in range(model.m):
        coefs = model.row_atoms(i)
        out[_row(int(model.rule[i]), model.kind[i], model.w[i], model.p[i], coefs, model.c[i])] += 1
    return out

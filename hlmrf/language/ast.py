"""The rule language's abstract syntax: frozen dataclasses, each node with its source span.

A logical rule is kept in the shape the user wrote (a conjunctive body and a disjunctive head) and
exposes its clause form, which is what grounding needs: PSL turns ``body -> head`` into the
disjunction ``!b1 | ... | !bk | h1 | ... | hl``. An arithmetic rule is kept as one linear
expression compared with a constant (``sum coef * atom  OP  constant``), both sides moved to the left.
This module knows nothing about data or grounding.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from hlmrf.errors import Span


@dataclass(frozen=True)
class Variable:
    """A variable; ``summation`` marks PSL's ``+X`` argument of a summation atom."""

    name: str
    span: Span | None = field(default=None, compare=False, repr=False)
    summation: bool = False

    def __str__(self) -> str:
        return ("+" if self.summation else "") + self.name


@dataclass(frozen=True)
class Constant:
    value: str
    span: Span | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return "'" + self.value.replace("\\", "\\\\").replace("'", "\\'") + "'"


Term = Union[Variable, Constant]


@dataclass(frozen=True)
class Atom:
    predicate: str
    args: tuple[Term, ...]
    span: Span | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> str:
        """Predicate names match case-insensitively, as in the reference engine."""
        return self.predicate.upper()

    def variables(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args if isinstance(a, Variable))

    @property
    def sum_variables(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args if isinstance(a, Variable) and a.summation)

    def __str__(self) -> str:
        return f"{self.predicate}({', '.join(str(a) for a in self.args)})"


@dataclass(frozen=True)
class Literal:
    atom: Atom
    negated: bool = False
    span: Span | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return ("!" if self.negated else "") + str(self.atom)


@dataclass(frozen=True)
class Comparison:
    """A term comparison in a rule body: ``!=`` (also spelled ``-``), ``==``, ``%`` (also ``^``).

    ``%`` is PSL's non-symmetric operator: of the substitutions (a, b) and (b, a) only one is
    ground.
    """

    op: str
    left: Term
    right: Term
    span: Span | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"({self.left} {self.op} {self.right})"


@dataclass(frozen=True)
class LogicalRule:
    """``weight: body -> head ^p`` or, when ``weight is None``, the hard rule ``body -> head .``.

    ``body`` is a conjunction of literals, ``head`` a disjunction; a rule written without an arrow
    has an empty body and its disjunction as head.
    """

    body: tuple[Literal, ...]
    head: tuple[Literal, ...]
    comparisons: tuple[Comparison, ...] = ()
    weight: float | None = None
    squared: bool = False
    span: Span | None = field(default=None, compare=False, repr=False)
    text: str = field(default="", compare=False, repr=False)

    @property
    def hard(self) -> bool:
        return self.weight is None

    def clause(self) -> tuple[Literal, ...]:
        """The clause form: body literals negated, head literals as written."""
        return tuple(Literal(l.atom, not l.negated, l.span) for l in self.body) + self.head

    def __str__(self) -> str:
        parts = [str(l) for l in self.body] + [str(c) for c in self.comparisons]
        head = " | ".join(str(l) for l in self.head)
        core = f"{' & '.join(parts)} -> {head}" if parts else head
        if self.hard:
            return core + " ."
        return f"{_fmt_num(self.weight)}: {core}" + (" ^2" if self.squared else " ^1")


@dataclass(frozen=True)
class Cardinality:
    """``|X|``: the number of ground atoms a summation over ``+X`` expands to, per grounding."""

    variable: str
    span: Span | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"|{self.variable}|"


@dataclass(frozen=True)
class CoefCall:
    """``@Min[a, b]`` or ``@Max[a, b]``."""

    function: str  # "Min" | "Max"
    args: tuple["Coef", "Coef"]

    def __str__(self) -> str:
        return f"@{self.function}[{_fmt_coef(self.args[0])}, {_fmt_coef(self.args[1])}]"


@dataclass(frozen=True)
class CoefOp:
    """``left op right`` between coefficients, op in ``+ - * /``."""

    op: str
    left: "Coef"
    right: "Coef"

    def __str__(self) -> str:
        return f"({_fmt_coef(self.left)} {self.op} {_fmt_coef(self.right)})"


# A coefficient is a number, or an expression that needs a grounding's cardinalities.
Coef = Union[float, Cardinality, CoefCall, CoefOp]


def coef_cardinalities(c: Coef) -> tuple[Cardinality, ...]:
    """Every ``|X|`` inside a coefficient, in order."""
    if isinstance(c, Cardinality):
        return (c,)
    if isinstance(c, CoefCall):
        return coef_cardinalities(c.args[0]) + coef_cardinalities(c.args[1])
    if isinstance(c, CoefOp):
        return coef_cardinalities(c.left) + coef_cardinalities(c.right)
    return ()


def coef_value(c: Coef, cards=None):
    """Evaluate a coefficient; ``cards`` maps a summation variable to its count (scalar or array).

    Division by a zero count gives ``inf``/``nan`` (numpy semantics); grounding skips those
    groundings.
    """
    import numpy as np

    if isinstance(c, (int, float)):
        return float(c)
    if isinstance(c, Cardinality):
        return cards[c.variable]
    if isinstance(c, CoefCall):
        a, b = coef_value(c.args[0], cards), coef_value(c.args[1], cards)
        return np.minimum(a, b) if c.function == "Min" else np.maximum(a, b)
    a, b = coef_value(c.left, cards), coef_value(c.right, cards)
    if c.op == "+":
        return a + b
    if c.op == "-":
        return a - b
    if c.op == "*":
        return a * b
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(a, b) if (np.ndim(a) or np.ndim(b)) else (
            a / b if b != 0 else (np.inf if a > 0 else -np.inf if a < 0 else np.nan))


def coef_neg(c: Coef) -> Coef:
    """``-c``, written so that negating twice gives ``c`` back (printing round-trips)."""
    if isinstance(c, (int, float)):
        return -float(c) + 0.0
    if isinstance(c, CoefOp) and c.op == "*" and c.left == -1.0:
        return c.right
    return CoefOp("*", -1.0, c)


def _fmt_coef(c: Coef) -> str:
    return _fmt_num(c) if isinstance(c, (int, float)) else str(c)


@dataclass(frozen=True)
class LinearExpr:
    """``sum(coef * atom) + constant``; ``terms`` keeps the user's order.

    A coefficient (and the constant) is a float, or a :data:`Coef` expression when it involves a
    cardinality ``|X|`` that only grounding can evaluate.
    """

    terms: tuple[tuple[Coef, Atom], ...]
    constant: Coef = 0.0

    def __str__(self) -> str:
        out = []
        for coef, atom in self.terms:
            if isinstance(coef, (int, float)):
                sign = "-" if coef < 0 else "+"
                mag = abs(coef)
                body = str(atom) if mag == 1 else f"{_fmt_num(mag)} * {atom}"
            else:
                sign, body = "+", f"{coef} * {atom}"
            out.append((sign, body))
        const = self.constant
        if not isinstance(const, (int, float)):
            out.append(("+", str(const)))
        elif const != 0 or not out:
            out.append(("-" if const < 0 else "+", _fmt_num(abs(const))))
        text = ("-" if out[0][0] == "-" else "") + out[0][1]
        for sign, body in out[1:]:
            text += f" {sign} {body}"
        return text


@dataclass(frozen=True)
class BoolOp:
    """A conjunction (``&``) or disjunction (``|``) inside a filter clause."""

    op: str
    items: tuple["BoolExpr", ...]

    def __str__(self) -> str:
        return f" {self.op} ".join(f"({i})" if isinstance(i, BoolOp) else str(i) for i in self.items)


BoolExpr = Union[Literal, Comparison, BoolOp]


@dataclass(frozen=True)
class FilterClause:
    """``{B: Nice(B) & !Similar(A, B)}``: which constants the summation over ``+B`` keeps.

    Evaluated in crisp logic on closed predicates: an atom is true when its value is > 0.
    """

    variable: str
    formula: BoolExpr
    span: Span | None = field(default=None, compare=False, repr=False)

    def atoms(self) -> tuple[Atom, ...]:
        return _bool_atoms(self.formula)

    def __str__(self) -> str:
        return f"{{{self.variable}: {self.formula}}}"


def _bool_atoms(e) -> tuple[Atom, ...]:
    if isinstance(e, Literal):
        return (e.atom,)
    if isinstance(e, BoolOp):
        return tuple(a for i in e.items for a in _bool_atoms(i))
    return ()


@dataclass(frozen=True)
class ArithmeticRule:
    """``weight: expr OP 0 ^p {filters}`` with OP in ``=``, ``<=``, ``>=``; hard when
    ``weight is None``.

    Both sides of the user's rule are moved to the left, so ``lhs`` holds every atom and the
    constant; the comparison is always with zero. Summation atoms carry ``+X`` arguments
    (:attr:`Variable.summation`); ``filters`` restrict what a summation ranges over.
    """

    lhs: LinearExpr
    op: str
    comparisons: tuple[Comparison, ...] = ()
    weight: float | None = None
    squared: bool = False
    span: Span | None = field(default=None, compare=False, repr=False)
    text: str = field(default="", compare=False, repr=False)
    filters: tuple[FilterClause, ...] = ()

    @property
    def hard(self) -> bool:
        return self.weight is None

    @property
    def atoms(self) -> tuple[Atom, ...]:
        return tuple(a for _, a in self.lhs.terms)

    @property
    def sum_variables(self) -> tuple[str, ...]:
        return tuple(v for a in self.atoms for v in a.sum_variables)

    def __str__(self) -> str:
        expr = LinearExpr(self.lhs.terms, 0.0)
        core = f"{expr} {self.op} {_fmt_coef(coef_neg(self.lhs.constant))}"
        if self.comparisons:
            core += " " + " ".join(str(c) for c in self.comparisons)
        filters = "".join(" " + str(f) for f in self.filters)
        if self.hard:
            return core + " ." + filters
        return f"{_fmt_num(self.weight)}: {core}" + (" ^2" if self.squared else " ^1") + filters


Rule = Union[LogicalRule, ArithmeticRule]


@dataclass(frozen=True)
class Program:
    rules: tuple[Rule, ...]
    source: str = "<rules>"
    text: str = field(default="", compare=False, repr=False)

    def predicates(self) -> dict[str, tuple[str, int, Span | None]]:
        """Upper-cased predicate name -> (name as first written, arity, span of first use)."""
        out: dict[str, tuple[str, int, Span | None]] = {}
        for rule in self.rules:
            atoms = list(rule.atoms) + [a for f in rule.filters for a in f.atoms()] \
                if isinstance(rule, ArithmeticRule) else [l.atom for l in rule.body + rule.head]
            for atom in atoms:
                out.setdefault(atom.key, (atom.predicate, len(atom.args), atom.span))
        return out

    def __str__(self) -> str:
        return "\n".join(str(r) for r in self.rules) + ("\n" if self.rules else "")


def _fmt_num(x: float) -> str:
    x = float(x) + 0.0  # no "-0"
    if x.is_integer():
        return str(int(x)) if abs(x) < 1e15 else repr(float(x))
    return repr(float(x))

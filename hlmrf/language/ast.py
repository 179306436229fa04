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
    name: str
    span: Span | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return self.name


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
class LinearExpr:
    """``sum(coef * atom) + constant``; ``terms`` keeps the user's order."""

    terms: tuple[tuple[float, Atom], ...]
    constant: float = 0.0

    def __str__(self) -> str:
        out = []
        for coef, atom in self.terms:
            sign = "-" if coef < 0 else "+"
            mag = abs(coef)
            body = str(atom) if mag == 1 else f"{_fmt_num(mag)} * {atom}"
            out.append((sign, body))
        if self.constant != 0 or not out:
            out.append(("-" if self.constant < 0 else "+", _fmt_num(abs(self.constant))))
        text = ("-" if out[0][0] == "-" else "") + out[0][1]
        for sign, body in out[1:]:
            text += f" {sign} {body}"
        return text


@dataclass(frozen=True)
class ArithmeticRule:
    """``weight: expr OP 0 ^p`` with OP in ``=``, ``<=``, ``>=``; hard when ``weight is None``.

    Both sides of the user's rule are moved to the left, so ``lhs`` holds every atom and the
    constant; the comparison is always with zero.
    """

    lhs: LinearExpr
    op: str
    comparisons: tuple[Comparison, ...] = ()
    weight: float | None = None
    squared: bool = False
    span: Span | None = field(default=None, compare=False, repr=False)
    text: str = field(default="", compare=False, repr=False)

    @property
    def hard(self) -> bool:
        return self.weight is None

    @property
    def atoms(self) -> tuple[Atom, ...]:
        return tuple(a for _, a in self.lhs.terms)

    def __str__(self) -> str:
        expr = LinearExpr(self.lhs.terms, 0.0)
        core = f"{expr} {self.op} {_fmt_num(-self.lhs.constant)}"
        if self.comparisons:
            core += " " + " ".join(str(c) for c in self.comparisons)
        if self.hard:
            return core + " ."
        return f"{_fmt_num(self.weight)}: {core}" + (" ^2" if self.squared else " ^1")


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
            atoms = rule.atoms if isinstance(rule, ArithmeticRule) else [
                l.atom for l in rule.body + rule.head]
            for atom in atoms:
                out.setdefault(atom.key, (atom.predicate, len(atom.args), atom.span))
        return out

    def __str__(self) -> str:
        return "\n".join(str(r) for r in self.rules) + ("\n" if self.rules else "")


def _fmt_num(x: float) -> str:
    if float(x).is_integer():
        return str(int(x)) if abs(x) < 1e15 else repr(float(x))
    return repr(float(x))

"""Arity agreement between the rules and the facts, blamed where a user would fix it.

The rules fix each predicate's arity (every use must agree: a second use with another arity is a
:class:`~hlmrf.errors.RuleError` at that use) and the loaders read facts files with it, so that a
last numeric column can be told from an argument. When a facts file disagrees with the rules on
every line, the loaders raise :class:`ArityMismatchError`; :func:`rules_own_arities` turns that into
a ``RuleError`` located at the rule atom whose message also names the file and line. The rule is
blamed first because rules are typed by hand and facts files are usually generated, so a count
that disagrees on every line is most often a typo in the rule; naming the file keeps the other
case one look away. This module reads no files.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from hlmrf.errors import DataError, RuleError, Span
from hlmrf.language.ast import ArithmeticRule, Atom, Program


class ArityMismatchError(DataError):
    """Facts that disagree, on every row, with the arity they were read with.

    ``arity`` is what they were read with; ``data_says`` completes "... but" in a message that
    blames the rules (e.g. ``its facts in knows_obs.txt:1 have 2 column(s)``); ``predicate`` is
    upper-cased, set by whichever loader knows it.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None, *,
                 arity: int, data_says: str, predicate: str | None = None):
        super().__init__(message, path, line)
        self.arity = arity
        self.data_says = data_says
        self.predicate = predicate


def columns_text(columns: int, with_values: bool) -> str:
    """``3 column(s) (3 argument(s), or 2 and a truth value)``, for :attr:`ArityMismatchError.data_says`."""
    if with_values and columns > 1:
        return f"{columns} column(s) ({columns} argument(s), or {columns - 1} and a truth value)"
    return f"{columns} column(s)"


def rule_atoms(rule) -> tuple[Atom, ...]:
    """Every atom of a rule: body, head, summation and filter atoms, in the order written."""
    if isinstance(rule, ArithmeticRule):
        return tuple(rule.atoms) + tuple(a for f in rule.filters for a in f.atoms())
    return tuple(l.atom for l in rule.body + rule.head)


def rule_arities(program: Program) -> dict[str, tuple[str, int, Span | None]]:
    """Upper-cased predicate -> ``(name as first written, arity, span of first use)``.

    Raises
    ------
    RuleError : a predicate used with two different numbers of arguments, at the second use.
    """
    out: dict[str, tuple[str, int, Span | None]] = {}
    for rule in program.rules:
        for atom in rule_atoms(rule):
            first = out.setdefault(atom.key, (atom.predicate, len(atom.args), atom.span))
            if first[1] != len(atom.args):
                where = f" at {first[2]}" if first[2] is not None else ""
                raise RuleError(
                    f"{atom.predicate} is used here with {len(atom.args)} argument(s), but with "
                    f"{first[1]}{where}; a predicate has one arity: fix the number of arguments of "
                    f"one of the two uses", atom.span, program.text)
    return out


@contextmanager
def rules_own_arities(program: Program) -> Iterator[None]:
    """Load facts inside this block: a file that disagrees with the rules' arity on every row is
    reported as a :class:`RuleError` at the predicate's (first) use in the rules."""
    arities = rule_arities(program)
    try:
        yield
    except ArityMismatchError as exc:
        known = arities.get((exc.predicate or "").upper())
        if known is None or known[1] != exc.arity:
            raise
        name, arity, span = known
        raise RuleError(
            f"{name} is used here with {arity} argument(s), but {exc.data_says}; fix the number "
            f"of arguments in the rules, or the facts", span, program.text) from None

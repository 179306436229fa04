"""Property: on any text, ``parse_rules`` returns a program or raises a located ``RuleError``.

Never another exception (no RecursionError, IndexError, KeyError, OverflowError), never a hang,
and never a program with a non-finite or negative weight or a non-finite coefficient. What parses
prints as text that parses to the same program, so ``hlmrf-learn`` cannot write a rule file the
parser rejects. Three generators: sequences of the grammar's own tokens (which reach deep into
the parser), valid rules with one token dropped, repeated or replaced, and arbitrary unicode.
A fourth property checks where rules end: random valid rules, one per line, parse as exactly
those rules, whatever their kinds.
``FUZZ_EXAMPLES`` raises the count for a longer local run.
"""
from __future__ import annotations

import math
import os
import time

from hypothesis import HealthCheck, given, settings, strategies as st

from hlmrf import HlmrfError, RuleError, parse_rules
from hlmrf.language import ArithmeticRule
from hlmrf.language.ast import coef_cardinalities
from hlmrf.testing.rule_strategies import arithmetic, logical

N = int(os.environ.get("FUZZ_EXAMPLES", "0")) or None
FUZZ = settings(max_examples=N or 600, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

TOKENS = [
    # names, variables, constants
    "A", "B", "X", "Friends", "Smokes", "Max", "Min", "Mean", "_p", "'a'", '"b c"', "'it\\'s'",
    # numbers, including the ones that overflow or underflow
    "0", "1", "2", "0.5", ".5", "1.", "1e309", "1e-320", "1e200", "1E+5", "007",
    # operators of both rule kinds
    "(", ")", "[", "]", "{", "}", ",", ":", ".", "^", "^1", "^2", "!", "~", "&", "&&", "|", "||",
    "->", ">>", "<-", "<<", "=", "==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "%", "@",
    "|X|", "+X", "@Max[", "@Min(",
    # comments and odd bytes
    "// c\n", "# c\n", "/* c */", "/*", "*/", "\n", "\t", "$", "\\", "'", '"', "\u00e9", "\u2192",
]

VALID = [
    "0.5: Friends(A, B) & Smokes(A) -> Smokes(B) ^2",
    "0.01: !Cancer(X)",
    "Cancer(X) <= 0.9 .",
    "1: Rating(U, +I) / |I| = AvgRating(U) ^2 {I: Rated(U, I)}",
    "Friends(A, +B) <= 1 . {B: Nice(B) & !Similar(A, B) & (A != B)}",
    "2: Lived(A, L) & Lived(B, L) & (A != B) -> Knows(A, B) | Knows(B, A)",
    "1: 2 Rating(U, I) + @Max[0.5, 1 - 0.25] * LocalRating(U, I) >= (1 + 2) / 4 ^1",
    "1: Rating(U, +I) <= @Max[1, |I| / 2] ^1 {I: Rated(U, I) | Liked(U, I)}",
    "1: (Sim(A, B) & Block(A, B)) -> (Same(A, B) | !Known(A))",
    "Friends(A, B) <= 1 (A != B) .",
]

token_soup = st.lists(st.tuples(st.sampled_from(TOKENS), st.sampled_from(["", " ", "\n"])),
                      max_size=40).map(lambda ts: "".join(t + s for t, s in ts))


@st.composite
def mutated(draw):
    text = "\n".join(draw(st.lists(st.sampled_from(VALID), min_size=1, max_size=3)))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 6)))
        text = text[:i] + draw(st.sampled_from(["", *TOKENS])) + text[j:]
    return text


def check(text: str) -> None:
    t0 = time.perf_counter()
    try:
        program = parse_rules(text, "fuzz.psl")
    except RuleError as exc:
        msg = str(exc)
        assert msg.startswith("fuzz.psl:"), msg  # every rule error says where
        return
    except HlmrfError:  # pragma: no cover - a rule text should only ever raise RuleError
        raise AssertionError(f"parse_rules raised a non-rule error for {text!r}")
    finally:
        assert time.perf_counter() - t0 < 2.0, f"parsing took too long: {text!r}"
    assert program.rules
    for rule in program.rules:
        assert rule.weight is None or (math.isfinite(rule.weight) and rule.weight >= 0), text
        if isinstance(rule, ArithmeticRule):
            for c in [c for c, _ in rule.lhs.terms] + [rule.lhs.constant]:
                assert not isinstance(c, float) or math.isfinite(c), text
                coef_cardinalities(c)
    printed = str(program)
    again = parse_rules(printed, "printed.psl")
    assert again.rules == program.rules, (text, printed)


@FUZZ
@given(token_soup)
def test_token_sequences(text):
    check(text)


@FUZZ
@given(mutated())
def test_mutated_rules(text):
    check(text)


@settings(max_examples=N or 300, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text(text):
    check(text)


@settings(max_examples=N or 120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(logical(), arithmetic()), min_size=2, max_size=5))
def test_rules_one_per_line_parse_one_by_one(rules):
    alone = []
    for text in rules:
        try:
            alone.append(parse_rules(text).rules)
        except RuleError:
            continue  # e.g. a summation variable also used plainly; tested elsewhere
    assert all(len(r) == 1 for r in alone)
    kept = [t for t in rules if _parses(t)]
    if kept:
        assert parse_rules("\n".join(kept)).rules == tuple(r[0] for r in alone)


def _parses(text: str) -> bool:
    try:
        parse_rules(text)
    except RuleError:
        return False
    return True

"""The rule parser at its edges: non-finite numbers, deep nesting, huge flat rules, empty files,
and other odd input that once crashed it. Each is a located RuleSyntaxError or a correct parse.
"""
from __future__ import annotations

import inspect
import math
import sys
import time
from contextlib import contextmanager

import pytest

import hlmrf
from hlmrf import RuleError, RuleSyntaxError, parse_rules
from hlmrf.language import ArithmeticRule
from hlmrf.language.ast import coef_cardinalities, coef_value
from hlmrf.language.parser import MAX_NESTING


def located(text: str, line: int, col: int, *words: str) -> str:
    with pytest.raises(RuleSyntaxError) as info:
        parse_rules(text, "rules.psl")
    msg = str(info.value)
    assert msg.startswith(f"rules.psl:{line}:{col}: "), msg
    for w in words:
        assert w in msg, msg
    caret = msg.splitlines()[-1]
    assert caret.index("^") - 4 + 1 == col, msg
    return msg


# -- weights and coefficients are finite ---------------------------------------------------------

@pytest.mark.parametrize("text, line, col, words", [
    ("1e309: Smokes(X) -> Cancer(X) ^2", 1, 1, "rule weights must be finite numbers"),
    ("0.5: A(X)\n1e400: !A(X)", 2, 1, "1e400 is too large for a double"),
    ("1e309 * Cancer(X) <= 1 .", 1, 1, "coefficients must be finite numbers"),
    ("Cancer(X) <= 1e309 .", 1, 14, "coefficients must be finite numbers"),
    ("1: A(+X) * @Max[1e309, |X|] <= 1 ^1", 1, 17, "1e309 is too large"),
    # overflow while folding blames the operator
    ("1e200 * 1e200 * A(X) <= 1 .", 1, 7, "`*` makes a coefficient infinite"),
    ("A(X) * 1e200 * 1e200 <= 1 .", 1, 14, "`*` makes a coefficient infinite"),
    ("A(X) / 1e-320 <= 1 .", 1, 6, "`/` makes a coefficient infinite"),
    ("1: A(X) <= 1e308 + 1e308 ^2", 1, 18, "`+` makes a coefficient infinite"),
    ("1: A(X) <= -1e308 - 1e308 ^2", 1, 19, "`-` makes a coefficient infinite"),
    ("2 * (1e308 * A(X)) <= 1 .", 1, 3, "`*` makes a coefficient infinite"),
    ("1: A(X) + 1e308 <= -1e308", 1, 17, "moving the right side across `<=` makes the constant"),
    ("1: @Min[1e200 * 1e200, 1] * A(X) <= 1", 1, 15, "`*` makes a coefficient infinite"),
])
def test_non_finite_numbers_are_located_errors(text, line, col, words):
    located(text, line, col, words, "must be finite numbers")


def test_largest_finite_numbers_still_parse():
    rule = parse_rules("1.7e308: A(X) -> B(X)\n1e308 * A(X) <= 1e308 .").rules
    assert rule[0].weight == 1.7e308
    assert rule[1].lhs.terms[0][0] == 1e308 and rule[1].lhs.constant == -1e308
    assert parse_rules("1e-400: A(X)").rules[0].weight == 0.0  # underflow is harmless


def test_negative_weights_stay_rejected():
    located("-1: A(X) -> B(X)", 1, 1, "rule weights must be non-negative")


def test_infinity_never_reaches_a_model_through_the_api(tmp_path):
    path = tmp_path / "rules.psl"
    path.write_text("1e309: Smokes(X) -> Cancer(X) ^2\n")
    with pytest.raises(RuleSyntaxError, match=r"rules.psl:1:1: .*weights must be finite"):
        hlmrf.load_rules(path)


# -- nesting ---------------------------------------------------------------------------------------

def _nest(kind: str, depth: int) -> tuple[str, int]:
    """A rule nesting ``depth`` brackets of ``kind``, and where its first bracket is."""
    if kind == "logical":
        text = "1: " + "(" * depth + "A(X)" + ")" * depth + " -> B(X)"
    elif kind == "negated":
        text = "1: " + "!(" * depth + "A(X)" + ")" * depth
    elif kind == "arithmetic":
        text = "1: " + "(" * depth + "A(X)" + " + 1)" * depth + " <= 1"
    elif kind == "negative":
        text = "-(" * depth + "A(X)" + ")" * depth + " <= 1 ."
    elif kind == "max":
        text = "1: A(+X) <= " + "@Max[" * depth + "|X|" + ", 2]" * depth
    elif kind == "filter":
        text = "Friends(A, +B) <= 1 . {B: " + "(" * (depth - 1) + "Nice(B)" + ")" * (depth - 1) + "}"
    else:
        raise AssertionError(kind)
    return text, {"max": text.find("@"), "filter": text.find("{")}.get(kind, text.find("("))


def _column_of_bracket(text: str, start: int, n: int) -> int:
    """1-based column of the ``n``-th opening bracket from ``start``."""
    seen = 0
    for i in range(start, len(text)):
        if text[i] in "([{":
            seen += 1
            if seen == n:
                return i + 1
    raise AssertionError(n)


KINDS = ["logical", "negated", "arithmetic", "negative", "max", "filter"]


@pytest.mark.parametrize("kind", KINDS)
def test_nesting_up_to_the_limit_parses_and_prints(kind):
    # @Max[...] nests coefficient expressions as well as brackets: those stay below the limit.
    text, _ = _nest(kind, MAX_NESTING - 1 if kind == "max" else MAX_NESTING)
    program = parse_rules(text)
    again = parse_rules(str(program))  # printing and every AST walk stay within the limit too
    assert again.rules == program.rules
    hash(program.rules)
    program.predicates()


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 300, 5_000])
@pytest.mark.parametrize("kind", KINDS)
def test_nesting_past_the_limit_is_a_located_error(kind, depth):
    text, start = _nest(kind, depth)
    # The error points at the bracket one past the limit.
    col = _column_of_bracket(text, start, MAX_NESTING + 1)
    located(text, 1, col, f"deeper than {MAX_NESTING} levels", "flatten")


def test_the_limit_is_the_documented_one():
    from pathlib import Path

    doc = (Path(__file__).parents[3] / "docs" / "rule_language.md").read_text()
    assert MAX_NESTING == 100 and "100" in doc and "nest" in doc


@pytest.mark.parametrize("text", [
    "1: " + "!" * 5_000 + "A(X) -> B(X)",  # prefix operators are read in a loop, not recursively
    "1: " + "~" * 4_999 + "A(X)",
    "-" * 5_000 + "A(X) <= 1 .",
    "1: A(X) <= " + "- + " * 2_500 + "1",
])
def test_long_prefix_operators_parse(text):
    rule = parse_rules(text).rules[0]
    assert parse_rules(str(rule)).rules[0] == rule


def test_double_negation_cancels():
    a, b = parse_rules("1: !!A(X) -> B(X)\n1: !!!A(X)").rules
    assert not a.body[0].negated and b.head[0].negated


def test_deep_coefficient_expressions_are_a_located_error():
    text = "1: A(+X) * " + " * ".join(["|X|"] * (MAX_NESTING + 5)) + " <= 1"
    # A(+X) * |X| has the coefficient |X|; each further `* |X|` nests one operation deeper.
    col = [i + 1 for i, ch in enumerate(text) if ch == "*"][MAX_NESTING]
    msg = located(text, 1, col, f"nests {MAX_NESTING} operations deep")
    assert "simplify" in msg
    located("1: A(+X) <= " + "@Max[" * MAX_NESTING + "|X|" + ", 2]" * MAX_NESTING, 1,
            14, f"nests {MAX_NESTING} operations deep")
    ok = " * ".join(["|X|"] * (MAX_NESTING - 5))
    rule = parse_rules(f"1: A(+X) * {ok} <= 1").rules[0]
    assert coef_value(rule.lhs.terms[0][0], {"X": 2.0}) == 2.0 ** (MAX_NESTING - 5)
    assert len(coef_cardinalities(rule.lhs.terms[0][0])) == MAX_NESTING - 5
    assert parse_rules(str(rule)).rules[0] == rule


# -- huge flat rules -------------------------------------------------------------------------------

@contextmanager
def shallow_stack(room: int = 120):
    """Lower the recursion limit to the current depth plus ``room``: a recursive walk of a flat
    5,000-atom rule would need thousands of frames and fail."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + room)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


FLAT = {
    "and": "1: " + " & ".join(f"A{i}(X)" for i in range(5_000)) + " -> B(X) ^2",
    "or": "1: B(X) -> " + " | ".join(f"A{i}(X)" for i in range(5_000)),
    "sum": " + ".join(f"A{i}(X)" for i in range(5_000)) + " <= 1 .",
    "sum of scaled atoms": "1: " + " - ".join(f"0.5 * A{i}(X)" for i in range(5_000)) + " >= -1",
    "filter": "Friends(A, +B) <= 1 . {B: " + " & ".join(f"N{i}(B)" for i in range(5_000)) + "}",
    "many rules": "\n".join(f"{i % 7}: A{i}(X) -> B(X)" for i in range(5_000)),
    "many comparisons": "1: " + " & ".join(f"A(X{i}) & (X{i} != Y)" for i in range(2_000)) + " -> B(Y)",
}


@pytest.mark.parametrize("name", list(FLAT))
def test_huge_flat_rules_parse_without_recursion_in_bounded_time(name):
    text = FLAT[name]
    t0 = time.perf_counter()
    with shallow_stack():
        program = parse_rules(text)
        printed = str(program)
        program.predicates()
    seconds = time.perf_counter() - t0
    assert seconds < 10, f"{name}: {seconds:.1f} s"  # about 0.3 s; generous for a busy machine
    assert parse_rules(printed).rules == program.rules


# -- empty rule files ------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "\n\n  \t\n", "// only a comment\n", "# a\n/* b\n c */\n"])
def test_a_file_without_rules_is_an_error(text):
    located(text, 1, 1, "the rule file has no rules", "e.g.")


def test_an_empty_rule_file_is_an_error_when_loaded(tmp_path):
    path = tmp_path / "rules.psl"
    path.write_text("// nothing yet\n")
    with pytest.raises(RuleSyntaxError, match=r"rules.psl:1:1: the rule file has no rules"):
        hlmrf.load_rules(path)


# -- odd input that once crashed the parser --------------------------------------------------------

@pytest.mark.parametrize("text, line, col, words", [
    # a KeyError: `=` is not a term-comparison operator, but was read as one after an arithmetic rule
    ("Friends(A, B) <= 1 (A= B) .", 1, 20, "expected `.` to end the unweighted (hard) rule"),
    ("Friends(A, B) <= 1 (A <= B) .", 1, 20, "expected `.`"),
    # an arithmetic rule without a relation used to take its next token as the relation
    ("1: -A(X) & B(X)", 1, 10, "expected `=`, `<=` or `>=`"),
    ("|X| * A(+X) .", 1, 13, "expected `=`, `<=` or `>=`"),
    ("1: 2 A(X) -> B(X)", 1, 11, "expected `=`, `<=` or `>=`"),
])
def test_odd_input_is_a_located_error(text, line, col, words):
    located(text, line, col, words)


def test_a_rule_parsed_without_error_has_finite_numbers_only():
    for rule in parse_rules("1: 3 * A(X) / 4 - (B(X) - 1) / 1e-300 <= 1e300 ^2\n"
                            "0: A(X) -> B(X)").rules:
        assert rule.weight is None or math.isfinite(rule.weight)
        if isinstance(rule, ArithmeticRule):
            assert all(math.isfinite(c) for c, _ in rule.lhs.terms)


def test_rule_errors_are_value_errors():
    with pytest.raises(ValueError):
        parse_rules("")
    assert issubclass(RuleSyntaxError, RuleError)

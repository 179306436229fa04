"""Each construct the reference engine rejects is rejected with file:line:col, a caret and a fix."""
import pytest

from hlmrf import RuleError, parse_rules
from hlmrf.grounding.ground import ground

from hlmrf.testing.lang_helpers import store_of


@pytest.mark.parametrize("text, line, col, words", [
    ("HasCat(A, +C) + Other(A, +C) <= 1 .", 1, 26, "+C is used twice"),
    ("1: P(A, +B) <= |C| ^1", 1, 16, "|C| takes the cardinality of a summation variable"),
    ("1: P(A, B) <= |B| ^1", 1, 15, "B is not one"),
    ("P(A) / 0 <= 1 .", 1, 6, "division by zero"),
    ("\n1: P(A) / (2 - 2) <= 1", 2, 9, "division by zero"),
    ("1: P(A) * Q(A) <= 1", 1, 9, "product of two atoms"),
    ("5: A(X) -> B(X) .", 1, 17, "weighted rule cannot end with `.`"),
    ("A(X) -> B(X) ^2 .", 1, 14, "hard constraint (no weight) takes no exponent"),
    ("1: A(X) -> B(X) ^3", 1, 18, "exponent must be 1 or 2"),
    ("1: A(X) -> B(X) & C(X) | D(X)", 1, 12, "cannot mix `&` and `|`"),
    ("1: A(X) -> B(X) & C(X)", 1, 12, "write one rule per head atom"),
    ("1: A(X) | C(X) -> B(X)", 1, 4, "one rule per disjunct"),
    ("1: P(A, +B) <= 1 ^1 {C: Q(C)}", 1, 21, "not a summation variable"),
    ("1: P(A, +B) <= 1 ^1 {B: Q(B, Z)}", 1, 30, "Z in the filter of B"),
    ("1: A(X) -> B(X, +Y)", 1, 17, "summation variables (`+X`) belong in arithmetic rules"),
    ("1: P(A, +A2) + Q(A2) <= 1", 1, 18, "summation variable (+A2) and an ordinary variable"),
    ("1: !(A(X) & B(X)) -> C(X)", 1, 4, "negation applies to a single atom"),
    ("1: A(X) | (X != Y)", 1, 11, "would be a disjunct"),
    ("1: P(A) <= @Mean[1, 2]", 1, 13, "unknown coefficient function @Mean"),
])
def test_rejected_constructs_point_at_the_problem(text, line, col, words):
    with pytest.raises(RuleError) as info:
        parse_rules(text, "rules.psl")
    msg = str(info.value)
    assert msg.startswith(f"rules.psl:{line}:{col}: "), msg
    assert words in msg, msg
    caret = msg.splitlines()[-1]
    assert caret.index("^") - 4 + 1 == col and text.splitlines()[line - 1] in msg


def test_open_predicate_in_a_filter_is_rejected_at_grounding():
    s = store_of(obs={"Nice": [("b",)]}, targets={"Friends": [("a", "b")], "Open": [("b",)]})
    with pytest.raises(RuleError) as info:
        ground(parse_rules("\nFriends(A, +B) <= 1 . {B: Nice(B) & Open(B)}", "r.psl"), s)
    msg = str(info.value)
    assert msg.startswith("r.psl:2:37: Open predicate (Open) not allowed in filter") and "closed" in msg


def test_disjunction_with_a_variable_some_literal_lacks_is_rejected():
    s = store_of(targets={"P": [("a",)], "Q": [("a", "b")]})
    with pytest.raises(RuleError, match=r"t.psl:1:4: variable Y does not appear in P\(X\)"):
        ground(parse_rules("1: P(X) | Q(X, Y)", "t.psl"), s)


def test_empty_sums_and_undefined_averages_are_skipped_not_errors():
    s = store_of(obs={"Nice": [("z",)]}, targets={"F": [("a", "b")], "Avg": [("a",)]})
    m = ground(parse_rules("F(A, +B) = 1 . {B: Nice(B)}\n1: F(A, +B) / |B| = Avg(A) ^1 {B: Nice(B)}"), s)
    assert m.m == 0

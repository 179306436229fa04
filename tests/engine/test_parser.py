"""The rule parser: PSL's syntax, and errors that point at file, line and column with a caret."""
import pytest

from hlmrf import RuleError, RuleSyntaxError, parse_rules
from hlmrf.language.ast import ArithmeticRule, Constant, LogicalRule, Variable


def test_weighted_logical_rule_forms():
    p = parse_rules("20: Lived(P1, L) & Lived(P2, L) & (P1 != P2) -> Knows(P1, P2) ^2\n"
                    "1.5: Knows(A, B) && Knows(B, C) >> Knows(A, C)\n"
                    "3: Knows(A, C) << Knows(A, B) & Knows(B, C) ^1\n"
                    "2: Friends(A, B) -> !Enemies(A, B)\n"
                    "0.5: ~Smokes(X) ^2\n"
                    "1: A(X) || B(X) <- C(X)\n")
    r0, r1, r2, r3, r4, r5 = p.rules
    assert r0.weight == 20 and r0.squared and [l.atom.predicate for l in r0.body] == ["Lived", "Lived"]
    assert r0.comparisons[0].op == "!=" and r0.head[0].atom.args == (Variable("P1"), Variable("P2"))
    assert not r1.squared and r1.head[0].atom.predicate == "Knows"
    # `<-` and `<<` put the head on the left.
    assert [l.atom.predicate for l in r2.body] == ["Knows", "Knows"] and r2.head[0].atom.args[1] == Variable("C")
    assert r3.head[0].negated
    assert r4.body == () and r4.head[0].negated and r4.squared
    assert len(r5.head) == 2 and r5.body[0].atom.predicate == "C"


def test_clause_form_negates_the_body():
    rule = parse_rules("1: A(X) & !B(X) -> C(X) | !D(X)").rules[0]
    assert [(l.atom.predicate, l.negated) for l in rule.clause()] == [
        ("A", True), ("B", False), ("C", False), ("D", True)]


def test_hard_rules_arithmetic_constants_comments():
    p = parse_rules("""
        // line comment
        # hash comment
        /* block
           comment */
        Knows(P1, P2) = Knows(P2, P1) .
        1.0: Friends(A, B) = 0.75 ^2
        2: 0.5 * A(X) + B(X) >= 1 - C(X)
        Likes(X, 'jazz') & (X == 'bob') -> Fan(X) .
        1: Sim(A, B) & (A % B) -> Same(A, B)
        1: Sim(A, B) & (A - B) -> Same(A, B)
    """, "r.psl")
    hard, soft_eq, geq, const_rule, nonsym, minus = p.rules
    assert isinstance(hard, ArithmeticRule) and hard.hard and hard.op == "="
    assert [c for c, _ in hard.lhs.terms] == [1.0, -1.0] and hard.lhs.constant == 0
    assert soft_eq.weight == 1.0 and soft_eq.squared and soft_eq.lhs.constant == -0.75
    # everything moves to the left: 0.5 A + B + C - 1 >= 0
    assert geq.op == ">=" and [c for c, _ in geq.lhs.terms] == [0.5, 1.0, 1.0] and geq.lhs.constant == -1
    assert isinstance(const_rule, LogicalRule) and const_rule.hard
    assert const_rule.body[0].atom.args[1] == Constant("jazz") and const_rule.comparisons[0].op == "=="
    assert nonsym.comparisons[0].op == "%" and minus.comparisons[0].op == "!="


def test_printing_round_trips():
    text = ("20: Lived(P1, L) & Lived(P2, L) & (P1 != P2) -> Knows(P1, P2) ^2\n"
            "Knows(P1, P2) = Knows(P2, P1) .\n5: !Knows(P1, P2) ^2\n"
            "1.0: 0.5 * Friends(A, 'b') + Friends(B, A) <= 0.75 ^1\n")
    p = parse_rules(text)
    assert parse_rules(str(p)) == p


@pytest.mark.parametrize("text, line, col, words", [
    ("1: A(X) -> B(X) ^3", 1, 18, "exponent must be 1 or 2"),
    ("A(X) -> B(X)", 1, 13, "expected `.`"),
    ("1: A(X) -> B(X) .", 1, 17, "weighted rule cannot end with `.`"),
    ("\n\n  1: A(X) -> B(x", 3, 17, "expected `,` or `)`"),
    ("1: A('x) -> B(X)", 1, 6, "unterminated string"),
    ("1: A(X) -> B(1)", 1, 14, "constants must be quoted"),
    ("1: A(X) $ B(X)", 1, 9, "unexpected character"),
    ("A(X) -> B(X) ^2 .", 1, 14, "hard constraint (no weight) takes no exponent"),
])
def test_syntax_errors_name_line_column_and_show_a_caret(text, line, col, words):
    with pytest.raises(RuleSyntaxError) as info:
        parse_rules(text, "rules.psl")
    msg = str(info.value)
    assert msg.startswith(f"rules.psl:{line}:{col}: "), msg
    assert words in msg
    src_line = text.splitlines()[line - 1]
    assert src_line in msg and "^" in msg.splitlines()[-1]
    caret_col = msg.splitlines()[-1].index("^") - 4 + 1
    assert caret_col == col
    assert isinstance(info.value, ValueError) and isinstance(info.value, RuleError)

"""Logical rules in full: disjunctive and negated heads, `<-`, arrowless disjunctions,
parentheses, bodies of observed atoms with several targets in the head."""
import pytest

from hlmrf import parse_rules
from hlmrf.model.terms import Kind

from hlmrf.testing.lang_helpers import close, exact, ground_text, rows, store_of


def test_disjunctive_head_with_an_observed_body():
    s = store_of(obs={"Lived": [("a", "x"), ("b", "x")]},
                 targets={"Knows": [("a", "b"), ("b", "a")]})
    m = ground_text("1: Lived(A, L) & Lived(B, L) & (A != B) -> Knows(A, B) | Knows(B, A) ^1", s)
    # max(0, 1 - K(a,b) - K(b,a)) for each ordered pair
    assert sorted((sorted(r[0].items()), r[1]) for r in rows(m)) == [
        ([("Knows(a, b)", -1.0), ("Knows(b, a)", -1.0)], -1.0)] * 2


def test_negated_head_arrow_directions_and_parentheses_agree():
    s = store_of(obs={"Sim": [("a", "b", 0.7)]}, targets={"Same": [("a", "b")]})
    forms = ["2: Sim(A, B) -> !Same(A, B) ^2", "2: !Same(A, B) <- Sim(A, B) ^2",
             "2: (Sim(A, B)) >> (!Same(A, B)) ^2", "2: !Same(A, B) << (Sim(A, B)) ^2",
             "2: !Sim(A, B) | !Same(A, B) ^2"]
    got = [rows(ground_text(f, s)) for f in forms]
    assert all(g == got[0] for g in got)
    assert got[0] == [({"Same(a, b)": 1.0}, pytest.approx(0.3), Kind.HINGE, 2.0)]
    assert parse_rules(forms[0]).rules[0] == parse_rules(forms[1]).rules[0]


def test_arrowless_positive_disjunction_grounds_over_the_targets():
    s = store_of(obs={"Q": [("b", 0.4)]}, targets={"P": [("a",), ("b",)], "Q": [("a",)]})
    m = ground_text("1: P(X) | Q(X) ^1", s)
    got = sorted((sorted(r[0].items()), round(r[1], 6)) for r in rows(m))
    assert got == [([("P(a)", -1.0), ("Q(a)", -1.0)], -1.0), ([("P(b)", -1.0)], -0.6)]
    # min max(0, 1 - P - Q) + 2 P + 2 Q... with a prior: the disjunction is paid once, by 1 atom.
    m = ground_text("3: P(X) | Q(X) ^1\n1: !P(X) ^1\n2: !Q(X) ^1", s)
    assert close(exact(m), {"P(a)": 1.0, "Q(a)": 0.0, "P(b)": 0.6}, 1e-5)


def test_nested_parentheses_flatten_to_the_same_rule():
    a = parse_rules("1: (A(X) & (B(X) & C(X))) -> (D(X) | (E(X)))").rules[0]
    b = parse_rules("1: A(X) & B(X) & C(X) -> D(X) | E(X)").rules[0]
    assert a == b


def test_bare_term_comparisons_parse_like_parenthesised_ones():
    a = parse_rules("1: L(A, B) & A != B & A % B -> K(A, B)").rules[0]
    b = parse_rules("1: L(A, B) & (A != B) & (A % B) -> K(A, B)").rules[0]
    assert a == b and [c.op for c in a.comparisons] == ["!=", "%"]


def test_ground_rule_printer_fills_in_constants(tmp_path):
    from hlmrf.model.printer import ground_rule_text

    s = store_of(obs={"Lived": [("a", "x"), ("b", "x")]}, targets={"Knows": [("a", "b"), ("b", "a")]})
    text = "20: Lived(P1, L) & Lived(P2, L) & (P1 != P2) -> Knows(P1, P2) ^2\nKnows(A, +B) <= 0.5 ."
    prog = parse_rules(text)
    from hlmrf.grounding.ground import ground

    m = ground(prog, s, keep_substitutions=True)
    lines = sorted(ground_rule_text(m, i, prog) for i in range(m.m))
    assert "20.0: LIVED('a', 'x') & LIVED('b', 'x') & ('a' != 'b') -> KNOWS('a', 'b') ^2" in lines
    assert "KNOWS('a', +B) <= 0.5 ." in lines
    with pytest.raises(ValueError, match="keep_substitutions=True"):
        ground_rule_text(ground(prog, s), 0, prog)

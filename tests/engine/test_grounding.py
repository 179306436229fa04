"""Grounding semantics, each checked against potentials derived by hand."""
import numpy as np
import pytest

import hlmrf
from hlmrf import FactStore, GroundingError, RuleError, ground, parse_rules
from hlmrf.model.terms import Kind


def rows(model):
    """Each potential as ({atom: coef}, c, kind, p), for comparison with hand derivations."""
    out = []
    for i in range(model.m):
        coefs = model.row_atoms(i)
        out.append((coefs, round(float(model.c[i]), 9), int(model.kind[i]), int(model.p[i])))
    return out


def test_clause_to_hinge_with_observed_folding():
    # 2: A(X) & B(X) -> C(X) with A observed 0.7, B a target, C a target:
    # distance = max(0, A + B - C - 1) = max(0, B - C - 0.3)
    s = FactStore()
    s.add_observations("A", [("x", 0.7)], arity=1)
    s.add_targets("B", [("x",)])
    s.add_targets("C", [("x",)])
    m = ground(parse_rules("2: A(X) & B(X) -> C(X) ^2"), s)
    assert rows(m) == [({"B(x)": 1.0, "C(x)": -1.0}, 0.3, Kind.HINGE, 2)]
    assert m.w.tolist() == [2.0]


def test_single_literal_rules_are_linear_and_hard_rules_constraints():
    s = FactStore()
    s.add_targets("K", [("a", "b"), ("b", "a")])
    m = ground(parse_rules("5: !K(A, B)\n3: K(A, B) ^2\nK(A, B) = K(B, A) .\nK(A, B) -> K(B, A) ."), s)
    r = rows(m)
    assert r[:2] == [({"K(a, b)": 1.0}, 0.0, Kind.LINEAR, 1), ({"K(b, a)": 1.0}, 0.0, Kind.LINEAR, 1)]
    assert r[2:4] == [({"K(a, b)": -1.0}, -1.0, Kind.LINEAR, 2), ({"K(b, a)": -1.0}, -1.0, Kind.LINEAR, 2)]
    assert r[4:6] == [({"K(a, b)": 1.0, "K(b, a)": -1.0}, 0.0, Kind.EQ, 1),
                      ({"K(a, b)": -1.0, "K(b, a)": 1.0}, 0.0, Kind.EQ, 1)]
    assert r[6:] == [({"K(a, b)": 1.0, "K(b, a)": -1.0}, 0.0, Kind.LEQ, 1),
                     ({"K(a, b)": -1.0, "K(b, a)": 1.0}, 0.0, Kind.LEQ, 1)]


def test_trivial_and_fully_observed_groundings_are_dropped():
    s = FactStore()
    s.add_observations("Lived", [("a", "p"), ("b", "p"), ("c", "p")])
    s.add_observations("Knows", [("a", "b", 1.0), ("b", "a", 0.0)])  # head true / head observed
    s.add_targets("Knows", [("a", "c"), ("c", "a"), ("b", "c"), ("c", "b")])
    m = ground(parse_rules("1: Lived(P1, L) & Lived(P2, L) & (P1 != P2) -> Knows(P1, P2)"), s)
    # 6 ordered pairs; (a,b) has the head observed true and (b,a) is fully observed.
    assert sorted((c for c, *_ in rows(m)), key=str) == sorted(
        [{"Knows(a, c)": -1.0}, {"Knows(c, a)": -1.0}, {"Knows(b, c)": -1.0}, {"Knows(c, b)": -1.0}],
        key=str)
    # x | !x: the coefficients cancel and the grounding is dropped.
    s2 = FactStore()
    s2.add_targets("P", [("a",)])
    assert ground(parse_rules("1: P(X) -> P(X)"), s2).m == 0


def test_body_atom_observed_zero_is_trivially_satisfied():
    s = FactStore()
    s.add_observations("A", [("x", 0.0), ("y", 0.4)], arity=1)
    s.add_targets("B", [("x",), ("y",)])
    m = ground(parse_rules("1: A(X) -> B(X)"), s)
    assert rows(m) == [({"B(y)": -1.0}, -0.4, Kind.HINGE, 1)]


def test_closed_world_head_atoms_fold_to_zero():
    s = FactStore()
    s.add_targets("A", [("x",), ("y",)])
    s.add_observations("B", [("x", 0.25)], arity=1)
    m = ground(parse_rules("1: A(X) -> B(X)"), s)
    # A(x) -> B(x): max(0, A - 0.25); A(y) -> B(y) with B(y) unlisted (closed, 0): max(0, A)
    assert rows(m) == [({"A(x)": 1.0}, 0.25, Kind.HINGE, 1), ({"A(y)": 1.0}, 0.0, Kind.HINGE, 1)]


def test_comparisons_and_constants():
    s = FactStore()
    s.add_targets("S", [("a", "b"), ("b", "a"), ("a", "a"), ("b", "c")])
    s.add_observations("E", [("a", "b"), ("b", "a"), ("a", "a"), ("b", "c")])
    prog = parse_rules("1: E(A, B) & (A % B) -> S(A, B)\n1: E(A, B) & (A == B) -> S(A, B)\n"
                       "1: E(A, 'c') -> S(A, 'c')\n1: E(A, B) & (A != 'a') -> S(A, B)")
    m = ground(prog, s)
    counts = m.potentials_per_rule().tolist()
    assert counts == [2, 1, 1, 2]  # % keeps (a,b) and (b,c) of the distinct pairs; == keeps (a,a)
    names = [next(iter(c)) for c, *_ in rows(m)]
    assert names[:2] == ["S(a, b)", "S(b, c)"] and names[2] == "S(a, a)" and names[3] == "S(b, c)"
    assert sorted(names[4:]) == ["S(b, a)", "S(b, c)"]


def test_open_atom_not_declared_is_an_error_listing_atoms():
    s = FactStore()
    s.add_observations("Friends", [("a", "b"), ("b", "c")])
    s.add_targets("Smokes", [("a",)])
    with pytest.raises(GroundingError) as info:
        ground(parse_rules("1: Friends(A, B) & Smokes(A) -> Smokes(B)", "r.psl"), s)
    msg = str(info.value)
    assert "Smokes('b')" in msg and "smokes_targets.txt" in msg and "r.psl:1:33" in msg


def test_rule_errors_unknown_predicate_arity_unbound_variable():
    s = FactStore()
    s.add_targets("Knows", [("a", "b")])
    with pytest.raises(RuleError, match=r"r.psl:1:4: unknown predicate Know\b"):
        ground(parse_rules("1: Know(A, B) -> Knows(A, B)", "r.psl"), s)
    with pytest.raises(RuleError, match=r"r.psl:1:4: Knows takes 2 arguments in the data, but 3"):
        ground(parse_rules("1: Knows(A, B, C) -> Knows(A, B)", "r.psl"), s)
    with pytest.raises(RuleError, match="Any variable used in a negated") as info:
        ground(parse_rules("1: Knows(A, B) -> Knows(A, C)", "r.psl"), s)
    assert str(info.value).startswith("r.psl:1:19:")


def test_data_violating_a_hard_rule_is_reported():
    s = FactStore()
    s.add_observations("K", [("a", "b", 1.0), ("b", "a", 0.0)])
    s.add_targets("T", [("a",)])
    with pytest.raises(GroundingError, match="violated by observed atoms alone"):
        ground(parse_rules("K(A, B) = K(B, A) .\n1: T(X) -> T(X)"), s)


def test_join_plan_is_a_value_that_translates_to_sql():
    from hlmrf.grounding.plan import plan_rule

    rule = parse_rules("1: Lived(P1, L) & Lived(P2, L) & (P1 != P2) -> Knows(P1, P2)").rules[0]
    plan = plan_rule(0, rule, {("LIVED", "support"): 10})
    sql = plan.to_sql()
    assert "FROM lived_support AS t0" in sql and "t1.a1 = t0.a1" in sql and "t0.a0 <> t1.a0" in sql
    assert [l.predicate for l in plan.lookups] == ["KNOWS"]

"""Arithmetic rules in full, on hand-derived models: summations, |X|, coefficient expressions,
filters, constants and atoms on both sides; the constraint idioms users rely on."""
import numpy as np
import pytest

from hlmrf import parse_rules
from hlmrf.api import infer
from hlmrf.model.terms import Kind

from hlmrf.testing.lang_helpers import admm, close, exact, ground_text, rows, store_of


def test_functional_constraint_sums_over_each_grounding_and_solves_by_hand():
    # HasCat(A, +C) = 1: one equality per A over the categories present for it.
    s = store_of(obs={"Seed": [("a", "c1")], "HasCat": [("b", "c1", 1.0)]},
                 targets={"HasCat": [("a", "c1"), ("a", "c2"), ("a", "c3"), ("b", "c2")]})
    m = ground_text("HasCat(A, +C) = 1 .\n3: Seed(A, C) -> HasCat(A, C) ^2\n"
                    "1: !HasCat(A, C) ^2", s)
    eqs = [r for r in rows(m) if r[2] == Kind.EQ]
    assert sorted((sorted(r[0].items()), r[1]) for r in eqs) == [
        ([("HasCat(a, c1)", 1.0), ("HasCat(a, c2)", 1.0), ("HasCat(a, c3)", 1.0)], 1.0),
        ([("HasCat(b, c2)", 1.0)], 0.0)]  # HasCat(b, c1) = 1 is observed and folds into c
    # min 3(1-y1)^2 + y1^2 + y2^2 + y3^2 s.t. y1+y2+y3 = 1: y2 = y3 = 1/9, y1 = 7/9.
    want = {"HasCat(a, c1)": 7 / 9, "HasCat(a, c2)": 1 / 9, "HasCat(a, c3)": 1 / 9, "HasCat(b, c2)": 0.0}
    assert close(exact(m), want, 1e-5) and close(admm(m), want, 1e-3)


def test_inverse_functional_and_partial_functional():
    s = store_of(targets={"HasCat": [("a", "c"), ("b", "c"), ("b", "d")]})
    inv = rows(ground_text("HasCat(+A, C) = 1 .", s))
    assert sorted(sorted(r[0]) for r in inv) == [["HasCat(a, c)", "HasCat(b, c)"], ["HasCat(b, d)"]]
    part = rows(ground_text("HasCat(A, +C) <= 1 .", s))
    # HasCat(a, c) <= 1 alone can never be violated: dropped, as the reference does.
    assert [(sorted(r[0]), r[1], r[2]) for r in part] == [(["HasCat(b, c)", "HasCat(b, d)"], 1.0, Kind.LEQ)]


def test_mutual_exclusion_and_atoms_on_both_sides():
    s = store_of(targets={"Friend": [("a", "b")], "Enemy": [("a", "b")]})
    (r,) = rows(ground_text("Friend(A, B) + Enemy(A, B) <= 1 .", s))
    assert r == ({"Friend(a, b)": 1.0, "Enemy(a, b)": 1.0}, 1.0, Kind.LEQ, 0.0)
    (r,) = rows(ground_text("Friend(A, B) <= 1 - Enemy(A, B) .", s))
    assert r == ({"Friend(a, b)": 1.0, "Enemy(a, b)": 1.0}, 1.0, Kind.LEQ, 0.0)


def test_parenthesised_sub_sums_and_coefficient_arithmetic():
    s = store_of(obs={"R": [("a", 0.25)]}, targets={"P": [("a",)], "Q": [("a",)]})
    # 2 (P + Q) - 1 >= R + 0.5 with R = 0.25  ->  -(2P + 2Q) + 1.75 <= 0
    (r,) = rows(ground_text("1: 2 * (P(A) + Q(A)) - 1 >= R(A) + 0.5 ^1", s))
    assert r[0] == {"P(a)": -2.0, "Q(a)": -2.0} and r[1] == pytest.approx(-1.75) and r[2] == Kind.HINGE
    (r,) = rows(ground_text("1: P(A) / 4 + (3 - 1) * 1.5 Q(A) - (Q(A) - P(A)) <= 0.5 ^1", s))
    assert r[0] == {"P(a)": 1.25, "Q(a)": 2.0} and r[1] == 0.5


def test_cardinality_average_closed_predicate_counts_every_constant_unless_filtered():
    # Rating is closed: as in the reference, the summation ranges over every item the predicate
    # mentions (absent ratings are 0), so |I| is 3 for u; the filter keeps u's rated items only.
    s = store_of(obs={"Rating": [("u", "i1", 0.2), ("u", "i2", 0.6), ("v", "i3", 1.0)],
                      "Rated": [("u", "i1"), ("u", "i2"), ("v", "i3")]},
                 targets={"Avg": [("u",), ("v",)]})
    m = ground_text("1: Rating(U, +I) / |I| = Avg(U) ^2", s)
    assert exact(m)["Avg(u)"] == pytest.approx(0.8 / 3, abs=1e-5)
    m = ground_text("1: Rating(U, +I) / |I| = Avg(U) ^2 {I: Rated(U, I)}", s)
    got = exact(m)
    assert got["Avg(u)"] == pytest.approx(0.4, abs=1e-5) and got["Avg(v)"] == pytest.approx(1.0, abs=1e-5)


def test_filter_clause_with_negation_and_comparison_restricts_the_sum():
    s = store_of(obs={"Nice": [("b",), ("c",), ("d",)], "Similar": [("a", "c")]},
                 targets={"Friends": [("a", "a"), ("a", "b"), ("a", "c"), ("a", "d"), ("a", "e")]})
    (r,) = rows(ground_text("Friends(A, +B) <= 1 . {B: Nice(B) & !Similar(A, B) & (A != B)}", s))
    assert sorted(r[0]) == ["Friends(a, b)", "Friends(a, d)"]
    (r,) = rows(ground_text("Friends(A, +B) <= 1 . {B: Similar(A, B) | B == 'e'}", s))
    assert sorted(r[0]) == ["Friends(a, c)", "Friends(a, e)"]


def test_min_max_and_cardinality_coefficients():
    s = store_of(targets={"K": [("a", "x"), ("a", "y"), ("a", "z"), ("b", "x")]})
    got = {tuple(sorted(r[0])): r for r in rows(ground_text("1: K(A, +B) <= @Max[1, |B| / 2] ^1", s))}
    assert got[("K(a, x)", "K(a, y)", "K(a, z)")][1] == 1.5
    assert ("K(b, x)",) not in got  # K(b, x) <= 1 is never violated
    got = rows(ground_text("1: @Min[|B|, 2] * K(A, +B) >= 1 ^1", s))
    assert sorted((sorted(r[0].values()), r[1]) for r in got) == [
        ([-2.0, -2.0, -2.0], -1.0), ([-1.0], -1.0)]


def test_weighted_equality_grounds_two_hinges_and_summation_of_only_sum_atoms():
    s = store_of(targets={"P": [("a",), ("b",)]})
    m = ground_text("2: P(+X) = 1 ^2", s)
    assert m.m == 2 and sorted(m.c.tolist()) == [-1.0, 1.0] and set(m.kind.tolist()) == {Kind.HINGE}
    assert close(exact(m), {"P(a)": 0.5, "P(b)": 0.5}, 1e-5)


def test_priors_in_both_spellings_give_the_same_map_state(examples):
    from hlmrf.api import load_facts, load_rules

    rules = load_rules(examples / "simple-acquaintances" / "rules.psl")
    store = load_facts(examples / "simple-acquaintances" / "facts", rules)
    other = parse_rules(str(rules).replace("5: !Knows(P1, P2) ^2", "5: Knows(P1, P2) = 0 ^2"))
    assert other != rules
    a, b = infer(rules, store, solver="cvxpy"), infer(other, store, solver="cvxpy")
    # Knows = 0 grounds `Knows <= 0` (kept) and `Knows >= 0` (never violated, dropped).
    assert a.model.m == b.model.m == 4532
    assert np.max(np.abs(a.y - b.y)) < 1e-4

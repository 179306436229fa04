"""Grounding at its edges (issue 12): constants absent from the data, groundings too large to
build, observations that break a hard rule. Expected potentials are derived by hand."""
import sys

import numpy as np
import pytest

import hlmrf
from hlmrf import FactStore, GroundingError, ground, parse_rules
from hlmrf.grounding.ground import DEFAULT_MAX_GROUND_RULES, RuleEstimate, estimate_grounding
from hlmrf.model.terms import Kind


def rows(model):
    """Each potential as ({atom: coef}, c, kind), sorted, for comparison with hand derivations."""
    out = []
    for i in range(model.m):
        coefs = model.row_atoms(i)
        out.append((coefs, round(float(model.c[i]), 9), int(model.kind[i])))
    return sorted(out, key=str)


def _smokers():
    s = FactStore()
    s.add_targets("Friends", [("x", "y")])
    s.add_observations("Smokes", [("y",)])
    return s


# --- constants absent from the data ---------------------------------------------------------

def test_absent_constant_in_an_open_head_atom_is_an_error_naming_the_atom():
    # Before: 'zzz' was coded -1 and (y, -1) packed into the key of (x, y), so the rule grounded
    # as max(0, 1 - Friends(x, y))^2 and pushed Friends(x, y) to 1.
    with pytest.raises(GroundingError) as info:
        ground(parse_rules("1: Smokes(A) -> Friends(A, 'zzz') ^2", "r.psl"), _smokers())
    msg = str(info.value)
    assert "Friends('y', 'zzz')" in msg and "?" not in msg
    assert "not explicitly specified in the targets" in msg and "r.psl:1:17" in msg
    assert "'zzz' appears in no fact" in msg


def test_absent_constant_in_a_closed_atom_is_zero_not_another_atom():
    s = FactStore()
    s.add_targets("Smokes", [("x",), ("y",)])
    s.add_observations("Knows", [("x", "y", 1.0)])
    # Smokes(A) -> Knows(A, 'zzz'): Knows(., 'zzz') is unlisted, so 0: max(0, Smokes(A)).
    # Before, Knows(y, 'zzz') aliased Knows(x, y) = 1 and the grounding for y was dropped.
    m = ground(parse_rules("1: Smokes(A) -> Knows(A, 'zzz')"), s)
    assert rows(m) == [({"Smokes(x)": 1.0}, 0.0, Kind.HINGE), ({"Smokes(y)": 1.0}, 0.0, Kind.HINGE)]


def test_absent_constants_in_comparisons_are_distinct_constants():
    s = FactStore()
    s.add_observations("P", [("a",), ("z",)])
    s.add_targets("T", [("a",), ("z",)])
    prog = parse_rules("1: P(A) & (A != 'zzz') -> T(A)\n"
                       "1: P(A) & ('p' == 'q') -> T(A)\n"   # two absent constants are not equal
                       "1: P(A) & (A % 'm') -> T(A)\n"      # 'a' < 'm' < 'z'
                       "1: P(A) & ('m' % A) -> T(A)")
    m = ground(prog, s)
    assert m.potentials_per_rule().tolist() == [2, 0, 1, 1]
    first_atom = [m.index.atom_name(int(m.A.indices[m.A.indptr[i]])) for i in range(m.m)]
    assert list(zip(m.rule.tolist(), first_atom)) == [(0, "T(a)"), (0, "T(z)"), (2, "T(a)"), (3, "T(z)")]


def test_absent_constant_in_a_body_atom_matches_nothing():
    s = _smokers()
    m = ground(parse_rules("1: Smokes(A) & Friends(A, 'zzz') -> Friends(A, A)"), s)
    assert m.m == 0


def test_absent_constant_in_a_filter_atom_is_false():
    s = FactStore()
    s.add_targets("T", [("x",), ("y",)])
    s.add_observations("N", [("x", "y")])
    # N(B, 'zzz') is unlisted for every B, so !N(B, 'zzz') keeps both: T(x) + T(y) <= 1.
    # Before, N(y, 'zzz') aliased N(x, y) = 1 and T(y) left the sum.
    m = ground(parse_rules("1: T(+B) <= 1 ^2 {B: !N(B, 'zzz')}"), s)
    assert rows(m) == [({"T(x)": 1.0, "T(y)": 1.0}, 1.0, Kind.HINGE)]


def test_absent_constant_in_an_arithmetic_rule_grounds_nothing_and_the_store_is_unchanged():
    s = _smokers()
    n_constants = len(s.constants)
    m = ground(parse_rules("1: Friends(A, B) + Friends(B, 'zzz') <= 1 ^2"), s)
    assert m.m == 0
    assert len(s.constants) == n_constants  # the extra code is grounding's, not the store's


def test_predicate_without_atoms_is_all_zero():
    # Before: an IndexError when a rule looked up an atom of a predicate that has no atoms.
    s = FactStore()
    s.declare("Empty", 1)
    s.add_observations("P", [("a",)])
    s.add_targets("T", [("a",)])
    m = ground(parse_rules("1: P(X) & T(X) -> Empty(X)\n1: T(+B) <= 1 {B: Empty(B)}"), s)
    assert rows(m) == [({"T(a)": 1.0}, 0.0, Kind.HINGE)]


# --- a grounding that will not fit ------------------------------------------------------------

def _cube(n):
    s = FactStore()
    s.add_observations("A", [(f"k{i}",) for i in range(n)])
    s.add_targets("T", [("c",)])
    return s, parse_rules("1: A(X) & A(Y) & A(Z) -> T('c') ^2", "rules.psl")


def test_issue_cube_is_refused_before_grounding_with_rule_estimate_and_fix():
    s, prog = _cube(470)
    (e,) = estimate_grounding(prog, s)
    assert (e.ground_rules, e.exact, e.location) == (470 ** 3, True, "rules.psl:1")
    with pytest.raises(GroundingError) as info:
        ground(prog, s)  # before: 16 s, 4.9 GB, then a numpy MemoryError
    msg = str(info.value)
    assert "rules.psl:1" in msg and "103,823,000" in msg and "50,000,000" in msg
    assert "--max-ground-rules" in msg and "Restrict the rule's body" in msg
    assert DEFAULT_MAX_GROUND_RULES == 50_000_000


def test_limit_is_a_parameter_and_none_means_unlimited():
    s, prog = _cube(12)
    seen = []
    with pytest.raises(GroundingError, match="1,728 ground rules, more than max_ground_rules = 1,000"):
        ground(prog, s, max_ground_rules=1000, on_estimate=seen.append)
    assert seen == [RuleEstimate(0, "rules.psl:1", "1: A(X) & A(Y) & A(Z) -> T('c') ^2", 1728, True)]
    assert ground(prog, s, max_ground_rules=None).m == 1728
    assert ground(prog, s, max_ground_rules=1728).m == 1728


def test_limit_applies_to_the_total_and_lists_the_largest_rules():
    s, _ = _cube(20)
    prog = parse_rules("1: A(X) & A(Y) -> T('c')\n1: A(X) & A(Y) & (X != Y) -> T('c')\n"
                       "1: A(X) -> T('c')", "r.psl")
    est = estimate_grounding(prog, s)
    assert [e.ground_rules for e in est] == [400, 380, 20]
    with pytest.raises(GroundingError) as info:
        ground(prog, s, max_ground_rules=500)
    msg = str(info.value)
    assert "800 ground rules, more than max_ground_rules = 500" in msg
    assert msg.index("rule 1 (r.psl:1)") < msg.index("rule 2 (r.psl:2)") < msg.index("rule 3 (r.psl:3)")


def test_astronomic_counts_saturate_instead_of_overflowing():
    s, _ = _cube(1000)
    body = " & ".join(f"A(X{i})" for i in range(40))
    prog = parse_rules(f"1: {body} -> T('c')", "r.psl")
    (e,) = estimate_grounding(prog, s)
    assert (e.ground_rules, e.exact) == (10 ** 18, False)
    with pytest.raises(GroundingError, match="up to 1,000,000,000,000,000,000 ground rules"):
        ground(prog, s)


def test_estimates_of_equi_join_chains_are_exact():
    rng = np.random.default_rng(0)
    edges = {(f"n{a}", f"n{b}") for a, b in rng.integers(0, 40, size=(300, 2))}
    s = FactStore()
    s.add_observations("E", sorted(edges))
    s.add_targets("T", [(f"n{i}",) for i in range(40)])
    prog = parse_rules("1: E(A, B) & E(B, C) & E(C, D) -> T(A)\n"
                       "1: E(A, B) & E(B, C) & E(C, A) -> T(A)\n"
                       "1: E(A, B) & E(C, D) & (A != C) -> T(A)")
    out = {}
    for a, b in edges:
        out.setdefault(a, []).append(b)
    paths = sum(len(out.get(c, [])) for a, b in edges for c in out.get(b, []))
    triangles = sum(1 for a, b in edges for c in out.get(b, []) if (c, a) in edges)
    pairs = sum(1 for a, b in edges for c, d in edges if a != c)
    est = estimate_grounding(prog, s)
    assert [(e.ground_rules, e.exact) for e in est] == [(paths, True), (triangles, True), (pairs, True)]


def test_memory_error_while_grounding_names_the_rule(monkeypatch):
    ground_module = sys.modules["hlmrf.grounding.ground"]

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(ground_module, "execute", no_memory)
    s, prog = _cube(3)
    with pytest.raises(GroundingError, match=r"ran out of memory grounding rule 1 \(rules.psl:1\)"):
        ground(prog, s)


def test_infer_takes_the_limit(tmp_path, capsys):
    s, prog = _cube(12)
    with pytest.raises(GroundingError, match="max_ground_rules = 100"):
        hlmrf.infer(prog, s, max_ground_rules=100)
    seen = []
    run = hlmrf.infer(prog, s, max_ground_rules=None, on_estimate=seen.append)
    assert run.model.m == 1728 and seen[0].ground_rules == 1728


def test_cli_max_ground_rules_and_verbose_estimates(tmp_path, capsys):
    from hlmrf.cli.infer import main

    (tmp_path / "facts").mkdir()
    (tmp_path / "rules.psl").write_text("1: A(X) & A(Y) & A(Z) -> T('c') ^2\n")
    (tmp_path / "facts" / "a_obs.txt").write_text("".join(f"k{i}\n" for i in range(10)))
    (tmp_path / "facts" / "t_targets.txt").write_text("c\n")
    args = [str(tmp_path / "rules.psl"), str(tmp_path / "facts"), "-o", str(tmp_path / "out")]
    assert main(args + ["--max-ground-rules", "999"]) == 2
    err = capsys.readouterr().err
    assert "rules.psl:1" in err and "1,000 ground rules, more than max_ground_rules = 999" in err
    assert main(args + ["--max-ground-rules", "1000", "-v"]) == 0
    assert "estimate: rule 1 (" in capsys.readouterr().out
    assert main(args + ["--max-ground-rules", "none", "-q"]) == 0


# --- observations that break a hard rule -----------------------------------------------------

def test_hard_rule_violated_by_observations_names_ground_rule_atoms_and_values():
    s = FactStore()
    s.add_observations("Friends", [("a", "b", 1.0)])
    s.add_observations("Knows", [("b", "a", 1.0)])
    s.add_targets("T", [("a",)])
    with pytest.raises(GroundingError) as info:
        ground(parse_rules("1: T(X) -> T(X)\n\nFriends(A, B) -> Knows(A, B) .", "rules.psl"), s)
    msg = str(info.value)
    assert "(rules.psl:3) is violated by observed atoms alone in 1 grounding(s)" in msg
    assert "Friends('a', 'b') -> Knows('a', 'b') ." in msg
    assert "Friends('a', 'b') = 1.0, Knows('a', 'b') = 0.0 (unlisted: closed world)" in msg


def test_hard_arithmetic_rule_violated_by_observations_lists_values():
    s = FactStore()
    s.add_observations("K", [("a", "b", 1.0), ("b", "a", 0.25)])
    s.add_targets("T", [("a",)])
    with pytest.raises(GroundingError) as info:
        ground(parse_rules("K(A, B) = K(B, A) .\n1: T(X) -> T(X)", "r.psl"), s)
    msg = str(info.value)
    assert "in 2 grounding(s)" in msg
    assert "K('a', 'b') = 1.0, K('b', 'a') = 0.25" in msg


def test_infeasible_error_lists_atoms_with_values():
    s = FactStore()
    s.add_targets("T", [("a",)])
    with pytest.raises(hlmrf.InfeasibleError) as info:
        hlmrf.infer(parse_rules("T(X) >= 0.8 .\nT(X) <= 0.2 ."), s)
    assert "at T(a) = " in str(info.value)


def test_a_coefficient_that_overflows_at_grounding_is_an_error_not_a_dropped_grounding():
    # Found by the parser fuzz: |X| makes a finite rule overflow only when grounded. Skipping such
    # groundings (as for an undefined |X| = 0) would silently change the model.
    import warnings

    from hlmrf.data.store import FactStore
    from hlmrf.errors import GroundingError
    from hlmrf.grounding.ground import ground
    from hlmrf.language.parser import parse_rules

    store = FactStore()
    store.add_targets("A", [("a",), ("b",)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow warning either
        with pytest.raises(GroundingError, match=r"rules.psl:1\).*not a finite number.*\|X\| = 2.*Scale the rule"):
            ground(parse_rules("1: A(+X) * 1e308 * |X| <= 1\n", "rules.psl"), store)
        model = ground(parse_rules("1: A(+X) / |X| <= 1\n", "rules.psl"), store)
    assert model.m == 1 and list(model.A.toarray()[0]) == [0.5, 0.5]

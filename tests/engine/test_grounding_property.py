"""Grounding against a slow reference grounder on random small programs (hypothesis).

The reference (``hlmrf.testing.reference_grounder``) enumerates every substitution over the data's constants
in pure Python; hlmrf joins integer-coded relations with packed keys. They must agree row for row
(same potentials, as a multiset) or fail the same way (a RuleError for an unsafe rule, a
GroundingError naming the right atoms for an absent open atom or an observation that breaks a hard
rule). The generator draws logical rules of 1-3 body literals with negation, heads of 0-2
literals, comparisons, and arithmetic rules without summations, over open and closed predicates,
with constants both present in the data and absent from it (``'zz'``, ``'q'``). Summation atoms
and filters are not generated: their semantics are checked by hand-derived tests.

Also here: the join-size count that grounding uses to refuse huge rules equals the number of rows
the join produces whenever it says it is exact, and bounds it otherwise.
"""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, event, example, given, settings

from hlmrf import GroundingError, RuleError, ground, parse_rules  # noqa: E402
from hlmrf.grounding.ground import _Prepared  # noqa: E402
from hlmrf.grounding.relational import count_rows, execute  # noqa: E402
from hlmrf.testing.grounding_programs import ABSENT, programs
from hlmrf.testing.grounding_programs import store_of_data as _store
from hlmrf.testing.reference_grounder import (
    Data,
    ReferenceGroundingError,
    ReferenceRuleError,
    ground_reference,
    model_rows,
)

EXAMPLES = 400

settings.register_profile("grounding", max_examples=EXAMPLES, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _case(arity, text, observed=(), targets=()):
    """A hand-written case: ``observed`` holds ``(pred, args, value)``, ``targets`` ``(pred, args)``."""
    data = Data(dict(arity), {p: {} for p in arity}, {p: set() for p in arity})
    for pred, args, value in observed:
        data.observed[pred][args] = value
    for pred, args in targets:
        data.targets[pred].add(args)
    return data, text


_NAMED = re.compile(r"P\d\((?:'[^']*'(?:, )?)+\)")


@settings(settings.get_profile("grounding"))
@given(programs())
# Issue 12's case: 'zzz' is in no fact; its code -1 packed (y, -1) into the key of (x, y).
@example(_case({"P0": 1, "P1": 2}, "1: P0(A) -> P1(A, 'zzz') ^2",
               observed=[("P0", ("y",), 1.0)], targets=[("P1", ("x", "y"))]))
# Found by this test on the code before the fix: the same aliasing onto an observed atom.
@example(_case({"P0": 1, "P3": 2}, "0.5: P0('b') -> P3('b', 'c') ^1",
               observed=[("P0", ("a",), 0.0), ("P0", ("b",), 0.25), ("P3", ("a", "b"), 0.0)],
               targets=[("P3", ("b", "b"))]))
# Found by this test: a predicate without any atom (IndexError), and a comparison variable that
# no atom binds in a clause without negated literals (silently accepted).
@example(_case({"P0": 1, "P1": 1}, "0.5: P0(X) -> P1(X) ^1\n1: P0(X) -> P1('a')",
               observed=[("P0", ("b",), 0.25)]))
@example(_case({"P0": 1}, "!P0(X) & (X != Y) -> P0(X) .", targets=[("P0", ("a",))]))
# Two constants absent from the data are different constants; == and % see them as such.
@example(_case({"P0": 1, "P1": 1}, "1: P0(X) & ('zz' == 'q') -> P1(X)\n1: P0(X) & ('q' % 'zz') -> P1(X)",
               observed=[("P0", ("a",), 1.0)], targets=[("P1", ("a",))]))
def test_grounding_matches_the_reference_grounder(case):
    data, text = case
    program = parse_rules(text, "r.psl")
    try:
        expected = ground_reference(program, data)
    except ReferenceRuleError:
        event("unsafe rule: RuleError")
        with pytest.raises(RuleError):
            ground(program, _store(data))
        return
    except ReferenceGroundingError as exc:
        event(f"GroundingError ({exc.kind})")
        with pytest.raises(GroundingError) as info:
            ground(program, _store(data))
        msg = str(info.value)
        assert f"r.psl:{exc.rule + 1}" in msg, (text, msg)
        if exc.kind == "open":
            assert "not explicitly specified in the targets" in msg
            named = set(_NAMED.findall(msg.split("e.g.", 1)[1]))
            assert named and named <= exc.atoms, (text, msg, exc.atoms)
            assert "?" not in msg
        else:
            assert "violated by observed atoms" in msg and " = " in msg
        return
    model = ground(program, _store(data))
    event("grounded: " + ("no potentials" if not expected else "potentials"))
    if any(f"'{a}'" in text for a in ABSENT):
        event("grounded with a constant absent from the data")
    assert model_rows(model) == expected, text


@settings(settings.get_profile("grounding"))
@given(programs())
def test_join_count_is_exact_or_a_bound(case):
    data, text = case
    program = parse_rules(text, "r.psl")
    try:
        prep = _Prepared(program, _store(data))
    except RuleError:
        return
    c = prep.codes
    for plan in prep.plans:
        for part in getattr(plan, "parts", (plan,)):
            rows = len(execute(part, prep.relation, c.base, c.lookup, c.rank))
            for cap in (0, 3, 2_000_000):  # 0 and 3 force the bound path
                n, exact = count_rows(part, prep.relation, c.base, c.lookup, c.rank, cap=cap)
                assert (n == rows) if exact else (n >= rows), (text, cap, n, rows)

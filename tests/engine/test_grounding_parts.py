"""Grounding a large logical rule part by part gives exactly the model of grounding it whole.

``hlmrf.grounding.ground.GROUND_PART_ROWS`` bounds how many groundings of one rule are turned into
rows at a time (issue 14: grounding memory). Shrinking it to a few rows makes every rule of these
models run in many parts; the model (rows in the same order, same coefficients, constants,
weights, kinds, rules), the substitution index and the errors must not change.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from hlmrf import parse_rules
from hlmrf.errors import GroundingError
from hlmrf.grounding.relational import execute
from hlmrf.testing.lang_helpers import ground_text, store_of
from hlmrf.testing.psl_corpus import NAMES, corpus, corpus_store

G = importlib.import_module("hlmrf.grounding.ground")


def _same(a, b):
    assert a.A.shape == b.A.shape
    for x, y in ((a.A.indptr, b.A.indptr), (a.A.indices, b.A.indices), (a.A.data, b.A.data),
                 (a.c, b.c), (a.w, b.w), (a.p, b.p), (a.kind, b.kind), (a.rule, b.rule)):
        np.testing.assert_array_equal(x, y)


def _both(program, store, monkeypatch, part_rows, **kw):
    whole = G.ground(program, store, **kw)
    monkeypatch.setattr(G, "GROUND_PART_ROWS", part_rows)
    parted = G.ground(program, store, **kw)
    monkeypatch.undo()
    return whole, parted


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("part_rows", [1, 7])
def test_corpus_models_are_identical_in_parts(name, part_rows, monkeypatch):
    program = parse_rules("\n".join(corpus()[name]["rules"]), f"{name}.psl")
    store = corpus_store(name, seed=1)
    whole, parted = _both(program, store, monkeypatch, part_rows)
    assert whole.m > 0
    _same(whole, parted)
    assert parted.A.indices.dtype == np.int32 and parted.A.indptr.dtype == np.int32


def test_substitution_index_is_identical_in_parts(monkeypatch):
    name = NAMES[0]
    program = parse_rules("\n".join(corpus()[name]["rules"]), f"{name}.psl")
    store = corpus_store(name, seed=2)
    whole, parted = _both(program, store, monkeypatch, 3, keep_substitutions=True)
    _same(whole, parted)
    np.testing.assert_array_equal(whole.index.row_substitution, parted.index.row_substitution)
    for (vw, tw), (vp, tp) in zip(whole.index.substitutions, parted.index.substitutions):
        assert vw == vp
        np.testing.assert_array_equal(tw, tp)


def test_a_violated_hard_rule_is_reported_in_parts(monkeypatch):
    store = store_of(obs={"P": [("a", 1.0), ("b", 1.0), ("c", 0.0)], "Q": [("a", 0.0), ("b", 0.0), ("c", 0.0)]},
                     targets={"R": [("a",)]})
    text = "P(X) -> Q(X) .\n1: R(X) -> Q(X)"
    with pytest.raises(GroundingError, match="violated by observed atoms alone") as whole:
        ground_text(text, store)
    monkeypatch.setattr(G, "GROUND_PART_ROWS", 1)
    with pytest.raises(GroundingError, match="violated by observed atoms alone") as parted:
        ground_text(text, store)
    assert "P(X) -> Q(X)" in str(parted.value) and str(parted.value) == str(whole.value)


@pytest.mark.parametrize("backend", ["numpy", "duckdb"])
def test_a_hard_rule_broken_in_several_parts_is_counted_and_listed_once(monkeypatch, backend):
    """Violations spread over parts: one error with the rule's total count and its first three
    groundings by substitution, the same as grounding the rule whole (and as DuckDB's)."""
    if backend == "duckdb":
        pytest.importorskip("duckdb")
    names = [f"c{i:02d}" for i in range(12)]
    store = store_of(obs={"P": [(x, 1.0) for x in names], "Q": [(x, 0.0 if i % 3 else 1.0) for i, x in enumerate(names)]},
                     targets={"R": [("c00",)]})
    text = "P(X) -> Q(X) .\n1: R(X) -> Q(X)"
    with pytest.raises(GroundingError) as whole:
        ground_text(text, store)
    monkeypatch.setattr(G, "GROUND_PART_ROWS", 2)
    kw = {"backend": "duckdb"} if backend == "duckdb" else {}
    with pytest.raises(GroundingError) as parted:
        ground_text(text, store, **kw)
    assert str(parted.value) == str(whole.value)
    assert "in 8 grounding(s)" in str(whole.value) and "... and 5 more" in str(whole.value)
    assert str(whole.value).index("P('c01')") < str(whole.value).index("P('c02')") < str(whole.value).index("P('c04')")


def test_execute_parts_concatenate_to_the_whole():
    store = corpus_store(NAMES[1], seed=3)
    program = parse_rules("\n".join(corpus()[NAMES[1]]["rules"]), "x.psl")
    prep = G._Prepared(program, store)
    for plan in prep.plans:
        if isinstance(plan, G.UnionPlan):
            continue
        c = prep.codes
        whole = execute(plan, prep.relation, c.base, c.lookup, c.rank)
        for K in (2, 5, 50):
            parts = [execute(plan, prep.relation, c.base, c.lookup, c.rank, (k, K)) for k in range(K)]
            np.testing.assert_array_equal(np.concatenate(parts), whole)

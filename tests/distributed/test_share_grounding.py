"""``ground(..., share=(k, N))``: the N workers' shares are together exactly the whole model.

Compared as multisets of canonical rows (a share keeps its rows in another order than the whole
model: a logical rule's parts k, k + N, ... of the first scan), on every corpus model, on random
programs (hypothesis; logical and arithmetic rules, summations, unions), with the DuckDB executor,
and the bad shares' errors.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hlmrf import parse_rules
from hlmrf.errors import HlmrfError, RuleError, SettingsError
from hlmrf.grounding.ground import ground
from hlmrf.testing.grounding_programs import canonical_rows, programs, store_of_data
from hlmrf.testing.psl_corpus import NAMES, corpus, corpus_store


def assert_shares_make_the_whole(program, store, workers: int, **kw) -> int:
    whole = ground(program, store, **kw)
    parts = [ground(program, store, share=(k, workers), **kw) for k in range(workers)]
    for k, p in enumerate(parts):
        assert p.share == (k, workers) and p.n == whole.n
        assert p.index.predicates == whole.index.predicates
    assert sum(p.m for p in parts) == whole.m
    assert sorted(r for p in parts for r in canonical_rows(p)) == canonical_rows(whole)
    return whole.m


@pytest.mark.parametrize("name", NAMES)
def test_corpus_model_shares_make_the_whole_model(name):
    program = parse_rules("\n".join(corpus()[name]["rules"]), f"{name}.psl")
    store = corpus_store(name, seed=0)
    for workers in (2, 3):
        assert assert_shares_make_the_whole(program, store, workers) > 0


def test_large_rules_in_many_parts_are_shared_part_by_part(monkeypatch):
    # parts of 7 rows: every logical rule of the model is ground in many parts, dealt round-robin
    import importlib

    G = importlib.import_module("hlmrf.grounding.ground")
    monkeypatch.setattr(G, "GROUND_PART_ROWS", 7)
    program = parse_rules("\n".join(corpus()["friendship"]["rules"]), "friendship.psl")
    assert_shares_make_the_whole(program, corpus_store("friendship", seed=1), 3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(programs(sums=True), st.integers(2, 4))
def test_random_program_shares_make_the_whole_model(case, workers):
    data, text = case
    try:
        program = parse_rules(text, "r.psl")
    except RuleError:
        return
    store = store_of_data(data)
    try:
        ground(program, store)
    except HlmrfError:
        return  # a bad program: the whole model's error is the share's too (not compared here)
    assert_shares_make_the_whole(program, store, workers)


def test_duckdb_executor_shares_make_the_whole_model():
    pytest.importorskip("duckdb", reason="needs duckdb (pip install 'hlmrf[duckdb]')")
    from hlmrf.grounding.duckdb_backend import DuckDBOptions

    program = parse_rules("\n".join(corpus()["citeseer"]["rules"]), "citeseer.psl")
    assert_shares_make_the_whole(program, corpus_store("citeseer", seed=0), 2,
                                 backend="duckdb", duckdb=DuckDBOptions(threads=1))


@pytest.mark.parametrize("share, words", [((2, 2), "0..1"), ((-1, 2), "0..1"), ((0, 0), ">= 1"),
                                          ("ab", "pair")])
def test_bad_share_is_a_settings_error(share, words):
    program = parse_rules("\n".join(corpus()["friendship"]["rules"]), "friendship.psl")
    with pytest.raises(SettingsError, match=words):
        ground(program, corpus_store("friendship", seed=0), share=share)


def test_share_with_substitutions_is_refused():
    program = parse_rules("\n".join(corpus()["friendship"]["rules"]), "friendship.psl")
    with pytest.raises(SettingsError, match="whole model"):
        ground(program, corpus_store("friendship", seed=0), share=(0, 2), keep_substitutions=True)

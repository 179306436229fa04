"""The DuckDB grounding backend against the in-memory numpy executor (issue 15, item 2).

Both backends must ground the same potentials (compared as canonical sorted rows: DuckDB gives each
rule's rows in the sorted order of their substitutions) and fail the same way on the same bad
input: on every model of the corpus, on random programs (hypothesis; logical and arithmetic rules,
summations with filters, constants present in and absent from the data, ``!=``, ``==`` and ``%``),
in parts, with a database file, and with DuckDB's own limits.
"""
from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings

from hlmrf import parse_rules
from hlmrf.errors import GroundingError, MissingDependencyError, OutputError, RuleError, SettingsError
from hlmrf.grounding.duckdb_backend import DuckDBOptions
from hlmrf.testing.grounding_programs import canonical_rows, ground_outcome, programs, store_of_data
from hlmrf.testing.psl_corpus import NAMES, corpus, corpus_store

pytest.importorskip("duckdb", reason="the DuckDB backend needs duckdb (pip install 'hlmrf[duckdb]')")
G = importlib.import_module("hlmrf.grounding.ground")
ONE_THREAD = DuckDBOptions(threads=1)


def _assert_same(program, store, **kw):
    a = ground_outcome(program, store)
    b = ground_outcome(program, store, backend="duckdb", duckdb=ONE_THREAD, **kw)
    assert a[0] == b[0], (a, b)
    if a[0] == "model":
        assert a[1].n == b[1].n and a[1].index.predicates == b[1].index.predicates
        assert canonical_rows(a[1]) == canonical_rows(b[1])
        return a[1], b[1]
    assert a[1] == b[1]
    return None


@pytest.mark.parametrize("name", NAMES)
def test_corpus_models_are_the_same_potentials(name):
    program = parse_rules("\n".join(corpus()[name]["rules"]), f"{name}.psl")
    for seed in (0, 1):
        models = _assert_same(program, corpus_store(name, seed=seed))
        assert models is not None and models[0].m > 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(programs(sums=True))
def test_random_programs_ground_alike_or_fail_alike(case):
    data, text = case
    try:
        program = parse_rules(text, "r.psl")
    except RuleError:
        event("rejected by the parser")
        return
    out = _assert_same(program, store_of_data(data))
    event("grounded" if out is not None else "same error")
    if "+S" in text:
        event("with a summation")


def test_in_parts_and_unions(monkeypatch):
    """Parts of 3 rows (rowid ranges of the materialised result) and a union plan (a disjunction
    of positive literals), whose rows come in np.unique's order: identical row for row."""
    name = "simple-acquaintances"
    program = parse_rules("\n".join(corpus()[name]["rules"]) + "\n1: Knows(A, B) | Knows(B, A) ^2", "u.psl")
    store = corpus_store(name, seed=3)
    monkeypatch.setattr(G, "GROUND_PART_ROWS", 3)
    numpy_model, duck = _assert_same(program, store)
    last = int(numpy_model.rule.max())
    for m in (numpy_model, duck):
        assert (m.rule == last).any()
    a, b = (m.A[m.rule == last] for m in (numpy_model, duck))
    assert (a != b).nnz == 0


def test_a_database_file_is_created_and_reused(tmp_path):
    name = "smokers"
    program = parse_rules("\n".join(corpus()[name]["rules"]), "s.psl")
    store = corpus_store(name)
    db = tmp_path / "ground.duckdb"
    opts = DuckDBOptions(database=str(db), memory_limit="200MB", temp_directory=str(tmp_path / "spill"), threads=1)
    first = G.ground(program, store, backend="duckdb", duckdb=opts)
    assert db.exists()
    again = G.ground(program, store, backend="duckdb", duckdb=opts)  # its tables are replaced
    assert canonical_rows(first) == canonical_rows(again) == canonical_rows(G.ground(program, store))


def test_bad_options_are_clean_errors(tmp_path):
    program = parse_rules("\n".join(corpus()["smokers"]["rules"]), "s.psl")
    store = corpus_store("smokers")
    with pytest.raises(GroundingError, match="memory_limit"):
        G.ground(program, store, backend="duckdb", duckdb=DuckDBOptions(memory_limit="lots"))
    (tmp_path / "dir.duckdb").mkdir()
    with pytest.raises(OutputError, match="dir.duckdb"):
        G.ground(program, store, backend="duckdb", duckdb=DuckDBOptions(database=str(tmp_path / "dir.duckdb")))
    with pytest.raises(SettingsError, match="backend"):
        G.ground(program, store, backend="sqlite")


def test_a_join_over_the_memory_limit_is_named(tmp_path):
    """A cartesian product far past a 10 MB limit with nowhere to spill: a GroundingError naming
    the rule and the fix, not a DuckDB traceback."""
    from hlmrf.testing.lang_helpers import store_of

    people = [(f"p{i}", 1.0) for i in range(400)]
    store = store_of(obs={"A": people, "B": people, "C": people}, targets={"T": [("p0",)]})
    program = parse_rules("1: A(X) & B(Y) & C(Z) & (X != Y) & (Y != Z) -> T('p0') ^2", "big.psl")
    opts = DuckDBOptions(memory_limit="10MB", temp_directory="", threads=1)
    try:
        G.ground(program, store, backend="duckdb", duckdb=opts, max_ground_rules=None)
    except GroundingError as exc:
        assert "big.psl:1" in str(exc) and ("memory" in str(exc).lower() or "space" in str(exc).lower())
    else:  # DuckDB managed within the limit after all (it streams the aggregation-free join)
        pass


def test_without_duckdb_the_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "duckdb", None)
    program = parse_rules("\n".join(corpus()["smokers"]["rules"]), "s.psl")
    with pytest.raises(MissingDependencyError, match=r"hlmrf\[duckdb\]"):
        G.ground(program, corpus_store("smokers"), backend="duckdb")


def test_the_database_estimate_is_a_count():
    from hlmrf.grounding.duckdb_backend import DuckDBExecutor

    name = "simple-acquaintances"
    program = parse_rules("\n".join(corpus()[name]["rules"]), "a.psl")
    prep = G._Prepared(program, corpus_store(name))
    c = prep.codes
    with DuckDBExecutor(ONE_THREAD, prep.relation, c.lookup, c.rank) as ex:
        for plan in prep.plans:
            est = ex.estimate(plan)
            assert est is None or (isinstance(est, int) and est >= 0)
        assert any(ex.estimate(p) is not None for p in prep.plans)
    assert np.isfinite(1.0)


def test_command_line_backend_gives_the_same_answers(examples, tmp_path, capsys):
    from hlmrf.cli.infer import main

    rules = str(examples / "simple-acquaintances" / "rules.psl")
    facts = str(examples / "simple-acquaintances" / "facts")
    assert main([rules, facts, "-o", str(tmp_path / "np"), "-q"]) == 0
    assert main([rules, facts, "-o", str(tmp_path / "db"), "-q", "--backend", "duckdb", "--memory-limit", "300MB",
                 "--temp-directory", str(tmp_path / "spill"), "--duckdb-threads", "1",
                 "--database", str(tmp_path / "g.duckdb")]) == 0
    a, b = ({ln.rsplit("\t", 1)[0]: float(ln.rsplit("\t", 1)[1]) for ln in (tmp_path / d / "KNOWS.txt").read_text().splitlines()}
            for d in ("np", "db"))
    assert a.keys() == b.keys() and max(abs(a[k] - b[k]) for k in a) < 1e-4
    assert (tmp_path / "g.duckdb").exists()
    assert sorted(p.name for p in (tmp_path / "db").iterdir()) == [".hlmrf-manifest", "KNOWS.txt"]


@pytest.mark.parametrize("extra, message", [
    (["--database", "x.duckdb"], "--database applies only to --backend duckdb"),
    (["--memory-limit", "4GB", "--temp-directory", "t"], "--memory-limit, --temp-directory apply only to --backend duckdb"),
    (["--backend", "duckdb", "--memory-limit", "lots"], "expected a size such as 4GB"),
    (["--backend", "duckdb", "--duckdb-threads", "0"], "--duckdb-threads must be at least 1"),
])
def test_command_line_refuses_bad_backend_options(examples, tmp_path, capsys, extra, message):
    from hlmrf.cli.infer import main

    rules = str(examples / "smokers" / "rules.psl")
    facts = str(examples / "smokers" / "facts")
    try:
        rc = main([rules, facts, "-o", str(tmp_path / "o")] + extra)
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_estimates_show_the_database_cardinality_and_the_check_uses_it():
    """With DuckDB, every estimate also carries DuckDB's own cardinality; exact counts are kept for
    the size check, and an inexact upper bound gives way to the database's estimate."""
    name = "simple-acquaintances"
    program = parse_rules("\n".join(corpus()[name]["rules"]), "a.psl")
    store = corpus_store(name)
    seen = []
    G.ground(program, store, backend="duckdb", duckdb=ONE_THREAD, on_estimate=seen.append)
    assert len(seen) == len(program.rules) and any(e.database is not None for e in seen)
    assert all("DuckDB estimates ~" in str(e) for e in seen if e.database is not None)
    assert all(e.expected == e.ground_rules for e in seen if e.exact)
    loose = G.RuleEstimate(0, "a.psl:1", "r", 10**9, False, database=500)
    assert loose.expected == 500 and G.RuleEstimate(0, "a.psl:1", "r", 10**9, False).expected == 10**9
    with pytest.raises(GroundingError, match="DuckDB estimates|max_ground_rules = 10"):
        G.ground(program, store, backend="duckdb", duckdb=ONE_THREAD, max_ground_rules=10)

"""The Spark SQL grounding backend against the in-memory numpy executor.

Both backends must ground the same potentials (compared as ``canonical_rows``: Spark, like DuckDB,
gives each rule's rows in the sorted order of their substitutions, not in numpy's order) and
fail the same way on the same bad input: on models of the corpus, on random programs (hypothesis:
``!=``, ``==``, ``%``, unions, arithmetic rules with summations), in parts of 3 rows, and from the
command line. One SparkSession in ``local[2]`` serves the module (the executor uses an active
session as it is). The option and dependency errors need no Spark and run without pyspark.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings

from hlmrf import parse_rules
from hlmrf.errors import GroundingError, MissingDependencyError, RuleError, SettingsError
from hlmrf.grounding.spark_backend import SparkOptions, check_spark, find_java
from hlmrf.testing.grounding_programs import canonical_rows, ground_outcome, programs, store_of_data
from hlmrf.testing.psl_corpus import corpus, corpus_store

G = importlib.import_module("hlmrf.grounding.ground")
HAVE_SPARK = all(importlib.util.find_spec(m) is not None for m in ("pyspark", "pyarrow")) \
    and shutil.which("java") is not None
needs_spark = pytest.mark.skipif(not HAVE_SPARK, reason="the Spark backend needs pyspark, pyarrow and Java "
                                                         "(pip install 'hlmrf[spark]'; a JRE 17+ on PATH)")
CORPUS = ("smokers", "simple-acquaintances", "friendship")


@pytest.fixture(scope="module")
def spark(spark_session):
    """The test session's one SparkSession (tests/engine/conftest.py: one JVM for every Spark test)."""
    return spark_session


def _assert_same(program, store, **kw):
    a = ground_outcome(program, store)
    b = ground_outcome(program, store, backend="spark", **kw)
    assert a[0] == b[0], (a, b)
    if a[0] == "model":
        assert a[1].n == b[1].n and a[1].index.predicates == b[1].index.predicates
        assert canonical_rows(a[1]) == canonical_rows(b[1])
        return a[1], b[1]
    assert a[1] == b[1]
    return None


# ---------------------------------------------------------------------------------- with Spark


@needs_spark
@pytest.mark.parametrize("name", CORPUS)
def test_corpus_models_are_the_same_potentials(spark, name):
    program = parse_rules("\n".join(corpus()[name]["rules"]), f"{name}.psl")
    models = _assert_same(program, corpus_store(name, seed=0))
    assert models is not None and models[0].m > 0


@needs_spark
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(programs(sums=True))
def test_random_programs_ground_alike_or_fail_alike(spark, case):
    data, text = case
    try:
        program = parse_rules(text, "r.psl")
    except RuleError:
        event("rejected by the parser")
        return
    out = _assert_same(program, store_of_data(data))
    event("grounded" if out is not None else "same error")
    for op in ("!=", "==", "%", "|", "+S"):
        if op in text:
            event(f"with {op}")


@needs_spark
def test_comparisons_constants_sums_and_unions(spark):
    """Each construct once, whatever hypothesis draws: ``%``, ``==``, ``!=``, a constant present in
    the data and one absent from it, a summation, a union."""
    name = "simple-acquaintances"
    text = "\n".join([
        "3: Lived(P1, L) & Lived(P2, L) & (P1 % P2) -> Knows(P1, P2) ^2",
        "2: Likes(P1, L) & Likes(P2, L) & (P1 == P2) -> Knows(P1, P2)",
        "2: Likes(P1, L) & Lived(P2, L) & (P1 != P2) & (P1 != 'c0') -> Knows(P1, P2)",
        "1: Lived(P1, L) & (L == 'nowhere') -> !Knows(P1, P1)",
        "Knows(P1, +P2) <= 2 .",
        "1: Knows(P1, P2) | Knows(P2, P1) ^2",
    ])
    models = _assert_same(parse_rules(text, "c.psl"), corpus_store(name, seed=3))
    assert models is not None and len(set(models[1].rule.tolist())) >= 4


@needs_spark
def test_in_parts_of_three_rows_and_unions(spark, monkeypatch, tmp_path):
    """Parts of 3 rows (record batches of the rule's Parquet, re-cut at file boundaries) and a
    union plan, whose rows come in np.unique's order: identical row for row."""
    name = "simple-acquaintances"
    program = parse_rules("\n".join(corpus()[name]["rules"]) + "\n1: Knows(A, B) | Knows(B, A) ^2", "u.psl")
    store = corpus_store(name, seed=3)
    monkeypatch.setattr(G, "GROUND_PART_ROWS", 3)
    out = tmp_path / "parquet"
    numpy_model, spark_model = _assert_same(program, store, spark=SparkOptions(output=str(out)))
    last = int(numpy_model.rule.max())
    a, b = (m.A[m.rule == last] for m in (numpy_model, spark_model))
    assert a.shape[0] > 3 and (a != b).nnz == 0
    # The rule folders are kept, sorted by the substitutions' codes; the code tables are not.
    import pyarrow.parquet as pq

    # (and the manifest that lets a later run reuse them)
    assert sorted(p.name for p in out.iterdir()) == \
        ["_hlmrf_grounding.json"] + [f"rule={k}" for k in range(len(program.rules))]
    for folder in out.glob("rule=*"):
        table = pq.read_table(folder)
        rows = np.stack([table.column(c).to_numpy() for c in table.column_names], axis=1)
        assert [tuple(r) for r in rows] == sorted(tuple(r) for r in rows)


@needs_spark
def test_the_executor_reads_parts_of_exactly_part_rows(spark):
    from hlmrf.grounding.spark_backend import SparkExecutor

    name = "simple-acquaintances"
    program = parse_rules("\n".join(corpus()[name]["rules"]), "a.psl")
    prep = G._Prepared(program, corpus_store(name))
    c = prep.codes
    with SparkExecutor(SparkOptions(), prep.relation, c.lookup, c.rank) as ex:
        root = ex._root
        plan = max(prep.plans, key=lambda p: len(prep.execute(p)))
        whole = prep.execute(plan)
        parts = list(ex.parts(plan, 4, prep.execute))
        assert ex.estimate(plan) is None
    assert [len(p) for p in parts[:-1]] == [4] * (len(parts) - 1) and 1 <= len(parts[-1]) <= 4
    got = np.concatenate(parts)
    assert got.tolist() == sorted(got.tolist()) == sorted(whole.tolist())
    assert not os.path.exists(root)  # the temporary output folder is removed


@needs_spark
def test_a_spark_failure_names_the_rule(spark, monkeypatch):
    spark_backend = importlib.import_module("hlmrf.grounding.spark_backend")
    monkeypatch.setattr(spark_backend.SparkExecutor, "ordered_sql", lambda self, plan: "SELECT nope FROM hlmrf_none")
    program = parse_rules("\n".join(corpus()["smokers"]["rules"]), "s.psl")
    with pytest.raises(GroundingError, match=r"Spark failed grounding rule \d+ \(s\.psl:\d+\)"):
        G.ground(program, corpus_store("smokers"), backend="spark")


@needs_spark
def test_command_line_backend_gives_the_same_answers(spark, examples, tmp_path):
    from hlmrf.cli.infer import main

    rules = str(examples / "simple-acquaintances" / "rules.psl")
    facts = str(examples / "simple-acquaintances" / "facts")
    assert main([rules, facts, "-o", str(tmp_path / "np"), "-q"]) == 0
    assert main([rules, facts, "-o", str(tmp_path / "sp"), "-q", "--backend", "spark",
                 "--spark-master", "local[2]", "--spark-output", str(tmp_path / "parquet")]) == 0
    names = [sorted(p.name for p in (tmp_path / d).iterdir()) for d in ("np", "sp")]
    assert names[0] == names[1] == [".hlmrf-manifest", "KNOWS.txt"]
    a, b = ({ln.rsplit("\t", 1)[0]: float(ln.rsplit("\t", 1)[1]) for ln in (tmp_path / d / "KNOWS.txt").read_text().splitlines()}
            for d in ("np", "sp"))
    assert a.keys() == b.keys() and max(abs(a[k] - b[k]) for k in a) < 1e-4
    assert any(p.name.startswith("rule=") for p in (tmp_path / "parquet").iterdir())


# ------------------------------------------------------------------- errors, no Spark needed


def _cli(examples, tmp_path, capsys, extra, prog="infer"):
    main = importlib.import_module(f"hlmrf.cli.{prog}").main
    rules = str(examples / "smokers" / "rules.psl")
    facts = str(examples / "smokers" / "facts")
    out = ["-o", str(tmp_path / "o")] if prog == "infer" else ["-o", str(tmp_path / "o.psl")]
    try:
        rc = main([rules, facts] + out + extra)
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.psl").exists()
    return rc, err


@pytest.mark.parametrize("extra, message", [
    (["--spark-master", "local[1]"], "--spark-master applies only to --backend spark"),
    (["--spark-output", "p", "--spark-master", "yarn"], "--spark-master, --spark-output apply only to --backend spark"),
    (["--backend", "duckdb", "--spark-output", "p"], "--spark-output applies only to --backend spark"),
    (["--backend", "spark", "--database", "x.duckdb"], "--database applies only to --backend duckdb"),
    (["--backend", "spark", "--spark-master", "spark://host:7077"], "give --spark-output"),
    (["--backend", "spark", "--spark-output", "p", "--workers", "2"], "cannot share one output folder"),
])
def test_command_line_refuses_bad_spark_options(examples, tmp_path, capsys, extra, message):
    rc, err = _cli(examples, tmp_path, capsys, extra)
    assert rc == 2 and message in err


def test_an_output_folder_that_is_a_file_is_refused(examples, tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    rc, err = _cli(examples, tmp_path, capsys, ["--backend", "spark", "--spark-output", str(tmp_path / "f")])
    assert rc == 2 and "is a file, not a folder" in err
    with pytest.raises(SettingsError, match="is a file"):
        check_spark(SparkOptions(output=str(tmp_path / "f")))


def test_without_pyspark_the_extra_is_named(examples, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)
    rc, err = _cli(examples, tmp_path, capsys, ["--backend", "spark"])
    assert rc == 2 and 'pip install "hlmrf[spark]"' in err
    program = parse_rules("\n".join(corpus()["smokers"]["rules"]), "s.psl")
    with pytest.raises(MissingDependencyError, match=r"hlmrf\[spark\]"):
        G.ground(program, corpus_store("smokers"), backend="spark")


def test_without_java_it_says_how_to_get_it(examples, tmp_path, capsys, monkeypatch):
    # Stand-ins for pyspark and pyarrow: the Java check comes after theirs.
    for name in ("pyspark", "pyarrow"):
        if importlib.util.find_spec(name) is None:
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(MissingDependencyError, match="Spark needs Java .*install a JRE"):
        find_java()
    rc, err = _cli(examples, tmp_path, capsys, ["--backend", "spark"])
    assert rc == 2 and "Spark needs Java" in err
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(MissingDependencyError, match=f"JAVA_HOME={tmp_path} has no bin/java"):
        find_java()


def test_bad_options_are_settings_errors():
    with pytest.raises(SettingsError, match="master"):
        SparkOptions(master="")
    with pytest.raises(SettingsError, match="pairs"):
        SparkOptions(conf=(("spark.driver.memory",),))
    assert SparkOptions().local and not SparkOptions(master="yarn", output="hdfs:///x").local


def test_importing_hlmrf_imports_no_spark():
    code = ("import sys, hlmrf, hlmrf.grounding.spark_backend, hlmrf.cli.infer; "
            "assert not {'pyspark', 'pyarrow', 'py4j'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)

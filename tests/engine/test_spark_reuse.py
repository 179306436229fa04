"""Reusing a Spark grounding (``SparkOptions(reuse=True)``, ``--spark-reuse``) and split workers
that read their shares from it (``--split-grounding --backend spark``).

A Spark run with an output folder leaves a manifest with each rule's fingerprint; a later run
reads the Parquet instead of starting Spark and must ground exactly the in-memory executor's
potentials, or fail naming the rule when the folder was ground from other rules or facts, is
unfinished or was tampered with. Split workers on 2 processes: worker 0 grounds with Spark, both
read their shares, and the answer is the one-process answer.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hlmrf import parse_rules
from hlmrf.errors import GroundingError, SettingsError
from hlmrf.grounding.ground import ground
from hlmrf.grounding.spark_backend import MANIFEST, SparkOptions
from hlmrf.testing.grounding_programs import canonical_rows
from hlmrf.testing.psl_corpus import corpus, corpus_store

EXAMPLE = Path(__file__).parents[2] / "examples" / "simple-acquaintances"


def _program(name):
    return parse_rules("\n".join(corpus()[name]["rules"]), f"{name}.psl")


@pytest.fixture(scope="module")
def written(spark_session, tmp_path_factory):
    """simple-acquaintances (seed 0) ground by Spark into a kept folder."""
    out = tmp_path_factory.mktemp("spark") / "g"
    program, store = _program("simple-acquaintances"), corpus_store("simple-acquaintances", seed=0)
    model = ground(program, store, backend="spark", spark=SparkOptions(output=str(out)))
    return out, program, store, model


def test_a_finished_run_leaves_a_manifest_and_reuse_reads_the_same_model(written):
    out, program, store, model = written
    manifest = json.loads((out / MANIFEST).read_text())
    assert set(manifest["rules"]) and all(len(v["fingerprint"]) == 64 for v in manifest["rules"].values())
    again = ground(program, store, backend="spark", spark=SparkOptions(output=str(out), reuse=True))
    assert canonical_rows(again) == canonical_rows(model) == canonical_rows(ground(program, store))


def test_split_shares_read_from_the_folder_make_the_whole_model(written):
    out, program, store, model = written
    shares = [ground(program, store, backend="spark", spark=SparkOptions(output=str(out), reuse=True),
                     share=(k, 3)) for k in range(3)]
    assert sorted(r for s in shares for r in canonical_rows(s)) == canonical_rows(model)
    assert max(s.m for s in shares) < model.m


def test_other_facts_are_refused_naming_the_rule(written):
    out, program, _, _ = written
    with pytest.raises(GroundingError, match=r"rule \d+: .*ground from other rules or facts"):
        ground(program, corpus_store("simple-acquaintances", seed=1), backend="spark",
               spark=SparkOptions(output=str(out), reuse=True))


def test_changed_part_files_are_refused(written, tmp_path):
    out, program, store, _ = written
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    victim = next(p for p in sorted(copy.glob("rule=*/part-*.parquet")))
    victim.rename(victim.with_name("part-99999-x.parquet"))
    with pytest.raises(GroundingError, match="not the ones the Spark run wrote"):
        ground(program, store, backend="spark", spark=SparkOptions(output=str(copy), reuse=True))


def test_an_unfinished_folder_is_refused(written, tmp_path):
    out, program, store, _ = written
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / MANIFEST).unlink()
    with pytest.raises(GroundingError, match="no finished Spark grounding"):
        ground(program, store, backend="spark", spark=SparkOptions(output=str(copy), reuse=True))


@pytest.mark.parametrize("manifest", [b"\xff\xfe not json", b'{"rules": 3}', b'{"rules": {"0": 5}}',
                                      b'["a list"]', b""])
def test_a_garbled_manifest_is_refused(written, tmp_path, manifest):
    out, program, store, _ = written
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / MANIFEST).write_bytes(manifest)
    with pytest.raises(GroundingError, match="no finished Spark grounding|ground from other rules"):
        ground(program, store, backend="spark", spark=SparkOptions(output=str(copy), reuse=True))


def test_reuse_needs_a_folder_and_split_spark_needs_reuse():
    program, store = _program("friendship"), corpus_store("friendship", seed=0)
    with pytest.raises(SettingsError, match="--spark-output"):
        ground(program, store, backend="spark", spark=SparkOptions(reuse=True))
    with pytest.raises(SettingsError, match="cannot each run Spark into one folder"):
        ground(program, store, backend="spark", spark=SparkOptions(output="/tmp/x"), share=(0, 2))


def _infer(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hlmrf.cli.infer", str(EXAMPLE / "rules.psl"),
                           str(EXAMPLE / "facts"), *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def _values(folder: Path) -> np.ndarray:
    return np.array([float(line.split("\t")[2]) for line in (folder / "KNOWS.txt").read_text().splitlines()])


def test_split_workers_read_their_shares_of_one_spark_grounding(spark_session, tmp_path):
    pytest.importorskip("torch", reason="--workers needs torch")
    one = _infer("-o", str(tmp_path / "one"))
    split = _infer("-o", str(tmp_path / "split"), "--workers", "2", "--split-grounding", "--backend",
                   "spark", "--spark-output", str(tmp_path / "g"), "--spark-master", "local[1]")
    assert one.returncode == 0 and split.returncode == 0, split.stderr[-3000:]
    np.testing.assert_allclose(_values(tmp_path / "split"), _values(tmp_path / "one"), rtol=0, atol=1e-6)
    # Spark's start-up notices and warnings are not shown (its log is errors only)
    assert "log4j profile" not in split.stderr and " WARN " not in split.stderr, split.stderr[-2000:]
    assert (tmp_path / "g" / MANIFEST).exists()
    # and the folder serves a later run without Spark
    again = _infer("-o", str(tmp_path / "again"), "--backend", "spark", "--spark-output", str(tmp_path / "g"),
                   "--spark-reuse")
    assert again.returncode == 0, again.stderr[-3000:]
    np.testing.assert_allclose(_values(tmp_path / "again"), _values(tmp_path / "one"), rtol=0, atol=1e-6)


@pytest.mark.parametrize("args, message", [
    (["--workers", "2", "--split-grounding", "--backend", "spark"], "give --spark-output a folder"),
    (["--backend", "spark", "--spark-reuse"], "--spark-reuse"),
    (["--spark-reuse"], "applies only to --backend spark"),
    (["--spark-conf", "spark.executor.memory=8g"], "applies only to --backend spark"),
    (["--backend", "spark", "--spark-conf", "novalue"], "expected KEY=VALUE"),
])
def test_bad_spark_split_options_exit_2(tmp_path, args, message):
    res = _infer("-o", str(tmp_path / "out"), *args, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr
    assert not (tmp_path / "out").exists()


def test_spark_conf_options_become_the_sessions_settings():
    import argparse

    from hlmrf.cli.reference import add_grounding_backend, grounding_backend

    ap = argparse.ArgumentParser()
    add_grounding_backend(ap, spark=True)
    args = ap.parse_args(["--backend", "spark", "--spark-conf", "spark.executor.memory=8g",
                          "--spark-conf", " spark.sql.shuffle.partitions = 4 "])
    assert grounding_backend(args)["spark"].conf == (("spark.executor.memory", "8g"),
                                                     ("spark.sql.shuffle.partitions", "4"))
    with pytest.raises(SystemExit):
        ap.parse_args(["--backend", "spark", "--spark-conf", "no-equals-sign"])

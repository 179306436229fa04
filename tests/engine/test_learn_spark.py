"""``hlmrf-learn --backend spark`` against ``--backend numpy`` on the bundled simple-acquaintances model.

Spark grounds the training model and both held-out ones (``--eval``) with the same potentials as
the in-memory executor, so the learned weights and the held-out metrics agree with numpy's to
rounding. One SparkSession in ``local[2]`` serves the module (the executor uses an active session
as it is, as in the Spark grounding tests). The option errors need no Spark and run without pyspark.
"""
from __future__ import annotations


import numpy as np
import pytest

import hlmrf
from hlmrf.cli.learn import main


@pytest.fixture(scope="module")
def spark(spark_session):
    """The test session's one SparkSession (tests/engine/conftest.py: one JVM for every Spark test)."""
    return spark_session


def _inputs(examples):
    e = examples / "simple-acquaintances"
    return [str(e / "rules.psl"), str(e / "facts")]


def _weights(path):
    return [r.weight for r in hlmrf.load_rules(path).rules]


def test_learns_the_same_weights_as_numpy(spark, examples, tmp_path, capsys):
    rules, facts = _inputs(examples)
    common = [rules, facts, "--method", "perceptron", "--epochs", "5", "--init", "uniform", "--eval", facts]
    assert main(common + ["-o", str(tmp_path / "np.psl")]) == 0
    numpy_out = capsys.readouterr().out
    assert main(common + ["-o", str(tmp_path / "sp.psl"), "--backend", "spark", "--spark-master", "local[2]",
                          "--spark-output", str(tmp_path / "parquet")]) == 0
    spark_out = capsys.readouterr().out
    wa, wb = _weights(tmp_path / "np.psl"), _weights(tmp_path / "sp.psl")
    assert [w is None for w in wa] == [w is None for w in wb] == [r.hard for r in hlmrf.load_rules(rules).rules]
    soft = [i for i, w in enumerate(wa) if w is not None]
    assert not np.allclose([wa[i] for i in soft], 1.0)  # learning moved the weights off uniform
    np.testing.assert_allclose([wb[i] for i in soft], [wa[i] for i in soft], rtol=1e-6, atol=1e-9)

    def summary(text):  # the model's size and the held-out metric rows
        return [ln for ln in text.splitlines() if ln.startswith(("training model:", "  initial:", "  learned:"))]

    a, b = summary(numpy_out), summary(spark_out)
    assert len(a) == 3 and [ln.split(";")[0] for ln in a] == [ln.split(";")[0] for ln in b]
    # The Parquet of the last grounding (the held-out model's, here of the training facts) stays
    # in --spark-output, and a later run reads it instead of running Spark.
    assert sorted(p.name for p in (tmp_path / "parquet").iterdir() if p.name.startswith("rule=")) == \
        [f"rule={k}" for k in range(len(wa))]
    assert main(common[:-2] + ["-o", str(tmp_path / "again.psl"), "--backend", "spark",
                               "--spark-output", str(tmp_path / "parquet"), "--spark-reuse", "-q"]) == 0
    np.testing.assert_allclose([_weights(tmp_path / "again.psl")[i] for i in soft], [wb[i] for i in soft],
                               rtol=1e-12)


@pytest.mark.parametrize("extra, message", [
    (["--spark-master", "local[1]"], "--spark-master applies only to --backend spark"),
    (["--spark-output", "p"], "--spark-output applies only to --backend spark"),
    (["--backend", "duckdb", "--spark-master", "local[1]", "--spark-output", "p"],
     "--spark-master, --spark-output apply only to --backend spark"),
    (["--backend", "spark", "--spark-master", "spark://host:7077"], "give --spark-output"),
    (["--backend", "spark", "--spark-output", "p", "--spark-reuse", "--eval", "."],
     "drop --eval (and run hlmrf-infer on the held-out facts) or drop --spark-reuse"),
])
def test_spark_option_errors_exit_2_before_any_work(examples, tmp_path, capsys, extra, message):
    """A Spark option without ``--backend spark`` (and a cluster master without an output folder,
    or --spark-reuse with --eval) is a usage error before any input is read; none needs Spark."""
    out = tmp_path / "learned.psl"
    rc = main(_inputs(examples) + ["-o", str(out)] + extra)
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err
    assert not out.exists()

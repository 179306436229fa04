from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture
def examples() -> Path:
    return EXAMPLES


@pytest.fixture(scope="session")
def spark_session():
    """One SparkSession in local[2] for the tests that need Spark (the executor uses an active
    session as it is); skipped with the reason when pyspark, pyarrow or Java is missing."""
    import os
    import shutil
    import warnings

    pytest.importorskip("pyspark", reason="the Spark backend needs pyspark (pip install 'hlmrf[spark]')")
    pytest.importorskip("pyarrow", reason="the Spark backend needs pyarrow (pip install 'hlmrf[spark]')")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("the Spark backend needs Java 17+ (java on PATH or JAVA_HOME)")
    from pyspark.sql import SparkSession

    with warnings.catch_warnings():  # pyspark's note about the installed pandas version
        warnings.simplefilter("ignore")
        session = (SparkSession.builder.master("local[2]").appName("hlmrf-tests")
                   .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                   .config("spark.sql.shuffle.partitions", "2").config("spark.default.parallelism", "2")
                   # Tiny queries in a short-lived JVM: compiling code (Spark's and the JIT's top
                   # tier) and re-planning cost more than they save.
                   .config("spark.sql.codegen.wholeStage", "false").config("spark.sql.adaptive.enabled", "false")
                   .config("spark.sql.codegen.factoryMode", "NO_CODEGEN")
                   .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1")
                   .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()

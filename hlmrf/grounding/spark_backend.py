"""Grounding's joins executed by Spark SQL (``ground(..., backend="spark")``), locally or on a cluster.

The same translation as the DuckDB backend (:func:`hlmrf.grounding.plan.coded_sql`): each relation
a plan scans is a table of constant codes ``hlmrf_r<k>(a0, a1, ...)``, written once by the driver
as a Parquet file under ``<output>/_tables/`` and registered as a temporary view; PSL's ``%`` joins
a ``hlmrf_ranks(code, r)`` view. Each rule's query, sorted by the substitutions' codes, is written
as Parquet to ``<output>/rule=<k>/part-*.parquet`` (Hive-style, so ``spark.read.parquet(output)``
reads every rule with a ``rule`` column); the driver then reads it back with pyarrow file by file,
in part order, in record batches of :data:`~hlmrf.grounding.ground.GROUND_PART_ROWS` rows, through
the same row builder as the in-memory executor. Grounding holds the finished rows plus about one
part, whatever the size of the join.

What runs where. On the cluster (Spark's executors): the joins, the filters, the global sort and
the Parquet write. On the driver (this process): reading and checking the facts, coding the
constants, writing the code tables, building the potentials' rows from each part of
substitutions, assembling the model, and the solve. The code tables pass through the output
folder, so with a cluster master that folder must be storage both the cluster and the driver can
read (HDFS, S3, a shared filesystem); only local mode (``local[N]``) is tested.

The model has the same potentials as the in-memory executor's: the rows of a rule come in the
sorted order of their substitutions' codes (a Spark ``ORDER BY`` is range-partitioned, so part
files in order are rows in order), the same on every run; unions are ``UNION`` queries in sorted
order, as ``np.unique`` gives them. Spark's optimizer gives no row estimate without table
statistics, so :meth:`SparkExecutor.estimate` returns None and the size check uses grounding's own
count.

Importing this module imports neither pyspark nor pyarrow; :func:`check_spark` and
:class:`SparkExecutor` do, and raise :class:`~hlmrf.errors.MissingDependencyError` naming
``hlmrf[spark]`` without them, or Java (which Spark needs) when there is none.
"""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, replace
from typing import Callable, Iterator

import numpy as np

from hlmrf.errors import GroundingError, MissingDependencyError, SettingsError
from hlmrf.grounding.plan import CodedSQL, Scan, constant_code, ordered_coded_sql

__all__ = ["SparkOptions", "SparkExecutor", "ParquetReader", "check_spark", "find_java", "write_grounding"]


@dataclass(frozen=True)
class SparkOptions:
    """How to run Spark.

    Attributes
    ----------
    master : Spark's master URL: ``local[N]`` (N cores of this machine), ``spark://host:7077``,
        ``yarn``, ...
    output : the folder for the Parquet of each rule's substitutions (``rule=<k>/``, kept) and the
        code tables (``_tables/``, removed afterwards): a local path or a URI (``hdfs://``,
        ``s3a://``) that pyarrow and the cluster can both read. None: a temporary local folder,
        removed afterwards (local masters only).
    app_name : the Spark application's name.
    conf : extra Spark settings as ``(key, value)`` pairs, e.g.
        ``(("spark.driver.memory", "8g"),)``; applied when this executor starts the session.
    reuse : read the substitutions an earlier run wrote to ``output`` (its manifest
        ``_hlmrf_grounding.json`` checked against these rules and facts, rule by rule) instead
        of running the joins: no Spark is started, only pyarrow reads (:class:`ParquetReader`).
    """

    master: str = "local[2]"
    output: str | None = None
    app_name: str = "hlmrf-grounding"
    conf: tuple[tuple[str, str], ...] = ()
    reuse: bool = False

    def __post_init__(self):
        if not isinstance(self.master, str) or not self.master.strip():
            raise SettingsError(f"SparkOptions.master must be a Spark master URL such as local[2], not {self.master!r}")
        for pair in self.conf:
            if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                raise SettingsError(f"SparkOptions.conf takes (key, value) pairs of strings, not {pair!r}")

    @property
    def local(self) -> bool:
        """Whether the master runs on this machine (``local``, ``local[N]``, ``local[*]``)."""
        return self.master.strip().startswith("local")


def find_java() -> str:
    """The ``java`` Spark will start: ``$JAVA_HOME/bin/java`` when ``JAVA_HOME`` is set, else the one
    on ``PATH``; a :class:`~hlmrf.errors.MissingDependencyError` saying how to get one otherwise."""
    home = os.environ.get("JAVA_HOME")
    if home:
        java = os.path.join(home, "bin", "java")
        if os.path.isfile(java) and os.access(java, os.X_OK):
            return java
        raise MissingDependencyError(
            f"JAVA_HOME={home} has no bin/java, and Spark needs Java (17 or later): point JAVA_HOME at a "
            "JDK or JRE, or unset it to use the java on PATH")
    java = shutil.which("java")
    if java is None:
        raise MissingDependencyError(
            "Spark needs Java (17 or later), and there is no java on PATH and no JAVA_HOME: install a "
            "JRE (e.g. apt-get install openjdk-17-jre-headless, or brew install openjdk@17) and put "
            "its java on PATH or set JAVA_HOME")
    return java


def _is_uri(path: str) -> bool:
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path) is not None and not path.startswith("file://")


def check_spark(options: SparkOptions) -> None:
    """Everything that can be checked without starting Spark, settings first: the output folder
    usable, then pyspark and pyarrow installed and Java found. The command line calls it before
    reading any input."""
    from hlmrf.errors import require

    out = options.output
    if options.reuse:
        if out is None:
            raise SettingsError("reusing a Spark grounding needs the folder it was written to: give "
                                "--spark-output (SparkOptions.output) with --spark-reuse")
        require("pyarrow", "spark")
        return
    if out is None and not options.local:
        raise SettingsError(
            f"the Spark master {options.master} runs outside this machine, so the substitutions "
            "need an output folder both it and this machine can read: give --spark-output "
            "(SparkOptions.output) an HDFS or S3 URI or a folder on a shared filesystem")
    if out is not None and not _is_uri(out):
        path = out[len("file://"):] if out.startswith("file://") else out
        if os.path.exists(path) and not os.path.isdir(path):
            raise SettingsError(f"--spark-output (SparkOptions.output) {out}: is a file, not a folder; "
                                "name a folder (it is created) for the Parquet of the ground rules")
    require("pyspark", "spark")
    require("pyarrow", "spark")
    find_java()


MANIFEST = "_hlmrf_grounding.json"
"""Written into the output folder once every rule's substitutions are there: per rule, the
fingerprint of what it was ground from (:func:`plan_fingerprint`) and its part files. Its presence
marks a finished grounding that :class:`ParquetReader` can read."""


def _open_root(root: str):
    """``(filesystem, path, URI for Spark)`` of an output folder: a local path or a URI."""
    import pyarrow.fs

    if _is_uri(root):
        fs, path = pyarrow.fs.FileSystem.from_uri(root)
        return fs, path.rstrip("/"), root.rstrip("/")
    path = os.path.abspath(root[len("file://"):] if root.startswith("file://") else root)
    return pyarrow.fs.LocalFileSystem(), path.rstrip("/"), f"file://{path}"


def _part_files(fs, root: str, rule: int) -> list[str]:
    """The part files of ``rule=<rule>/``, in the sort's order."""
    import pyarrow.fs

    parts = []
    for info in fs.get_file_info(pyarrow.fs.FileSelector(f"{root}/rule={rule}")):
        m = re.match(r"part-(\d+)", info.base_name)
        if m and info.base_name.endswith(".parquet") and info.type == pyarrow.fs.FileType.File:
            parts.append((int(m.group(1)), info.path))
    return [path for _, path in sorted(parts)]


def _read_parts(fs, files: list[str], width: int, part_rows: int) -> Iterator[np.ndarray]:
    """The files' rows in order, in parts of exactly ``part_rows`` rows (the last one fewer)."""
    import pyarrow.parquet as pq

    columns = [f"v{i}" for i in range(width)] or ["v_"]
    pending: list[np.ndarray] = []
    held = 0
    for path in files:
        with fs.open_input_file(path) as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=part_rows, columns=columns):
                if width:
                    block = np.stack([batch.column(i).to_numpy().astype(np.int64, copy=False)
                                      for i in range(width)], axis=1)
                else:
                    block = np.zeros((batch.num_rows, 0), np.int64)
                pending.append(block)
                held += len(block)
                while held >= part_rows:
                    rows = pending[0] if len(pending) == 1 else np.concatenate(pending)
                    yield rows[:part_rows]
                    pending, held = [rows[part_rows:]], held - part_rows
    if held:
        yield pending[0] if len(pending) == 1 else np.concatenate(pending)


def plan_fingerprint(plan, relation: Callable[[Scan], np.ndarray], code_of: Callable[[str], int | None],
                     rank: Callable[[], np.ndarray]) -> str | None:
    """A digest of what a plan's substitutions are a function of: its query (tables named by
    predicate and relation, constants by code) and the code tables it reads (and the ranks for
    ``%``). Equal digests, equal substitutions; None for a plan without scans."""
    import hashlib

    h = hashlib.sha256()

    def table(scan: Scan) -> str:
        rows = np.ascontiguousarray(relation(scan), dtype=np.int64)
        h.update(f"{scan.predicate}|{scan.relation}|{rows.shape}".encode())
        h.update(rows.tobytes())
        return f"t_{scan.predicate}_{scan.relation}"

    def ranks() -> str:
        h.update(np.ascontiguousarray(rank(), dtype=np.int64).tobytes())
        return "ranks"

    query = ordered_coded_sql(plan, table, lambda c: constant_code(code_of, c), ranks)
    if query is None:
        return None
    h.update(query.encode())
    return h.hexdigest()


class _ParquetParts:
    """What both readers of a rule's Parquet share (:class:`SparkExecutor`, which writes it first,
    and :class:`ParquetReader`): the rule's part files read back in parts, through ``_fs``."""

    _fs = None

    def _rule_files(self, plan) -> list[str] | None:
        """The plan's part files in order; None for a plan without scans."""
        raise NotImplementedError

    def parts(self, plan, part_rows: int, fallback: Callable[[object], np.ndarray]) -> Iterator[np.ndarray]:
        """The plan's substitutions in parts of at most ``part_rows`` rows, in order (a record
        batch at a time); ``fallback(plan)`` runs a plan without scans."""
        files = self._rule_files(plan)
        if files is None:
            yield fallback(plan)
            return
        width = len(plan.variables)
        empty = True
        for rows in _read_parts(self._fs, files, width, part_rows):
            empty = False
            yield rows
        if empty:
            yield np.zeros((0, width), np.int64)

    def execute(self, plan, fallback: Callable[[object], np.ndarray]) -> np.ndarray:
        """All of the plan's substitutions at once (arithmetic rules), through the same Parquet."""
        parts = list(self.parts(plan, 1 << 20, fallback))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def estimate(self, plan) -> int | None:
        """None: neither Spark's optimizer (Parquet views have no table statistics) nor the files
        give a row count before the query runs."""
        return None

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SparkExecutor(_ParquetParts, CodedSQL):
    """Runs join plans as Spark SQL (see the module docstring).

    ``relation(scan)`` returns a scan's ``(rows, arity)`` int64 code table, ``code_of`` a
    constant's code, ``rank`` each code's position in the names' sorted order. A SparkSession
    already active in this process is used as it is (its master and settings win over
    ``options``') and left running; otherwise one is started from ``options`` and stopped by
    :meth:`close`. A session started here logs errors only (``spark_log4j2.properties`` beside
    this module, unless ``options.conf`` sets ``spark.driver.extraJavaOptions``), and for a local
    master ``SPARK_LOCAL_IP`` is set to 127.0.0.1 when unset. The JVM's own notice about its
    incubator modules and pyspark's "Setting default log level" lines still reach stderr.
    """

    name = "Spark"

    def __init__(self, options: SparkOptions, relation: Callable[[Scan], np.ndarray],
                 code_of: Callable[[str], int | None], rank: Callable[[], np.ndarray]):
        check_spark(options)
        import tempfile
        import warnings

        import pyarrow.fs
        import pyarrow.parquet  # noqa: F401 - fails here, not mid-grounding, if broken
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException

        self.options = options
        self._relation, self._code_of, self._rank = relation, code_of, rank
        self._errors = (PySparkException, Py4JError, pyarrow.ArrowException)
        self._views: dict[tuple[str, str], str] = {}
        self._temporary = options.output is None
        root = tempfile.mkdtemp(prefix="hlmrf-spark-") if self._temporary else options.output
        self._fs, self._root, self._spark_root = _open_root(root)
        self._written: dict[int, dict] = {}
        try:
            self._fs.create_dir(self._root, recursive=True)
            self._clear_rules()  # a rerun into the same folder leaves no rule of an earlier model
        except OSError as exc:
            self._remove_temporary()
            from hlmrf.errors import OutputError

            raise OutputError(f"cannot use the Spark output folder {root}: {_first_line(exc)}; give "
                              "--spark-output a folder this machine can create and write") from None
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        if active is None and SparkContext._active_spark_context is not None:
            active = SparkSession.builder.getOrCreate()  # another thread's: the process has one context
        self._owns_session = active is None
        if active is not None:
            self.spark = active
            master = self.spark.sparkContext.master
            if self._temporary and not master.startswith("local"):
                self._remove_temporary()
                raise SettingsError(
                    f"the active SparkSession's master {master} runs outside this machine, so the "
                    "substitutions need an output folder both it and this machine can read: give "
                    "SparkOptions.output an HDFS or S3 URI or a folder on a shared filesystem")
        else:
            builder = SparkSession.builder.master(options.master).appName(options.app_name)
            builder = builder.config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
            if not any(k == "spark.driver.extraJavaOptions" for k, _ in options.conf):
                # errors only: Spark's start-up notices would drown hlmrf's own output
                log4j = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spark_log4j2.properties")
                builder = builder.config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log4j}")
            if options.local and "SPARK_LOCAL_IP" not in os.environ:
                os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"  # a local master: no "resolves to a loopback" notice
            for key, value in options.conf:
                builder = builder.config(key, value)
            try:
                with warnings.catch_warnings():  # pyspark's own notes about pandas versions
                    warnings.simplefilter("ignore")
                    self.spark = builder.getOrCreate()
            except Exception as exc:  # the JVM did not start: bad master, Java, memory
                self._remove_temporary()
                raise GroundingError(f"Spark did not start (master {options.master}): {_first_line(exc)}; "
                                     "check --spark-master and that Java 17 or later runs") from None
            self.spark.sparkContext.setLogLevel("ERROR")

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        """The exceptions a query can raise; grounding turns them into a GroundingError naming the rule."""
        return self._errors

    @staticmethod
    def hint(message: str) -> str:
        """What to do about a failed query, from its first line."""
        if any(w in message.lower() for w in ("memory", "space", "disk", "heap")):
            return ("give Spark more memory (SparkOptions.conf: spark.driver.memory, spark.executor.memory) "
                    "or its executors more local disk")
        return "this is a bug if the in-memory backend grounds the rule: please report it"

    def close(self) -> None:
        try:
            for view in self._views.values():
                self.spark.catalog.dropTempView(view)
        except self._errors:  # the session is already gone
            pass
        if self._owns_session:
            self.spark.stop()
        try:
            self._fs.delete_dir(f"{self._root}/_tables")
        except OSError:  # never created
            pass
        self._remove_temporary()

    def _remove_temporary(self) -> None:
        if self._temporary:
            shutil.rmtree(self._root, ignore_errors=True)

    def _clear_rules(self) -> None:
        import pyarrow.fs

        infos = self._fs.get_file_info(pyarrow.fs.FileSelector(self._root))
        for info in infos:  # the manifest first: a half-rewritten folder is never "finished"
            if info.base_name == MANIFEST:
                self._fs.delete_file(info.path)
        for info in infos:
            if info.type == pyarrow.fs.FileType.Directory and re.fullmatch(r"rule=\d+|_tables", info.base_name):
                self._fs.delete_dir(info.path)

    # ------------------------------------------------------------------ tables and SQL

    def _view(self, key: tuple[str, str], columns: dict[str, np.ndarray]) -> str:
        """Write ``columns`` as Parquet under ``_tables/`` and register it as a temporary view."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        name = f"hlmrf_r{len(self._views)}" if key[0] else "hlmrf_ranks"
        self._fs.create_dir(f"{self._root}/_tables", recursive=True)
        pq.write_table(pa.table(columns), f"{self._root}/_tables/{name}.parquet", filesystem=self._fs)
        self.spark.read.parquet(f"{self._spark_root}/_tables/{name}.parquet").createOrReplaceTempView(name)
        self._views[key] = name
        return name

    def _table(self, scan: Scan) -> str:
        key = (scan.predicate, scan.relation)
        if key in self._views:
            return self._views[key]
        rows = self._relation(scan)
        cols = {f"a{j}": np.ascontiguousarray(rows[:, j], dtype=np.int64) for j in range(rows.shape[1])}
        if not cols:  # a predicate of arity 0
            cols = {"_n": np.zeros(len(rows), np.int64)}
        return self._view(key, cols)

    def _ranks(self) -> str:
        key = ("", "ranks")
        if key in self._views:
            return self._views[key]
        r = np.asarray(self._rank(), dtype=np.int64)
        return self._view(key, {"code": np.arange(len(r), dtype=np.int64), "r": r})

    # ------------------------------------------------------------------ execution

    def _write(self, plan, query: str) -> list[str]:
        """Run ``query`` on the cluster into ``rule=<k>/``; its part files, in the sort's order."""
        folder = f"rule={plan.rule}"
        self.spark.sql(query).write.mode("overwrite").parquet(f"{self._spark_root}/{folder}")
        files = _part_files(self._fs, self._root, plan.rule)
        self._written[plan.rule] = {
            "fingerprint": plan_fingerprint(plan, self._relation, self._code_of, self._rank),
            "files": [f.rsplit("/", 1)[-1] for f in files], "width": len(plan.variables)}
        return files

    def finish(self) -> None:
        """Every rule is written: the manifest (:data:`MANIFEST`) marks the folder finished, so a
        later run can read it instead of grounding again (``SparkOptions(reuse=True)``)."""
        import json

        if self._temporary:
            return
        text = json.dumps({"format": "hlmrf-spark-grounding/1",
                           "rules": {str(r): v for r, v in sorted(self._written.items())}}, indent=1)
        with self._fs.open_output_stream(f"{self._root}/{MANIFEST}") as f:
            f.write(text.encode())

    def _rule_files(self, plan) -> list[str] | None:
        """Spark runs the plan's sorted query into ``rule=<k>/``; the driver then reads the part
        files back a record batch at a time (:class:`_ParquetParts`)."""
        query = self.ordered_sql(plan)
        return None if query is None else self._write(plan, query)


class ParquetReader(_ParquetParts):
    """Reads the substitutions a finished Spark run wrote (``SparkOptions(output=DIR, reuse=True)``)
    instead of running the joins: the same interface as :class:`SparkExecutor`, no Spark.

    Each rule's part files are checked against the manifest's fingerprint of the rule as these
    rules and facts would ground it (:func:`plan_fingerprint`): a folder ground from other rules
    or facts is a :class:`~hlmrf.errors.GroundingError` naming the rule, not a wrong model.
    """

    name = "Parquet"

    def __init__(self, options: SparkOptions, relation: Callable[[Scan], np.ndarray],
                 code_of: Callable[[str], int | None], rank: Callable[[], np.ndarray]):
        import json

        check_spark(options)
        import pyarrow

        self._errors = (pyarrow.ArrowException, OSError)
        self._relation, self._code_of, self._rank = relation, code_of, rank
        self._fs, self._root, _ = _open_root(options.output)
        try:
            with self._fs.open_input_stream(f"{self._root}/{MANIFEST}") as f:
                manifest = json.loads(f.read().decode())
            self._rules = manifest["rules"]
            if not (isinstance(self._rules, dict) and all(isinstance(v, dict) for v in self._rules.values())):
                raise ValueError("not a manifest")
        except (OSError, ValueError, KeyError, TypeError):
            raise GroundingError(
                f"{options.output} holds no finished Spark grounding (no readable {MANIFEST}): ground "
                "into it first (--backend spark --spark-output DIR, without --spark-reuse), and let "
                "that run finish") from None

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        return self._errors

    @staticmethod
    def hint(message: str) -> str:
        return "check that the folder is readable and complete, or ground into it again"

    def _rule_files(self, plan) -> list[str] | None:
        """The plan's part files, checked; None for a plan without scans."""
        fingerprint = plan_fingerprint(plan, self._relation, self._code_of, self._rank)
        if fingerprint is None:
            return None
        entry = self._rules.get(str(plan.rule))
        if entry is None or entry.get("fingerprint") != fingerprint:
            why = "has no substitutions for it" if entry is None else "was ground from other rules or facts"
            raise GroundingError(
                f"rule {plan.rule + 1}: the Spark grounding being reused {why}; ground into the "
                "folder again (--backend spark --spark-output DIR without --spark-reuse)")
        files = _part_files(self._fs, self._root, plan.rule)
        if [f.rsplit("/", 1)[-1] for f in files] != entry.get("files"):
            raise GroundingError(f"rule {plan.rule + 1}: the part files of rule={plan.rule}/ are not "
                                 "the ones the Spark run wrote (changed or partly copied); ground again")
        return files


def write_grounding(program, store, options: SparkOptions) -> None:
    """Run every rule's joins on Spark into ``options.output`` and write the manifest, reading
    nothing back: the first step of a split solve, whose workers then read their shares with
    ``SparkOptions(output=..., reuse=True)``. Raises :class:`~hlmrf.errors.GroundingError` naming
    the rule when a query fails."""
    from hlmrf.grounding.ground import _Prepared

    if options.output is None:
        raise SettingsError("the workers read the Spark grounding from its folder: give --spark-output "
                            "(SparkOptions.output), a folder every worker can read")
    prep = _Prepared(program, store)
    with SparkExecutor(replace(options, reuse=False), prep.relation, prep.codes.lookup, prep.codes.rank) as ex:
        for plan in prep.plans:
            try:
                ex._rule_files(plan)  # written; the workers read them
            except ex.errors as exc:
                rule = program.rules[plan.rule]
                raise GroundingError(f"Spark failed grounding rule {plan.rule + 1} `{rule.text or rule}`: "
                                     f"{_first_line(exc)}; {ex.hint(_first_line(exc))}") from None
        ex.finish()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]

"""Grounding's joins executed by DuckDB, out of core (``ground(..., backend="duckdb")``).

The join plans of :mod:`hlmrf.grounding.plan` become SQL over integer-coded tables: each relation a
plan scans (``<predicate>_<relation>``, see the plan module) is copied once into the database as
``r<k>(a0, a1, ...)`` of constant codes; a scan is a ``FROM`` item, a shared variable an equality,
a constant an equality with its code, ``!=``/``==`` comparisons of codes, and PSL's ``%`` a
comparison of ranks in a ``ranks(code, r)`` table (the sorted order of the constants' names). A
query's result is materialised in a temporary table ordered by its columns, so DuckDB spills joins
and sorts larger than its ``memory_limit`` to ``temp_directory``, and the substitutions come back
to Python in parts of :data:`hlmrf.grounding.ground.GROUND_PART_ROWS` rows by ``rowid`` range:
grounding then holds the finished rows plus one part, whatever the size of the join.

The model has the same potentials as the in-memory executor's (tests compare canonical sorted
rows): the rows of a rule come in the sorted order of their substitutions' codes instead of the
numpy executor's join order, the same on every run. Unions (a disjunction of positive literals)
are ``UNION`` queries in sorted order, as ``np.unique`` gives them, so those rows are identical.

Importing this module does not import duckdb; :class:`DuckDBExecutor` does, and raises
:class:`~hlmrf.errors.MissingDependencyError` naming ``hlmrf[duckdb]`` without it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from hlmrf.errors import GroundingError, OutputError
from hlmrf.grounding.plan import CodedSQL, Scan, UnionPlan


@dataclass(frozen=True)
class DuckDBOptions:
    """How to run DuckDB.

    Attributes
    ----------
    database : a database file to create or reuse (its tables are replaced); None keeps it in memory
        (DuckDB still spills to ``temp_directory`` past ``memory_limit``).
    memory_limit : DuckDB's ``memory_limit`` (``"4GB"``, ``"500MB"``); None leaves DuckDB's default
        (80% of the machine's memory).
    temp_directory : where DuckDB spills; None leaves DuckDB's default (``<database>.tmp``, or
        ``.tmp`` in the working directory for an in-memory database).
    threads : DuckDB's ``threads``; None leaves its default (all cores).
    """

    database: str | None = None
    memory_limit: str | None = None
    temp_directory: str | None = None
    threads: int | None = None


class DuckDBExecutor(CodedSQL):
    """Runs join plans in one DuckDB connection (see the module docstring).

    ``relation(scan)`` returns a scan's ``(rows, arity)`` int64 code table, ``code_of`` a
    constant's code, ``rank`` each code's position in the names' sorted order.
    """

    def __init__(self, options: DuckDBOptions, relation: Callable[[Scan], np.ndarray],
                 code_of: Callable[[str], int | None], rank: Callable[[], np.ndarray]):
        from hlmrf.errors import require

        self.duckdb = require("duckdb", "duckdb")
        self.options = options
        self._relation, self._code_of, self._rank = relation, code_of, rank
        self._tables: dict[tuple[str, str], str] = {}
        self._has_ranks = False
        try:
            self.con = self.duckdb.connect(options.database or ":memory:")
        except self.duckdb.Error as exc:
            raise OutputError(f"cannot open the DuckDB database {options.database}: {_first_line(exc)}; "
                              "give --database a writable file path (or leave it out to work in memory)") from None
        settings = {"memory_limit": options.memory_limit, "temp_directory": options.temp_directory,
                    "threads": options.threads}
        for key, value in settings.items():
            if value is None:
                continue
            try:
                self.con.execute(f"SET {key} = ?", [value])
            except self.duckdb.Error as exc:
                self.con.close()
                raise GroundingError(f"DuckDB refused {key} = {value!r}: {_first_line(exc)}") from None

    name = "DuckDB"

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        """The exceptions a query can raise; grounding turns them into a GroundingError naming the rule."""
        return (self.duckdb.Error,)

    @staticmethod
    def hint(message: str) -> str:
        """What to do about a failed query, from its first line."""
        if any(w in message.lower() for w in ("memory", "space", "disk")):
            return "raise --memory-limit, or point --temp-directory at a disk with more room"
        return "this is a bug if the in-memory backend grounds the rule: please report it"

    def close(self) -> None:
        for name in self._tables.values():
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
        self.con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ tables and SQL

    def _table(self, scan: Scan) -> str:
        key = (scan.predicate, scan.relation)
        if key not in self._tables:
            name = f"hlmrf_r{len(self._tables)}"
            rows = self._relation(scan)
            cols = {f"a{j}": np.ascontiguousarray(rows[:, j], dtype=np.int64) for j in range(rows.shape[1])}
            if not cols:  # a predicate of arity 0
                cols = {"_n": np.zeros(len(rows), np.int64)}
            self.con.register("hlmrf_src", cols)
            self.con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM hlmrf_src")
            self.con.unregister("hlmrf_src")
            self._tables[key] = name
        return self._tables[key]

    def _ranks(self) -> str:
        if not self._has_ranks:
            r = np.asarray(self._rank(), dtype=np.int64)
            self.con.register("hlmrf_src", {"code": np.arange(len(r), dtype=np.int64), "r": r})
            self.con.execute("CREATE OR REPLACE TABLE hlmrf_ranks AS SELECT * FROM hlmrf_src")
            self.con.unregister("hlmrf_src")
            self._tables[("", "ranks")] = "hlmrf_ranks"
            self._has_ranks = True
        return "hlmrf_ranks"

    # ------------------------------------------------------------------ execution

    def _fetch(self, query: str, width: int) -> np.ndarray:
        out = self.con.execute(query).fetchnumpy()
        cols = [np.asarray(out[f"v{i}"], dtype=np.int64) for i in range(width)]
        n = len(next(iter(out.values()))) if out else 0
        return np.stack(cols, axis=1) if cols else np.zeros((n, 0), np.int64)

    def execute(self, plan, fallback: Callable[[object], np.ndarray]) -> np.ndarray:
        """All of the plan's substitutions at once (arithmetic rules); ``fallback(plan)`` runs a
        plan without scans."""
        query = self.ordered_sql(plan)
        if query is None:
            return fallback(plan)
        return self._fetch(query, len(plan.variables))

    def parts(self, plan, part_rows: int, fallback: Callable[[object], np.ndarray]) -> Iterator[np.ndarray]:
        """The plan's substitutions in parts of at most ``part_rows`` rows, in order: the result is
        materialised (spilling past the memory limit) and read back by ``rowid`` range."""
        query = self.ordered_sql(plan)
        if query is None:
            yield fallback(plan)
            return
        width = len(plan.variables)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE hlmrf_result AS {query}")
        try:
            total = int(self.con.execute("SELECT count(*) FROM hlmrf_result").fetchone()[0])
            if total == 0:
                yield np.zeros((0, width), np.int64)
            for lo in range(0, total, part_rows):
                yield self._fetch(f"SELECT * FROM hlmrf_result WHERE rowid >= {lo} AND rowid < "
                                  f"{lo + part_rows} ORDER BY rowid", width)
        finally:  # also when grounding stops early (an error in the rule's rows)
            try:
                self.con.execute("DROP TABLE IF EXISTS hlmrf_result")
            except self.duckdb.Error:  # the connection is already closed
                pass

    def estimate(self, plan) -> int | None:
        """DuckDB's own estimate of the plan's row count (its optimizer's cardinality), or None."""
        parts = plan.parts if isinstance(plan, UnionPlan) else (plan,)
        total = 0
        for p in parts:
            q = self.sql(p)
            if q is None:
                return None
            try:
                text = "\n".join(str(r[-1]) for r in self.con.execute(f"EXPLAIN {q}").fetchall())
            except self.duckdb.Error:
                return None
            est = _top_estimate(text)
            if est is None:
                return None
            total += est
        return total


def _top_estimate(explain: str) -> int | None:
    """The first (root) ``~N rows`` / ``EC: N`` cardinality in an EXPLAIN rendering."""
    import re

    m = re.search(r"~\s*([\d,]+)\s*row", explain) or re.search(r"EC:\s*([\d,]+)", explain)
    return int(m.group(1).replace(",", "")) if m else None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]

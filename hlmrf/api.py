"""The high-level API: rules and facts in, MAP state, metrics and files out.

``infer`` runs the pipeline stage by stage (ground -> normalise -> solve) and returns a value
holding every stage's output, so callers can look at the model, the solver's info record, per-rule
energies and metrics. File reading lives in ``load_rules``/``load_facts``; writing in
:mod:`hlmrf.data.writer`.
"""
from __future__ import annotations

import os
import time
from typing import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hlmrf.data.arities import rule_arities, rules_own_arities
from hlmrf.data.loader import load_facts as _load_facts
from hlmrf.data.store import FactStore
from hlmrf.data.writer import write_results
from hlmrf.errors import InfeasibleError, SettingsError
from hlmrf.evaluation.metrics import evaluate
from hlmrf.grounding.ground import DEFAULT_MAX_GROUND_RULES, RuleEstimate, ground
from hlmrf.inference import solve
from hlmrf.inference.feasibility import hard_constraints_feasible
from hlmrf.infra.memory import release_free_memory
from hlmrf.inference.result import Result, Status
from hlmrf.inference.settings import AdmmSettings
from hlmrf.language.ast import Program
from hlmrf.language.parser import parse_rules
from hlmrf.model.hlmrf import HLMRF
from hlmrf.model.printer import describe_row


def load_rules(path: str | os.PathLike) -> Program:
    """Read and parse a ``.psl`` rule file (errors name the file, line and column)."""
    from hlmrf.data.loader import read_text_file

    return parse_rules(read_text_file(path, "rule file"), str(path))


def load_facts(directory: str | os.PathLike, program: Program | None = None) -> FactStore:
    """Load a facts directory; the program's predicate arities decide what a last column is.

    A predicate used with two arities in the rules, or whose files disagree with the rules' arity
    on every line, is a :class:`~hlmrf.errors.RuleError` at the rule atom (naming the file).
    """
    if program is None:
        return _load_facts(directory, None)
    used = rule_arities(program)
    with rules_own_arities(program):
        store = _load_facts(directory, {k: a for k, (_, a, _) in used.items()})
    if program is not None:
        # A predicate of the rules whose files are all empty is still known (and closed).
        for key, (name, arity, _) in used.items():
            if store.get(key) is None and _has_files(directory, key):
                store.declare(key, arity)
            if store.get(key) is not None:
                store.get(key).name = name  # messages use the rules' spelling
    return store


def _has_files(directory, key: str) -> bool:
    from hlmrf.data.loader import find_fact_files

    return key in find_fact_files(directory)


@dataclass(frozen=True)
class Inference:
    """Everything one inference run produced."""

    program: Program
    store: FactStore
    model: HLMRF
    result: Result
    ground_seconds: float

    @property
    def y(self) -> np.ndarray:
        return self.result.y

    def values(self, predicate: str) -> dict[tuple[str, ...], float]:
        """``{(arg, ...): value}`` for the target atoms of an open predicate."""
        key = predicate.upper()
        name = next((p for p in self.model.index.predicates if p.upper() == key), None)
        if name is None:
            raise KeyError(f"{predicate} is not an open predicate of this model "
                           f"(open: {', '.join(self.model.index.predicates) or 'none'})")
        args, cols = self.model.index.atoms(name)
        names = self.model.index.constants
        return {tuple(names[c] for c in row): float(v) for row, v in zip(args, self.y[cols])}

    def energy_by_rule(self) -> np.ndarray:
        return self.model.energy_by_rule(self.y)

    def metrics(self, threshold: float = 0.5) -> dict[str, dict]:
        return evaluate(self.model, self.y, self.store, threshold)

    def write(self, directory: str | os.PathLike) -> list[Path]:
        return write_results(directory, self.model, self.y)


def _session(share: tuple[int, int]):
    """The communicator of the distributed session a worker's ``share`` is ground and solved in
    (:func:`hlmrf.distributed.comm.session` sets it); a :class:`SettingsError` when there is none
    of that many workers."""
    from hlmrf.inference.admm import COMMUNICATOR

    comm = COMMUNICATOR.get()
    if comm is None or comm.size != share[1]:
        raise SettingsError(f"a share {share} of a model is ground and solved inside a distributed "
                            "session of that many workers (hlmrf.distributed.session); none is open")
    return comm


def _spark_once(program, store, spark, share):
    """A split solve with Spark: worker 0 runs the joins into ``spark.output``, and every worker
    then reads its share from there (the options returned). A failure on worker 0 fails all."""
    from dataclasses import replace as _replace

    from hlmrf.errors import GroundingError
    from hlmrf.grounding.spark_backend import SparkOptions, write_grounding

    comm = _session(share)
    spark = spark or SparkOptions()
    if spark.output is None:
        raise SettingsError("with several workers, Spark writes the substitutions to a folder every "
                            "worker reads: give --spark-output (SparkOptions.output) a shared folder")
    failed = None
    if comm.rank == 0:
        try:
            write_grounding(program, store, spark)
        except Exception as exc:  # every worker waits below: tell them, then raise it here
            failed = exc
    if comm.sum(np.array([0.0 if failed is None else 1.0]))[0] > 0:
        if failed is not None:
            raise failed
        raise GroundingError("worker 0 failed grounding with Spark (its message says why)")
    return _replace(spark, reuse=True)


def _whole_largest_weight(model: HLMRF) -> float:
    """The largest weight of the whole model a worker holds ``model`` (a share) of: a
    max-reduction over the session's workers; 1.0 when no row has a positive weight, as
    :meth:`~hlmrf.model.hlmrf.HLMRF.normalized` divides."""
    top = float(_session(model.share).max(np.array([model.w.max(initial=0.0)]))[0])
    return top if top > 0 else 1.0


def infer(program: Program, store: FactStore, settings: AdmmSettings | None = None, *,
          solver: str = "admm", device: str = "cpu", dtype: str = "float64",
          callback: Callable[[int, float, float], None] | None = None,
          keep_substitutions: bool = False,
          max_ground_rules: int | None = DEFAULT_MAX_GROUND_RULES,
          on_estimate: Callable[[RuleEstimate], None] | None = None,
          backend: str = "numpy", duckdb=None, spark=None, share: tuple[int, int] | None = None) -> Inference:
    """Ground ``program`` on ``store`` and find the MAP state.

    Weights are divided by the largest first when ``settings.normalize_weights`` (the reference
    engine's default); the reported energy is of that normalised model.

    ``keep_substitutions`` keeps each row's substitution in ``model.index`` (for printing
    ground rules, :func:`hlmrf.model.printer.ground_rule_text`). ``max_ground_rules`` (None: no
    limit), ``on_estimate`` (called with each rule's
    :class:`~hlmrf.grounding.ground.RuleEstimate` before grounding), ``backend`` (``"numpy"``,
    ``"duckdb"`` or ``"spark"``), ``duckdb`` (its :class:`~hlmrf.grounding.duckdb_backend.DuckDBOptions`)
    and ``spark`` (its :class:`~hlmrf.grounding.spark_backend.SparkOptions`) are
    :func:`hlmrf.ground`'s; so is ``share=(k, N)``, which grounds only worker ``k``'s share for a
    distributed solve (call it on every worker inside :func:`hlmrf.distributed.comm.session`; the
    result's model is then that worker's share, ``y`` and the certificate the whole model's).

    Raises
    ------
    GroundingError : the rules would ground more than ``max_ground_rules`` rules (nothing is
        grounded), among the other grounding errors.
    InfeasibleError : the hard constraints cannot all hold; the message lists violated ones.
    """
    settings = settings or AdmmSettings()
    t0 = time.perf_counter()
    if share is not None and share[1] > 1 and backend == "spark" and not (spark and spark.reuse):
        spark = _spark_once(program, store, spark, share)
    model = ground(program, store, keep_substitutions=keep_substitutions,
                   max_ground_rules=max_ground_rules, on_estimate=on_estimate, backend=backend,
                   duckdb=duckdb, spark=spark, share=share)
    t_ground = time.perf_counter() - t0
    if settings.normalize_weights:
        model = model.normalized(None if share is None else _whole_largest_weight(model))
    release_free_memory()  # grounding's freed temporaries, before the solver allocates its own
    result = solve(model, solver, settings, device=device, dtype=dtype, callback=callback)
    if result.status == Status.INFEASIBLE or result.violation > 10 * settings.constraint_tol:
        # Split, a worker's share cannot tell whether the whole model's hard constraints can hold
        # (its own may, another's not): every worker checks all of them, gathered (the result,
        # and so this branch, is the same on every worker). ADMM's INFEASIBLE comes from the same
        # linear program on the same rows (admm.INFEASIBILITY_CHECK_AFTER): not run twice.
        hard = model if share is None or share[1] == 1 else _gathered_hard_rows(model)
        if (result.status == Status.INFEASIBLE and result.solver == "admm") or not hard_constraints_feasible(hard):
            _infeasible(hard, result.y, settings.constraint_tol)
    return Inference(program, store, model, result, t_ground)


def _gathered_hard_rows(model: HLMRF) -> HLMRF:
    from hlmrf.inference.admm import gather_hard_rows

    return gather_hard_rows(model, _session(model.share))


def _infeasible(model: HLMRF, y: np.ndarray, tol: float):
    """Raise the :class:`InfeasibleError` listing the worst violated hard rows of ``model`` at ``y``."""
    rows = model.violated_rows(y, tol)
    worst = rows[np.argsort(-np.abs(model.distance(y)[rows]))][:5]
    listing = "\n".join("  " + describe_row(model, int(i), y=y) for i in worst)
    raise InfeasibleError(
        f"the hard constraints cannot all hold at once: no assignment in [0, 1] satisfies them. "
        f"{len(rows)} ground constraint(s) are violated at the solver's best point, e.g.:\n"
        f"{listing}\nRelax one of these rules (give it a weight) or fix the observations.")

"""The reference engine's command-line habits, translated for ``hlmrf-infer`` and ``hlmrf-learn``.

LINQS PSL users type ``--config FILE`` (2.4), ``--model FILE --data FILE`` (2.x), ``--eval
DiscreteEvaluator``, ``--groundrules`` and ``-D admmreasoner.maxiterations=50``. This module maps
those spellings onto hlmrf's own options, once, for both commands: which inputs the arguments
name, which reference option names we honour (and as what), which we know and ignore with a
warning, and which metrics each evaluator name selects. ``docs/reference_engine.md`` is the table
of the same facts; a test keeps the two in step. It does not run anything or read files.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from importlib import metadata

from hlmrf.errors import SettingsError

__all__ = ["ADMM_OPTIONS", "CLI_OPTIONS", "LEARN_OPTIONS", "IGNORED_OPTIONS", "EVALUATORS",
           "Translated", "add_version", "version_text", "translate_options", "evaluator_metrics",
           "input_paths", "add_input_arguments", "ignored_message"]


def version_text() -> str:
    """``hlmrf <version>`` of the installed distribution (``--version`` of every command)."""
    try:
        version = metadata.version("hlmrf")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        from hlmrf import __version__ as version
    return f"hlmrf {version}"


def add_max_ground_rules(parser: argparse.ArgumentParser) -> None:
    """``--max-ground-rules N|none``, shared by hlmrf-infer and hlmrf-learn."""
    from hlmrf.grounding.ground import DEFAULT_MAX_GROUND_RULES

    parser.add_argument("--max-ground-rules", type=_ground_rule_limit, default=DEFAULT_MAX_GROUND_RULES,
                        metavar="N", help="refuse, before grounding, rules that would ground more than "
                                          f"N rules in all (default {DEFAULT_MAX_GROUND_RULES}; `none`: "
                                          "no limit)")


def add_grounding_backend(parser: argparse.ArgumentParser, spark: bool = False) -> None:
    """``--backend numpy|duckdb`` and DuckDB's options (issue 15); with ``spark``, also
    ``--backend spark`` and its ``--spark-master``/``--spark-output``."""
    g = parser.add_argument_group("grounding backend")
    g.add_argument("--backend", choices=["numpy", "duckdb"] + (["spark"] if spark else []), default="numpy",
                   help="run grounding's joins in memory with numpy (default), or in DuckDB, which "
                        "spills joins larger than --memory-limit to disk (pip install 'hlmrf[duckdb]')"
                        + (", or as Spark SQL, locally or on a cluster (pip install 'hlmrf[spark]'; "
                           "needs Java 17+)" if spark else ""))
    g.add_argument("--database", metavar="PATH",
                   help="DuckDB database file to create (its tables are replaced); default: in memory")
    g.add_argument("--memory-limit", type=_memory_size, metavar="SIZE",
                   help="DuckDB's memory limit, e.g. 4GB or 500MB (default: 80%% of the machine's memory)")
    g.add_argument("--temp-directory", metavar="DIR",
                   help="where DuckDB spills past its memory limit (default: DuckDB's, beside the database)")
    g.add_argument("--duckdb-threads", type=int, metavar="N", help="DuckDB's threads (default: all cores)")
    if spark:
        g.add_argument("--spark-master", metavar="URL",
                       help="Spark's master: local[N] (default local[2]), spark://host:7077, yarn, ...")
        g.add_argument("--spark-output", metavar="DIR",
                       help="folder (or hdfs://, s3a:// URI) for the Parquet of each rule's substitutions, "
                            "kept as rule=<k>/; a cluster and this machine must both read it "
                            "(default: a temporary local folder, removed afterwards)")
        g.add_argument("--spark-conf", action="append", type=_spark_conf, metavar="KEY=VALUE",
                       help="a Spark setting for the session hlmrf starts, e.g. spark.executor.memory=8g "
                            "(repeatable; SparkOptions.conf)")
        g.add_argument("--spark-reuse", action="store_true", default=None,
                       help="read the substitutions an earlier --backend spark run wrote to --spark-output "
                            "(checked against these rules and facts) instead of running Spark again")


def grounding_backend(args: argparse.Namespace) -> dict:
    """The ``backend=``/``duckdb=``/``spark=`` keywords of :func:`hlmrf.ground` from the parsed
    options; a backend's option without that backend is an error. Neither duckdb nor pyspark is
    imported here: :func:`check_grounding_backend` checks the chosen backend's dependencies."""
    from hlmrf.errors import SettingsError

    db = {"database": args.database, "memory_limit": args.memory_limit,
          "temp_directory": args.temp_directory, "threads": args.duckdb_threads}
    sp = {"master": getattr(args, "spark_master", None), "output": getattr(args, "spark_output", None),
          "reuse": getattr(args, "spark_reuse", None),
          "conf": tuple(getattr(args, "spark_conf", None) or ()) or None}
    flags = {"duckdb": {"--database": args.database, "--memory-limit": args.memory_limit,
                        "--temp-directory": args.temp_directory, "--duckdb-threads": args.duckdb_threads},
             "spark": {"--spark-master": sp["master"], "--spark-output": sp["output"],
                       "--spark-reuse": sp["reuse"], "--spark-conf": sp["conf"]}}
    for backend, options in flags.items():
        given = [flag for flag, value in options.items() if value is not None]
        if args.backend != backend and given:
            raise SettingsError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} only to "
                                f"--backend {backend}; add --backend {backend} or drop "
                                f"{'it' if len(given) == 1 else 'them'}")
    if args.backend == "spark":
        from hlmrf.grounding.spark_backend import SparkOptions

        return {"backend": "spark", "spark": SparkOptions(**{k: v for k, v in sp.items() if v is not None})}
    if args.backend != "duckdb":
        return {}
    if args.duckdb_threads is not None and args.duckdb_threads < 1:
        raise SettingsError(f"--duckdb-threads must be at least 1, not {args.duckdb_threads}")
    from hlmrf.grounding.duckdb_backend import DuckDBOptions

    return {"backend": "duckdb", "duckdb": DuckDBOptions(**db)}


def check_grounding_backend(backend: dict) -> None:
    """The chosen backend's dependencies (and Spark's Java and output folder), before any input is
    read: a :class:`~hlmrf.errors.MissingDependencyError` or :class:`~hlmrf.errors.SettingsError`
    that says how to fix it."""
    if backend.get("backend") == "duckdb":
        from hlmrf.errors import require

        require("duckdb", "duckdb")
    elif backend.get("backend") == "spark":
        from hlmrf.grounding.spark_backend import check_spark

        check_spark(backend["spark"])


def _spark_conf(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE such as spark.executor.memory=8g, not {text[:60]!r}")
    return key.strip(), value.strip()


def _memory_size(text: str) -> str:
    import re

    if not re.fullmatch(r"\s*\d+(\.\d+)?\s*([KMGT]i?B|B)\s*", text, flags=re.IGNORECASE):
        raise argparse.ArgumentTypeError(f"expected a size such as 4GB, 500MB or 2GiB, not {text[:40]!r}")
    return text.strip()


def _ground_rule_limit(text: str):
    if text.strip().lower() in ("none", "unlimited"):
        return None
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of ground rules or `none`, not {text!r}")
    return value


def add_version(parser: argparse.ArgumentParser) -> None:
    """Add ``--version``, which prints ``hlmrf <version>`` and exits 0."""
    parser.add_argument("--version", action="version", version=version_text())


# Reference option name -> hlmrf ADMM setting (AdmmSettings field).
ADMM_OPTIONS = {
    "admmreasoner.maxiterations": "max_iter",
    "admmreasoner.epsilonabs": "eps_abs",
    "admmreasoner.epsilonrel": "eps_rel",
    "admmreasoner.stepsize": "rho",
    "inference.normalize": "normalize_weights",
    "parallel.numthreads": "threads",
}
# Reference option name -> a setting of the command itself (the value is parsed by the command).
CLI_OPTIONS = {
    "discreteevaluator.threshold": "threshold",
    "rankingevaluator.threshold": "threshold",
    "categoricalevaluator.categoryindexes": "category_indexes",
}
# Reference weight-learning option name -> hlmrf-learn flag (voted perceptron only).
LEARN_OPTIONS = {
    "votedperceptron.numsteps": "epochs",
    "votedperceptron.stepsize": "step_size",
    "votedperceptron.l2": "l2",
}
# Reference options that hlmrf knows and ignores, with the reason shown in the warning.
IGNORED_OPTIONS = {
    "admmreasoner.computeperiod": "hlmrf checks convergence every check_every iterations "
                                  "(-D check_every=N)",
    "admmreasoner.objectivebreak": "hlmrf stops on its residuals and certified gap",
    "admmreasoner.initialconsensusvalue": "hlmrf starts every variable at its own start value",
    "admmreasoner.initiallocalvalue": "hlmrf starts every variable at its own start value",
    "inference.reasoner": "the solver is chosen with --solver",
    "inference.termstore": "hlmrf keeps potentials as arrays in memory",
    "inference.termgenerator": "hlmrf grounds to arrays directly",
    "inference.relaxhardconstraints": "hard constraints stay hard in hlmrf",
    "inference.skipinference": "hlmrf-infer always infers",
    "random.seed": "hlmrf's ADMM is deterministic",
    "runtime.db.intids": "hlmrf interns constants itself",
    "runtime.db.type": "hlmrf keeps facts in memory, not in a database",
    "runtime.log.level": "hlmrf prints a summary; -q silences it, -v adds estimates",
    "log4j.threshold": "hlmrf prints a summary; -q silences it, -v adds estimates",
    "discreteevaluator.representative": "every metric of a chosen evaluator is printed",
    "continuousevaluator.representative": "every metric of a chosen evaluator is printed",
    "rankingevaluator.representative": "every metric of a chosen evaluator is printed",
    "categoricalevaluator.representative": "every metric of a chosen evaluator is printed",
    "votedperceptron.averagesteps": "hlmrf's perceptron averages its steps always",
    "votedperceptron.zeroinitialweights": "use --init uniform or the rules' weights",
    "votedperceptron.clipnegativeweights": "use --allow-negative",
    "votedperceptron.scalegradient": "not available",
}

# Evaluator name (the reference's class name, with or without its package) -> metric keys.
EVALUATORS = {
    "DiscreteEvaluator": ("accuracy", "precision", "recall", "f1"),
    "ContinuousEvaluator": ("mae", "mse"),
    "RankingEvaluator": ("auroc", "auprc"),
    "CategoricalEvaluator": ("categorical_accuracy",),
}


@dataclass(frozen=True)
class Translated:
    """``-D`` options split by who takes them."""

    admm: list  # "field=value" strings for AdmmSettings.from_options
    cli: dict  # command setting -> text value
    learn: dict  # learner flag -> text value
    ignored: list  # (reference name, why hlmrf ignores it)


def translate_options(options, *, learn: bool = False, source: str = "-D") -> Translated:
    """Split ``KEY=VALUE`` strings into ADMM settings, command settings and ignored names.

    hlmrf's own ADMM names pass through (AdmmSettings validates them); reference names we honour
    are renamed; reference names we know and ignore are listed in ``ignored`` with the reason
    (the command prints :func:`ignored_message`); any other dotted name is a
    :class:`SettingsError` that lists the reference names we take.
    """
    admm, cli, learn_opts, ignored, unknown = [], {}, {}, [], []
    for opt in options:
        if "=" not in opt:
            raise SettingsError(f"option {opt!r} must look like KEY=VALUE, e.g. max_iter=5000 or "
                                "admmreasoner.maxiterations=5000")
        key, value = (s.strip() for s in opt.split("=", 1))
        low = key.lower()
        if low in ADMM_OPTIONS:
            admm.append(f"{ADMM_OPTIONS[low]}={value}")
        elif low in CLI_OPTIONS:
            cli[CLI_OPTIONS[low]] = value
        elif learn and low in LEARN_OPTIONS:
            learn_opts[LEARN_OPTIONS[low]] = value
        elif low in IGNORED_OPTIONS or (not learn and low in LEARN_OPTIONS):
            ignored.append((key, IGNORED_OPTIONS.get(low, "it applies to weight learning, "
                                                          "in hlmrf-learn")))
        elif "." in key:
            unknown.append(key)
        else:
            admm.append(f"{key}={value}")
    if unknown:
        taken = sorted(ADMM_OPTIONS) + sorted(CLI_OPTIONS) + (sorted(LEARN_OPTIONS) if learn else [])
        raise SettingsError(f"unknown reference option(s) {', '.join(unknown)} in {source}; the "
                            f"reference names hlmrf takes are {', '.join(taken)}, besides hlmrf's own "
                            "ADMM option names such as max_iter (see docs/reference_engine.md)")
    return Translated(admm, cli, learn_opts, ignored)


def ignored_message(command: str, ignored, source: str = "-D") -> str:
    """The warning a command prints for the reference options it ignores."""
    return "\n".join(f"{command}: warning: ignoring {source} {key}: a reference-engine option "
                     f"hlmrf does not honour ({why}); see docs/reference_engine.md"
                     for key, why in ignored)


def evaluator_metrics(names) -> list[str]:
    """The metric keys that ``--eval NAME...`` selects, in order, without repeats.

    Accepts the reference's class names with or without their package
    (``org.linqs.psl.evaluation.statistics.DiscreteEvaluator``), in any case, and the short
    forms ``discrete``, ``continuous``, ``ranking``, ``categorical``.
    """
    by_name = {}
    for cls, keys in EVALUATORS.items():
        by_name[cls.lower()] = keys
        by_name[cls[: -len("Evaluator")].lower()] = keys
    out: list[str] = []
    for name in names:
        short = str(name).rsplit(".", 1)[-1].lower()
        if short not in by_name:
            raise SettingsError(f"--eval {name}: not an evaluator hlmrf knows; use "
                                f"{', '.join(EVALUATORS)} (see docs/reference_engine.md)")
        out += [k for k in by_name[short] if k not in out]
    return out


def input_paths(args, command: str) -> tuple[str, str | None]:
    """The ``(first, second)`` inputs of ``load_inputs`` from the positional arguments,
    ``--config`` or ``--model``/``--data``; mixing two of these ways is an error."""
    positional = [p for p in (args.rules, args.facts) if p is not None]
    ways = [w for w, given in (("RULES [FACTS]", bool(positional)),
                               ("--config", args.config is not None),
                               ("--model/--data", args.model is not None or args.data is not None))
            if given]
    if len(ways) > 1:
        raise SettingsError(f"{' and '.join(ways)} both name the inputs; give one of them")
    if not ways:
        raise SettingsError(f"no inputs: give RULES and FACTS (a folder or a .data file), "
                            f"--config FILE, or --model FILE --data FILE (see {command} --help)")
    if args.config is not None:
        return args.config, None
    if args.model is not None or args.data is not None:
        if args.model is None or args.data is None:
            raise SettingsError("--model and --data go together: the rule file and the .data file")
        return args.model, args.data
    if args.facts is None and command == "hlmrf-learn" and not str(args.rules).lower().endswith(
            (".json", ".yaml", ".yml")):
        raise SettingsError("hlmrf-learn needs RULES and FACTS (a folder or a .data file), or a "
                            "JSON/YAML config")
    return args.rules, args.facts


def add_input_arguments(ap: argparse.ArgumentParser, facts_help: str) -> None:
    """The positional inputs and their reference spellings, shared by both commands."""
    ap.add_argument("rules", nargs="?", default=None,
                    help="rule file in PSL syntax (.psl), or a JSON/YAML config alone")
    ap.add_argument("facts", nargs="?", default=None, help=facts_help)
    ap.add_argument("--config", metavar="FILE",
                    help="a JSON/YAML model config (the reference's 2.4 --config), instead of RULES")
    ap.add_argument("--model", metavar="FILE", help="the rule file (the reference's 2.x --model); "
                                                    "goes with --data")
    ap.add_argument("--data", metavar="FILE", help="the .data file or facts folder (the "
                                                   "reference's 2.x --data); goes with --model")

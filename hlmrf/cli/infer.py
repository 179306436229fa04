"""``hlmrf-infer RULES FACTS_DIR|DATA_FILE`` or ``hlmrf-infer CONFIG``: MAP inference from the shell.

The inputs are a rule file and a facts directory, a rule file and a PSL 2.x ``.data`` file, or
one JSON/YAML config holding rules and data (see ``docs/data_formats.md``); outputs are PSL-style,
values in full precision. The reference engine's spellings work too (``--config``, ``--model``/
``--data``, ``--eval DiscreteEvaluator``, ``--groundrules``, ``-D admmreasoner.maxiterations=N``;
:mod:`hlmrf.cli.reference` and ``docs/reference_engine.md``).

The command prints a short summary (atoms, potentials per rule, iterations, energy, seconds) and,
when truth files exist, accuracy and F1 at the threshold, MAE, MSE and AUROC. Every option and
output path is checked before any work; the output folder is published whole in one step
(:class:`hlmrf.infra.publish.FileSet`). Exit status (:mod:`hlmrf.infra.cli`): 0 on success, 1 when
an output cannot be written (or the system fails: disk full, out of memory), 2 with a one-line
cause (plus the caret excerpt for rule errors) on bad input, 3 when the model is infeasible or the
solver fails, 130 when interrupted.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import math
import os

from hlmrf.cli.reference import (ADMM_OPTIONS, add_grounding_backend, add_input_arguments, add_max_ground_rules,
                                 add_version, check_grounding_backend, evaluator_metrics, grounding_backend,
                                 ignored_message, input_paths, translate_options)
from hlmrf.errors import SettingsError
from hlmrf.inference.settings import AdmmSettings
from hlmrf.infra.cli import run_cli


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="hlmrf-infer",
        description="MAP inference for a PSL model: ground RULES on the facts in FACTS (a folder "
                    "or a .data file), or run a JSON/YAML CONFIG, and write one <PREDICATE>.txt "
                    "per open predicate.",
        epilog="examples: hlmrf-infer examples/smokers/rules.psl examples/smokers/facts -o out/ ; "
               "hlmrf-infer model.psl model.data ; hlmrf-infer model.json ; "
               "hlmrf-infer --model model.psl --data model.data --eval DiscreteEvaluator")
    add_input_arguments(ap, "facts directory with <predicate>_{obs,targets,truth}.txt files, or "
                            "a PSL .data file (omit when RULES is a config)")
    ap.add_argument("-o", "--output", default="inferred-predicates",
                    help="output directory (default: ./inferred-predicates)")
    ap.add_argument("--solver", choices=["admm", "torch", "cvxpy"], default="admm",
                    help="admm (numpy, default), torch (batched ADMM on --device), cvxpy (exact, slow)")
    ap.add_argument("--device", default="cpu", help="torch device for --solver torch (cpu, cuda)")
    ap.add_argument("--dtype", default="float64", choices=["float32", "float64"],
                    help="torch dtype for --solver torch")
    ap.add_argument("-D", "--option", action="append", default=[], metavar="KEY=VALUE",
                    help="an ADMM setting, e.g. -D max_iter=5000 -D eps_rel=1e-4, or the reference's "
                         "name, e.g. -D admmreasoner.maxiterations=5000 (repeatable; "
                         "docs/reference_engine.md lists them)")
    ap.add_argument("--check", action="store_true",
                    help="also solve with cvxpy and report the largest value difference and energy gap")
    ap.add_argument("--threshold", type=threshold, default=0.5,
                    help="threshold of discrete metrics, in [0, 1] (default 0.5)")
    ap.add_argument("--eval", nargs="+", metavar="EVALUATOR",
                    help="print only these evaluators' metrics: DiscreteEvaluator (accuracy, "
                         "precision, recall, F1), ContinuousEvaluator (MAE, MSE), RankingEvaluator "
                         "(AUROC, AUPRC), CategoricalEvaluator (categorical accuracy, category = "
                         "last argument); default: accuracy, F1, MAE, MSE, AUROC")
    ap.add_argument("--ground-rules", "--groundrules", dest="ground_rules", nargs="?", const="-",
                    metavar="FILE", help="write every ground potential in readable form to FILE "
                                         "(no FILE: to standard output, as the reference does)")
    ap.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="also print each rule's estimated number of ground rules before grounding")
    ap.add_argument("--workers", type=workers, default=1, metavar="N",
                    help="solve on N local worker processes (distributed ADMM over torch.distributed, "
                         "gloo; needs torch); same answer as one process. Under torchrun, omit it: "
                         "torchrun --nproc-per-node N -m hlmrf.cli.infer ... (docs/solvers.md)")
    ap.add_argument("--split-grounding", action="store_true",
                    help="with --workers N or torchrun: each worker grounds and holds only its share "
                         "of the ground rules (about 1/N of the joins and of the model), instead of the "
                         "whole model each; polishing is off (the projection onto the hard constraints "
                         "stays), and --ground-rules and --check are refused (they need the whole model)")
    add_max_ground_rules(ap)
    add_grounding_backend(ap, spark=True)
    add_version(ap)
    return ap


def workers(text: str) -> int:
    """An argparse type: a whole number of workers >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of workers >= 1, not {text[:80]!r}")
    return value


def threshold(text: str) -> float:
    """An argparse type: a finite number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], not {text[:80]!r}")
    return value


def check_device(solver: str, device: str) -> None:
    """Refuse, before any work, a ``--device`` that the chosen solver cannot use.

    torch is imported only for ``--solver torch``.
    """
    if solver != "torch":
        if device != "cpu":
            raise SettingsError(f"--device {device[:80]} applies only to --solver torch; add "
                                "--solver torch or drop --device")
        return
    from hlmrf.errors import require

    torch = require("torch", "torch")
    n_cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    valid = ["cpu"] + (["cuda"] + [f"cuda:{i}" for i in range(n_cuda)] if n_cuda else [])
    listing = f"valid devices here: {', '.join(valid)}"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise SettingsError(f"--device {device[:80]!r} is not a torch device; {listing}") from None
    if dev.type == "cpu":
        return
    if dev.type == "cuda":
        if not n_cuda:
            raise SettingsError(f"--device {device} asks for CUDA, but this torch build "
                                f"({torch.__version__}) sees no CUDA GPU; {listing}")
        if dev.index is not None and dev.index >= n_cuda:
            raise SettingsError(f"--device {device}: there are only {n_cuda} CUDA device(s); "
                                f"{listing}")
        return
    raise SettingsError(f"--device {device[:80]} is not supported by the torch solver; {listing}")


def check_outputs(args) -> None:
    """Every output path of ``hlmrf-infer``, checked before loading, grounding or solving."""
    from hlmrf.errors import OutputError
    from hlmrf.infra.publish import check_output_dir, check_output_file

    out = check_output_dir(args.output)
    if args.ground_rules and args.ground_rules != "-":
        gr = check_output_file(args.ground_rules)
        if os.path.abspath(gr) == str(out):
            raise OutputError("is also the --output folder; name another file for "
                              "--ground-rules", gr)


def _check_worker_options(args, workers: int | None = None) -> None:
    """What several workers refuse, before any work: checked by the command that launches them
    (``workers``: ``--workers N``) and again by each worker (default: the environment's)."""
    from hlmrf.distributed.launch import check_solver, check_split

    check_solver(args.solver, workers, args.database)
    check_split(args.split_grounding, args.workers, args.ground_rules, args.check)
    _check_spark_workers(args, workers)


def _check_spark_workers(args, workers: int | None = None) -> None:
    """Workers that each ground the whole model cannot share one --spark-output folder (each would
    write every rule's Parquet there); split, worker 0 writes it and all read it, so it is needed."""
    from hlmrf.distributed.launch import world_size

    if args.backend != "spark" or (workers or world_size()) <= 1 or args.spark_reuse:
        return
    if args.split_grounding:
        if args.spark_output is None:
            raise SettingsError("--split-grounding with --backend spark: worker 0 grounds into "
                                "--spark-output and every worker reads its share from there; give "
                                "--spark-output a folder every worker can read")
        return
    if args.spark_output is not None:
        raise SettingsError(f"--spark-output {args.spark_output[:80]}: every worker grounds the model in "
                            "its own Spark application, and they cannot share one output folder; drop "
                            "--spark-output (a temporary folder each) or run on one worker")


def category_indexes(text: str) -> tuple[int, ...]:
    """``categoricalevaluator.categoryindexes``: comma-separated 0-based argument positions."""
    try:
        out = tuple(int(t) for t in str(text).replace(" ", "").split(",") if t)
    except ValueError:
        out = ()
    if not out:
        raise SettingsError(f"categoricalevaluator.categoryindexes={str(text)[:80]!r}: expected "
                            "argument positions such as 1 or 0,2")
    return out


def _command_settings(args, cli: dict) -> tuple[float, object]:
    """``(threshold, category positions)`` from the flags and the reference's -D names."""
    th = args.threshold
    if "threshold" in cli:
        try:
            th = threshold(cli["threshold"])
        except argparse.ArgumentTypeError as exc:
            raise SettingsError(f"-D discreteevaluator.threshold: {exc}") from None
    # The category is the last argument unless the reference's option names the positions.
    cats = category_indexes(cli["category_indexes"]) if "category_indexes" in cli else (-1,)
    return th, cats[0] if len(cats) == 1 else cats


def _config_options(options):
    """Split a config's options into ``KEY=VALUE`` settings and the names hlmrf ignores."""
    from dataclasses import fields

    from hlmrf.inference.settings import AdmmSettings

    names = {f.name for f in fields(AdmmSettings)}
    pairs, ignored = [], []
    for k, v in options.items():
        key = ADMM_OPTIONS.get(str(k).lower(), k)
        if key in names:
            pairs.append(f"{key}={v}")
        else:
            ignored.append(str(k))
    return pairs, ignored


def run(args, out=None, err=None) -> int:
    from hlmrf.api import infer
    from hlmrf.data.descriptions import load_inputs
    from hlmrf.data.writer import write_atomic, write_results
    from hlmrf.infra.progress import Progress

    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=out))
    # Options and output paths first: a bad one costs nothing and writes nothing.
    first, second = input_paths(args, "hlmrf-infer")
    options = translate_options(args.option)
    AdmmSettings.from_options(options.admm)
    th, cats = _command_settings(args, options.cli)
    chosen = evaluator_metrics(args.eval) if args.eval else None
    check_device(args.solver, args.device)
    from hlmrf.distributed.launch import join, leave

    _check_worker_options(args)
    backend = grounding_backend(args)
    check_grounding_backend(backend)  # before reading any input
    check_outputs(args)
    if options.ignored:
        print(ignored_message("hlmrf-infer", options.ignored), file=err)
    program, store, config_options = load_inputs(first, second)
    from_config, ignored = _config_options(config_options)
    settings = AdmmSettings.from_options(from_config + options.admm)  # -D wins over the config
    if ignored:
        text = f"ignoring config option(s) with no hlmrf equivalent: {', '.join(sorted(ignored))}"
        say(text) if not args.quiet else print(f"hlmrf-infer: {text}", file=err)

    comm, root = join()  # several workers: each grounds the whole model (or its share) and solves its rows
    share = (comm.rank, comm.size) if comm is not None and args.split_grounding else None
    if not root:
        say = lambda *a: None  # noqa: E731 - worker 0 prints and writes
    bar = Progress(settings.max_iter, "admm", stream=err, enabled=root and not args.quiet)

    def callback(it, r, s):
        bar.set(it, postfix=f"primal {r:.2e} dual {s:.2e}")

    def on_estimate(e):  # before grounding: a huge rule shows before the wait, not after
        if args.verbose:
            say(f"estimate: {e}")

    try:
        with _solving_on(comm):
            run_ = infer(program, store, settings, solver=args.solver, device=args.device,
                         max_ground_rules=args.max_ground_rules, on_estimate=on_estimate, **backend,
                         dtype=args.dtype, callback=callback,
                         keep_substitutions=bool(args.ground_rules), share=share)
            # per rule, of the whole model (summed over the shares when split)
            from hlmrf.inference.admm import ONE_WORKER, whole_sum

            counts = whole_sum(run_.model, comm or ONE_WORKER, run_.model.potentials_per_rule())
            energies = whole_sum(run_.model, comm or ONE_WORKER, run_.energy_by_rule())
    finally:
        bar.close()
        leave(comm)
    if not root:
        return 0
    model, res = run_.model, run_.result
    n_obs = sum(len(p.obs_args) for p in store.predicates.values())
    say(f"rules: {len(program.rules)}   target atoms: {model.n} "
        f"({len(model.index.predicates)} open predicate(s))   observed atoms: {n_obs}")
    counts = np.asarray(counts).astype(np.int64)
    split = f" (split over {comm.size} workers)" if share is not None else ""
    say(f"grounding: {int(counts.sum()):,} ground rules{split} in {run_.ground_seconds:.3f} s")
    width = max((len(f"{c:,}") for c in counts), default=1)
    for i, rule in enumerate(program.rules):
        text = rule.text or str(rule)
        say(f"  rule {i + 1:>2}: {counts[i]:>{width},} ground, energy {energies[i]:10.4f}   {text}")
    on = f" on {res.extra['workers']} workers" if res.extra.get("workers", 1) > 1 else ""
    say(f"inference: {res.solver}{on} {res.status.value} after {res.iterations} iterations in "
        f"{res.seconds:.3f} s; energy {res.energy:.6f}, {_gap_text(res)}; "
        f"max hard-constraint violation {res.violation:.1e}; primal residual "
        f"{res.primal_residual:.2e}, dual residual {res.dual_residual:.2e}")
    if res.status.value == "iteration_limit":
        say("warning: the iteration limit was reached before the optimality certificate held; "
            "the energy may be up to the gap above the optimum. Raise max_iter (-D max_iter=100000) "
            "or loosen gap_rel.")
    if args.check:
        from hlmrf.inference.check import solve_cvxpy

        ref = solve_cvxpy(model)
        gap = (res.energy - ref.energy) / max(abs(ref.energy), 1e-12)
        say(f"check ({ref.solver}, {ref.seconds:.2f} s): energy {ref.energy:.6f}; "
            f"relative energy gap {gap:+.2e}; largest value difference "
            f"{float(np.max(np.abs(res.y - ref.y), initial=0.0)):.2e}")
    ground_text, inside = None, None
    if args.ground_rules:
        import io

        from hlmrf.model.printer import write_ground_rules

        buf = io.StringIO()
        write_ground_rules(model, buf, program=program)
        ground_text = buf.getvalue()
        rel = ".." if args.ground_rules == "-" else os.path.relpath(os.path.abspath(args.ground_rules), os.path.abspath(args.output))
        inside = None if rel.startswith("..") else rel  # published with the folder, in one step
    paths = write_results(args.output, model, run_.y,
                          extra={inside: ground_text} if inside is not None else None)
    if ground_text is not None and args.ground_rules == "-":
        out.write(ground_text)
    elif ground_text is not None and inside is None:
        write_atomic(args.ground_rules, ground_text)
    if ground_text is not None and args.ground_rules != "-":
        say(f"wrote {model.m:,} ground rules to {args.ground_rules}")
    say(f"wrote {len(paths)} file(s) to {args.output}: {', '.join(p.name for p in paths)}")
    from hlmrf.evaluation.metrics import evaluate

    categorical = chosen is not None and "categorical_accuracy" in chosen
    metrics = evaluate(model, run_.y, store, th,
                       {p: cats for p in model.index.predicates} if categorical else None)
    if metrics:
        say(f"evaluation against truth (threshold {th:g}):")
        for name, m in metrics.items():
            extra = f" ({m['unmatched']} truth atoms are not targets)" if m["unmatched"] else ""
            if chosen is None:
                say(f"  {name}: n={m['count']} accuracy {m['accuracy']:.6f}  f1 {m['f1']:.6f}  "
                    f"mae {m['mae']:.6f}  mse {m['mse']:.6f}  auroc {m['auroc']:.6f}{extra}")
            else:
                say(f"  {name}: n={m['count']} " + "  ".join(f"{k} {m[k]:.6f}" for k in chosen)
                    + extra)
    return 0


def _solving_on(comm):
    """:func:`hlmrf.distributed.comm.session` on ``comm``, or nothing for one process."""
    if comm is None:
        import contextlib

        return contextlib.nullcontext()
    from hlmrf.distributed.comm import session

    return session(comm)


def _gap_text(res) -> str:
    """``certified gap <= G (R relative)``: how far the energy can be above the optimum."""
    gap = res.gap
    if gap != gap:
        why = res.extra.get("certificate") or "this solver gives no lower bound"
        return f"no certified gap ({why})"
    return f"certified gap <= {gap:.1e} ({res.relative_gap:.1e} relative)"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    def go() -> int:
        from hlmrf.distributed.launch import launch_local, should_launch

        if should_launch(args.workers):  # start N workers running this same command
            check_device(args.solver, args.device)
            _check_worker_options(args, args.workers)
            return launch_local("hlmrf.cli.infer", list(sys.argv[1:] if argv is None else argv), args.workers)
        return run(args)

    return run_cli("hlmrf-infer", go)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``hlmrf-learn RULES TRAIN_FACTS --output learned.psl``: fit rule weights from the shell.

The inputs are those of ``hlmrf-infer``: a rule file and a facts directory or PSL 2.x ``.data``
file, or a JSON/YAML config (its ``learn`` split), also spelled as the reference engine does
(``--config``, ``--model``/``--data``, ``-D`` with reference option names; see
:mod:`hlmrf.cli.reference`). ``--out`` is the old, deprecated spelling of ``--output``.

Grounds RULES once on TRAIN_FACTS (whose targets need truth files), runs the chosen learner,
prints a line per epoch (loss, training error of the MAP state where the learner computes one, the
weights) and writes the rules with the learned weights: the file as written, only each soft rule's
weight replaced, ready for ``hlmrf-infer``. ``--eval DIR`` then runs inference on held-out facts
with the initial and the learned weights and prints both metric rows. ``--backend`` grounds as
``hlmrf-infer``'s does (numpy, DuckDB or Spark SQL), the training model and both held-out ones
alike; each grounding replaces the ``rule=<k>/`` folders of ``--spark-output``, so it keeps the
last one's (the held-out model's with ``--eval``, else the training model's, which a later
``--spark-reuse`` run can read; ``--spark-reuse`` with ``--eval`` is refused). The rule file is
written atomically (umask-respecting mode) and only after its text has been parsed back to exactly
the learned weights; every option and the output path are checked before any work. Exit status
(:mod:`hlmrf.infra.cli`): 0 on success, 1 when the output cannot be written (or the system fails),
2 with the cause on bad input, 3 when a solve fails or learning diverges, 130 when interrupted
(nothing written).
"""
from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np

import math
import os

from hlmrf.cli.reference import (EVALUATORS, add_grounding_backend, add_input_arguments, add_max_ground_rules,
                                 add_version, check_grounding_backend, grounding_backend, ignored_message,
                                 input_paths, translate_options)
from hlmrf.inference.settings import AdmmSettings
from hlmrf.infra.cli import run_cli

_METHOD_HELP = ("perceptron: voted perceptron, approximate maximum likelihood with MAP states (the "
                "reference engine's default); pseudolikelihood: maximum pseudo-likelihood; mse / "
                "bce: squared error / cross-entropy of the MAP state, gradients by implicit "
                "differentiation")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="hlmrf-learn",
        description="Weight learning for a PSL model: fit the weights of RULES to the truth of the "
                    "targets in TRAIN_FACTS (a folder or a .data file), or of a JSON/YAML CONFIG's "
                    "learn split, and write the rules with the learned weights.",
        epilog="examples: hlmrf-learn rules.psl train/ --method perceptron --output learned.psl "
               "--eval test/   (then: hlmrf-infer learned.psl test/) ; "
               "hlmrf-learn --config model.json --output learned.psl")
    add_input_arguments(ap, "training facts directory with <predicate>_truth.txt for the targets, "
                            "or a PSL .data file (omit when RULES is a config)")
    ap.add_argument("-o", "--output", metavar="FILE",
                    help="where to write the rules with learned weights (required)")
    ap.add_argument("--out", dest="out_deprecated", metavar="FILE",
                    help="deprecated spelling of --output")
    ap.add_argument("--method", choices=["perceptron", "pseudolikelihood", "mse", "bce"],
                    default="perceptron", help=_METHOD_HELP + " (default: perceptron)")
    ap.add_argument("--epochs", type=int, help="learning steps (default: perceptron 25, "
                                               "pseudolikelihood 100, mse/bce 50)")
    ap.add_argument("--step-size", type=float, help="step size (default per method; see docs/learning.md)")
    ap.add_argument("--l2", type=float, help="L2 regularisation (default per method)")
    ap.add_argument("--init", choices=["model", "uniform"], default="model",
                    help="start from the rules' weights (model, default) or all 1 (uniform)")
    ap.add_argument("--allow-negative", action="store_true",
                    help="do not clip weights at 0 (a rule file cannot hold a negative weight: if "
                         "one is learned, the run stops with an error and writes nothing)")
    ap.add_argument("--latent", choices=["infer", "error"], default="infer",
                    help="targets without truth: infer them given the labelled ones (default, as "
                         "the reference's HardEM) or stop with an error")
    ap.add_argument("--eval", metavar="DIR", help="held-out facts directory or .data file (with "
                                                  "truth) to evaluate the initial and the learned "
                                                  "weights on (evaluator names go to hlmrf-infer)")
    ap.add_argument("-D", "--option", action="append", default=[], metavar="KEY=VALUE",
                    help="an ADMM setting of the MAP solves, e.g. -D eps_rel=1e-5, or a reference "
                         "name, e.g. -D admmreasoner.maxiterations=5000 -D votedperceptron.numsteps=50 "
                         "(repeatable; docs/reference_engine.md lists them)")
    ap.add_argument("--threshold", type=float, default=0.5, help="threshold of discrete metrics")
    ap.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    add_max_ground_rules(ap)
    add_grounding_backend(ap, spark=True)
    add_version(ap)
    return ap


def _output(args) -> str:
    """``--output``, or the deprecated ``--out``.

    ``--out`` is accepted without a note on stderr: scripts (and tests) that read stderr for the
    one-line error keep working; ``--help`` and docs/reference_engine.md mark it deprecated.
    """
    from hlmrf.errors import SettingsError

    if args.output is not None and args.out_deprecated is not None:
        raise SettingsError("--out is the old spelling of --output; give only --output")
    if args.out_deprecated is not None:
        return args.out_deprecated
    if args.output is None:
        raise SettingsError("name the file for the learned rules with --output FILE")
    return args.output


def _eval_path(args) -> None:
    """``--eval`` here names held-out facts; a reference evaluator name gets a pointer."""
    from hlmrf.errors import SettingsError

    if args.eval is None or os.path.exists(args.eval):
        return
    if args.eval.rsplit(".", 1)[-1].lower() in {e.lower() for e in EVALUATORS}:
        raise SettingsError(f"--eval {args.eval}: hlmrf-learn's --eval names held-out facts (a "
                            "folder or a .data file), and prints every metric; evaluator names "
                            "select metrics in hlmrf-infer --eval")


def _check_spark_reuse(args, backend: dict) -> None:
    """``--spark-reuse`` reads one grounding, the training model's, and ``--eval`` grounds other
    facts: refused together before any work, not after learning when the held-out grounding is
    found not to match the folder."""
    from hlmrf.errors import SettingsError

    spark = backend.get("spark")
    if args.eval is not None and spark is not None and getattr(spark, "reuse", False):
        raise SettingsError("--spark-reuse reads the training model's grounding from --spark-output, "
                            "and --eval needs groundings of the held-out facts; drop --eval (and run "
                            "hlmrf-infer on the held-out facts) or drop --spark-reuse")


def _learner(args, config_admm=(), learn_options=None):
    from hlmrf.errors import SettingsError
    from hlmrf.learning import make_learner

    params = {"init": args.init, "nonnegative": not args.allow_negative, "latent": args.latent}
    epochs, step_size, l2 = args.epochs, args.step_size, args.l2
    for name, text in (learn_options or {}).items():  # the reference's votedperceptron.* names
        if args.method != "perceptron":
            raise SettingsError(f"-D votedperceptron.* applies to --method perceptron, not "
                                f"{args.method}; use --epochs, --step-size or --l2")
        try:
            value = int(text) if name == "epochs" else float(text)
        except ValueError:
            raise SettingsError(f"-D votedperceptron option for {name}: {text[:80]!r} is not a "
                                "number") from None
        if name == "epochs" and epochs is None:
            epochs = value
        elif name == "step_size" and step_size is None:
            step_size = value
        elif name == "l2" and l2 is None:
            l2 = value
    for flag, value in (("--step-size", step_size), ("--l2", l2)):
        if value is not None and not math.isfinite(value):
            raise SettingsError(f"{flag} {value} must be a finite number")
    if epochs is not None:
        params["epochs"] = epochs
    if step_size is not None:
        params["step_size"] = step_size
        if args.method == "pseudolikelihood":
            params["optimizer"] = "gd"  # L-BFGS-B has no step size
    if l2 is not None:
        params["l2"] = l2
    admm = list(config_admm) + translate_options(args.option, learn=True).admm  # -D wins
    if admm:
        params["settings"] = AdmmSettings.from_options(admm)
    try:
        return make_learner(args.method, **params)
    except TypeError as exc:  # a flag the method has no use for
        raise SettingsError(f"--method {args.method} does not take that option ({exc})") from None


def _fmt_w(w) -> str:
    return "[" + " ".join(f"{x:.4g}" for x in w) + "]"


def _metric_row(metrics) -> str:
    return "  ".join(f"{name}: n={m['count']} accuracy {m['accuracy']:.6f} f1 {m['f1']:.6f} "
                     f"mae {m['mae']:.6f} mse {m['mse']:.6f} auroc {m['auroc']:.6f}"
                     for name, m in metrics.items()) or "(no truth atoms among the targets)"


def run(args, out=None, err=None) -> int:
    from hlmrf.api import infer
    from hlmrf.cli.infer import _command_settings, _config_options
    from hlmrf.data.descriptions import load_data, load_inputs
    from hlmrf.data.writer import write_atomic
    from hlmrf.infra.progress import Progress
    from hlmrf.infra.publish import check_output_file
    from hlmrf.learning import program_with_weights, rules_text

    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=out))
    # Options and the output path first: a bad one costs nothing and writes nothing.
    first, second = input_paths(args, "hlmrf-learn")
    output = _output(args)
    options = translate_options(args.option, learn=True)
    learner = _learner(args, learn_options=options.learn)
    threshold, _ = _command_settings(args, options.cli)
    _eval_path(args)
    backend = grounding_backend(args)
    _check_spark_reuse(args, backend)
    check_grounding_backend(backend)  # before reading any input
    check_output_file(output)  # a folder or unwritable place writes nothing
    if options.ignored:
        print(ignored_message("hlmrf-learn", options.ignored), file=err)
    program, store, config_options = load_inputs(first, second, phase="learn")
    if config_options:
        from_config, ignored = _config_options(config_options)
        if ignored:
            print("hlmrf-learn: ignoring config option(s) with no hlmrf equivalent: "
                  f"{', '.join(sorted(ignored))}", file=err)
        learner = _learner(args, from_config, options.learn)
    eval_store = load_data(program, args.eval) if args.eval else None
    every = max(1, learner.epochs // 25)
    bar = Progress(learner.epochs, f"learning ({args.method})", stream=err, enabled=not args.quiet)

    def on_epoch(rec):
        bar.set(rec.epoch, postfix=f"loss {rec.loss:.4g}")
        if rec.epoch % every == 0 or rec.epoch == 1 or rec.epoch == learner.epochs:
            extra = "".join(f"  train {k} {v:.6f}" for k, v in rec.metrics.items() if k in ("mse", "mae"))
            say(f"  epoch {rec.epoch:>4}: loss {rec.loss:12.6g}{extra}  {rec.seconds:6.3f} s  "
                f"w {_fmt_w(rec.weights)}")

    with warnings.catch_warnings(record=True) as caught:  # shown below, one line each
        warnings.simplefilter("always")
        try:
            learner.fit(program, store, callback=on_epoch, max_ground_rules=args.max_ground_rules, **backend)
        finally:
            bar.close()
    model = learner.model_
    n_lab = int(learner.labelled_.sum())
    say(f"training model: {model.m:,} ground rules, {model.n} target atoms ({n_lab} with truth, "
        f"{model.n - n_lab} latent); {len(learner.history_)} epochs in {learner.seconds_:.3f} s")
    for i, rule in enumerate(program.rules):
        text = rule.text or str(rule)
        w = "hard" if rule.hard else f"{rule.weight:.4g} -> {learner.weights_[i]:.4g}"
        say(f"  rule {i + 1:>2}: {w:>20}   {text}")
    for w in caught:
        print(f"hlmrf-learn: warning: {w.message}", file=err)
    write_atomic(output, rules_text(program, learner.weights_))
    say(f"wrote the rules with learned weights to {output}")
    if eval_store is not None:
        say(f"held-out evaluation on {args.eval} (threshold {threshold:g}):")
        start = np.array([r.weight if r.weight is not None else 0.0 for r in program.rules])
        if args.init == "uniform":
            start = np.where([r.hard for r in program.rules], 0.0, 1.0)
        for label, w in (("initial", start), ("learned", learner.weights_)):
            run_ = infer(program_with_weights(program, w), eval_store, learner.settings_,
                         max_ground_rules=args.max_ground_rules, **backend)
            say(f"  {label:>7}: {_metric_row(run_.metrics(threshold))}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli("hlmrf-learn", lambda: run(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

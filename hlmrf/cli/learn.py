"""``hlmrf-learn RULES TRAIN_FACTS --out learned.psl``: fit rule weights from the shell.

Grounds RULES once on TRAIN_FACTS (whose targets need truth files), runs the chosen learner,
prints a line per epoch (loss, training error of the MAP state where the learner computes one, the
weights) and writes the rules with the learned weights: the file as written, only each soft rule's
weight replaced, ready for ``hlmrf-infer``. ``--eval DIR`` then runs inference on held-out facts
with the initial and the learned weights and prints both metric rows. The rule file is written
atomically (umask-respecting mode) and only after its text has been parsed back to exactly the
learned weights; every option and the output path are checked before any work. Exit status
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
                    "targets in TRAIN_FACTS and write the rules with the learned weights.",
        epilog="example: hlmrf-learn rules.psl train/ --method perceptron --out learned.psl "
               "--eval test/   (then: hlmrf-infer learned.psl test/)")
    ap.add_argument("rules", help="rule file in PSL syntax (.psl); its weights are the start")
    ap.add_argument("facts", help="training facts directory with <predicate>_truth.txt for the targets")
    ap.add_argument("--out", required=True, help="where to write the rules with learned weights")
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
    ap.add_argument("--eval", metavar="DIR", help="held-out facts directory (with truth) to evaluate "
                                                  "the initial and the learned weights on")
    ap.add_argument("-D", "--option", action="append", default=[], metavar="KEY=VALUE",
                    help="an ADMM setting of the MAP solves, e.g. -D eps_rel=1e-5 (repeatable)")
    ap.add_argument("--threshold", type=float, default=0.5, help="threshold of discrete metrics")
    ap.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    from hlmrf.cli.infer import _ground_rule_limit
    from hlmrf.grounding.ground import DEFAULT_MAX_GROUND_RULES

    ap.add_argument("--max-ground-rules", type=_ground_rule_limit, default=DEFAULT_MAX_GROUND_RULES,
                    metavar="N", help="refuse, before grounding, rules that would ground more than N "
                                      f"rules in all (default {DEFAULT_MAX_GROUND_RULES}; `none`: no limit)")
    return ap


def _learner(args):
    from hlmrf.errors import SettingsError
    from hlmrf.learning import make_learner

    for flag, value in (("--step-size", args.step_size), ("--l2", args.l2)):
        if value is not None and not math.isfinite(value):
            raise SettingsError(f"{flag} {value} must be a finite number")
    params = {"init": args.init, "nonnegative": not args.allow_negative, "latent": args.latent}
    if args.epochs is not None:
        params["epochs"] = args.epochs
    if args.step_size is not None:
        params["step_size"] = args.step_size
        if args.method == "pseudolikelihood":
            params["optimizer"] = "gd"  # L-BFGS-B has no step size
    if args.l2 is not None:
        params["l2"] = args.l2
    if args.option:
        params["settings"] = AdmmSettings.from_options(args.option)
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
    from hlmrf.api import infer, load_facts, load_rules
    from hlmrf.data.writer import write_atomic
    from hlmrf.infra.progress import Progress
    from hlmrf.infra.publish import check_output_file
    from hlmrf.learning import program_with_weights, rules_text

    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=out))
    learner = _learner(args)
    check_output_file(args.out)  # before any work: a folder or unwritable place writes nothing
    program = load_rules(args.rules)
    store = load_facts(args.facts, program)
    eval_store = load_facts(args.eval, program) if args.eval else None
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
            learner.fit(program, store, callback=on_epoch, max_ground_rules=args.max_ground_rules)
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
    write_atomic(args.out, rules_text(program, learner.weights_))
    say(f"wrote the rules with learned weights to {args.out}")
    if eval_store is not None:
        say(f"held-out evaluation on {args.eval} (threshold {args.threshold:g}):")
        start = np.array([r.weight if r.weight is not None else 0.0 for r in program.rules])
        if args.init == "uniform":
            start = np.where([r.hard for r in program.rules], 0.0, 1.0)
        for label, w in (("initial", start), ("learned", learner.weights_)):
            run_ = infer(program_with_weights(program, w), eval_store, learner.settings_,
                         max_ground_rules=args.max_ground_rules)
            say(f"  {label:>7}: {_metric_row(run_.metrics(args.threshold))}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli("hlmrf-learn", lambda: run(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

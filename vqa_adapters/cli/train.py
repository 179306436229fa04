"""``vqa-train CONFIG.(yaml|json) [--set KEY=VALUE ...] [--out DIR] [--resume]``: train baseline, teacher and student.

Reads and validates the config (:mod:`vqa_adapters.distill.settings`), runs the stages
(:class:`vqa_adapters.distill.runner.Runner`) with progress bars on stderr, and prints where the
metrics, plot, checkpoints and (for ``experiment: baseline+teacher+student``) the summary table
went. Exit codes are :func:`hlmrf.infra.run_cli`'s: 2 for a bad config, data or command line, 3
for a failed solve, 1 for a system error (writing, memory), 130 on Ctrl-C; every epoch's
checkpoint, metrics and plot are published together, so a kill leaves the previous epoch's.
"""
from __future__ import annotations

import argparse
import sys

from hlmrf.infra import run_cli
from vqa_adapters.cli import OneLineParser

PROG = "vqa-train"

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG,
        description="Train VQA networks: a baseline, a mask teacher and a distilled student.")
    p.add_argument("config", help="settings file (.yaml, .yml or .json)")
    p.add_argument("--out", default="vqa-train-out", help="output directory (default: %(default)s)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoints in --out (train.epochs may be raised)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, dotted key, YAML value; repeatable "
                        "(e.g. --set seed=1 --set distill.pi=0.3)")
    p.add_argument("--reuse", metavar="RUN",
                   help="copy the finished baseline and teacher stages of an earlier --out whose "
                        "settings for them are equal, instead of training them again")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    from hlmrf.cli.reference import add_version

    add_version(p)
    return p


def _run(args) -> int:
    from vqa_adapters.distill.settings import load_settings

    settings = load_settings(args.config, args.overrides)
    from hlmrf.infra import Progress
    from vqa_adapters.distill.runner import Runner

    def progress(total, desc):
        return Progress(total, desc, enabled=not args.quiet)

    def log(message):
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    runner = Runner(settings, args.out, resume=args.resume, reuse=args.reuse,
                    progress=progress, log=log)
    results = runner.run()
    for name, res in results.items():
        for network, t in res.test.items():
            print(f"{name}/{network}: test accuracy {100 * t['accuracy']:.2f}% "
                  f"({t['n']} questions)")
    if settings.experiment != "single":
        print(runner.summary_text(), end="")
    print(f"metrics: {runner.out / 'metrics.csv'}\nplot: {runner.out / 'accuracy.png'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_cli(PROG, lambda: _run(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

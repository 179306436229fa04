"""``vqa-train CONFIG.(yaml|json) [--out DIR] [--resume]``: train baseline, teacher and student.

Reads and validates the config (:mod:`vqa_adapters.distill.settings`), runs the stages
(:class:`vqa_adapters.distill.runner.Runner`) with progress bars on stderr, and prints where the
metrics, plot, checkpoints and (for ``experiment: baseline+teacher+student``) the summary table
went. Exit status 2 for a bad config or command line.
"""
from __future__ import annotations

import argparse
import sys

from hlmrf.errors import HlmrfError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vqa-train",
        description="Train VQA networks: a baseline, a mask teacher and a distilled student.")
    p.add_argument("config", help="settings file (.yaml, .yml or .json)")
    p.add_argument("--out", default="vqa-train-out", help="output directory (default: %(default)s)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoints in --out (train.epochs may be raised)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from vqa_adapters.distill.settings import load_settings

    try:
        settings = load_settings(args.config)
    except (HlmrfError, OSError) as exc:
        print(f"vqa-train: {exc}", file=sys.stderr)
        return 2
    from hlmrf.cli.progress import Progress
    from vqa_adapters.distill.runner import Runner

    def progress(total, desc):
        return Progress(total, desc, enabled=not args.quiet)

    def log(message):
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    runner = Runner(settings, args.out, resume=args.resume, progress=progress, log=log)
    try:
        results = runner.run()
    except HlmrfError as exc:
        print(f"vqa-train: {exc}", file=sys.stderr)
        return 2
    for name, res in results.items():
        for network, t in res.test.items():
            print(f"{name}/{network}: test accuracy {100 * t['accuracy']:.2f}% "
                  f"({t['n']} questions)")
    if settings.experiment != "single":
        print(runner.summary_text(), end="")
    print(f"metrics: {runner.out / 'metrics.csv'}\nplot: {runner.out / 'accuracy.png'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

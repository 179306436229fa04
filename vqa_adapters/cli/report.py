"""``vqa-report RUN [RUN ...] --out DIR [--sweep KEY] [--compare A:MODEL B:MODEL] [--strict]``.

Reads finished ``vqa-train`` run folders, groups the runs whose settings differ only in ``seed``
(:mod:`vqa_adapters.distill.report`), and publishes one snapshot of ``DIR`` with ``report.md``,
``report.json``, ``curves_<group>.png`` per group and, with ``--sweep``, ``sweep.png``; the
Markdown is also printed. Unfinished runs (no ``summary.json``) are skipped with a warning on
stderr, or refused with ``--strict``. Exit codes are :func:`hlmrf.infra.run_cli`'s: 2 for bad
input (a missing folder, a folder without ``run.json``, malformed JSON, a sweep key that is not
numeric or does not vary, an unknown group or model in ``--compare``), 1 for a write failure.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

from hlmrf.infra import run_cli
from vqa_adapters.cli import OneLineParser

PROG = "vqa-report"

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Aggregate several seeds' vqa-train runs into tables, "
                "paired tests and figures.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders written by vqa-train --out")
    p.add_argument("--out", required=True, help="report folder (replaced as one snapshot)")
    p.add_argument("--sweep", metavar="KEY",
                   help="numeric setting that varies across groups (e.g. distill.pi): draw "
                        "sweep.png, the student's test accuracy against it")
    p.add_argument("--compare", nargs=2, action="append", default=[],
                   metavar=("GROUP_A:MODEL", "GROUP_B:MODEL"),
                   help="paired test of B minus A matched by seed (repeatable), e.g. "
                        "--compare 'distill.pi=0.3:student' 'distill.pi=0.7:student'")
    p.add_argument("--level", type=float, default=0.95,
                   help="confidence level of intervals (default: %(default)s)")
    p.add_argument("--strict", action="store_true",
                   help="refuse unfinished runs instead of skipping them")
    from hlmrf.cli.reference import add_version

    add_version(p)
    return p


def _side(text: str, groups: dict):
    from hlmrf.errors import SettingsError

    name, sep, model = text.rpartition(":")
    if not sep or not name or not model:
        raise SettingsError(f"--compare {text!r}: expected GROUP:MODEL (e.g. "
                            f"'{next(iter(groups))}:student')")
    if name not in groups:
        raise SettingsError(f"--compare {text!r}: unknown group {name!r}; known groups: "
                            + ", ".join(repr(g) for g in groups))
    return groups[name], model


def _run(args) -> int:
    from hlmrf.errors import SettingsError
    from vqa_adapters.distill import report as rp
    from vqa_adapters.outputs import publish

    out = os.path.realpath(args.out)
    for path in args.runs:
        if os.path.realpath(path) == out:
            raise SettingsError(f"--out {args.out} is the run folder {path}; name another folder")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", rp.UnfinishedRunWarning)
        runs = rp.load_runs(args.runs, strict=args.strict)
    for w in caught:
        print(f"{PROG}: warning: {w.message}", file=sys.stderr)
    groups = rp.group_runs(runs)
    by_name = {g.name: g for g in groups}
    comparisons = []
    for a, b in args.compare:
        (ga, ma), (gb, mb) = _side(a, by_name), _side(b, by_name)
        comparisons.append(rp.compare(ga, ma, gb, mb, level=args.level))
    if args.sweep:
        rp.sweep_values(groups, args.sweep)  # refuse a bad key before drawing anything
    stats = rp.aggregate(groups, level=args.level)
    markdown = rp.report_markdown(stats, comparisons)
    files = {"report.md": markdown, "report.json": rp.report_json(stats, comparisons)}
    for g in groups:
        stem, k = rp.file_stem(g.name), 2
        name = f"curves_{stem}.png"
        while name in files:
            name, k = f"curves_{stem}_{k}.png", k + 1
        files[name] = rp.curves_png(g)
    if args.sweep:
        files["sweep.png"] = rp.sweep_png(groups, args.sweep, level=args.level)
    publish(args.out, files, keep_previous=False)
    sys.stdout.write(markdown)
    sys.stdout.flush()
    print(f"{PROG}: {len(runs)} run(s) in {len(groups)} group(s); wrote {', '.join(files)} to "
          f"{args.out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_cli(PROG, lambda: _run(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

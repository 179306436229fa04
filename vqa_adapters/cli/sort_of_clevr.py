"""``vqa-sort-of-clevr``: generate a Sort-of-CLEVR dataset with its scene graphs into a folder.

    vqa-sort-of-clevr --out DIR [--seed N] [--train 9800 --val 200 --test 200] [--size 75]
                      [--object-size 5] [--questions-per-image 10] [--relational-share 0.5]

Writes ``DIR/{train,val,test}.{npz,json}`` and ``DIR/dataset.json`` (format: docs/sort_of_clevr.md)
as one folder published whole (all files or none, even on a kill; other files there are kept),
with a progress bar on stderr. Exit codes are :func:`hlmrf.infra.run_cli`'s: bad settings or
data print one line and exit 2; a failed write or lack of memory prints one line, leaves the folder
as it was and exits 1; Ctrl-C exits 130. This module only parses arguments and reports; the
work is in :mod:`vqa_adapters.sort_of_clevr`.
"""
from __future__ import annotations

import argparse
import math
import sys
import time

from hlmrf.errors import SettingsError
from hlmrf.infra import Progress, run_cli

from vqa_adapters.sort_of_clevr import SPLITS, SortOfClevrSettings, write_dataset

PROG = "vqa-sort-of-clevr"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        self.exit(2, f"{PROG}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    d = SortOfClevrSettings()
    p = _Parser(prog=PROG, description="Generate Sort-of-CLEVR (images, questions, scene graphs).")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"base seed (default {d.seed})")
    for split in SPLITS:
        p.add_argument(f"--{split}", type=int, default=d.count(split),
                       help=f"{split} images (default {d.count(split)})")
    p.add_argument("--size", type=int, default=d.size, help=f"image side in pixels (default {d.size})")
    p.add_argument("--object-size", type=int, default=d.object_size,
                   help=f"square half-side / circle radius in pixels (default {d.object_size})")
    p.add_argument("--questions-per-image", type=int, default=d.questions_per_image,
                   help=f"questions per image (default {d.questions_per_image})")
    p.add_argument("--relational-share", type=float, default=d.relational_share,
                   help=f"fraction of relational questions (default {d.relational_share})")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    from hlmrf.cli.reference import add_version

    add_version(p)
    return p


def _run(args) -> int:
    settings = SortOfClevrSettings(
        seed=args.seed, train=args.train, val=args.val, test=args.test, size=args.size,
        object_size=args.object_size, questions_per_image=args.questions_per_image,
        relational_share=args.relational_share,
    )
    if not math.isfinite(args.relational_share):
        raise SettingsError(f"--relational-share must be a number in [0, 1], got {args.relational_share}")
    total = sum(settings.count(s) for s in SPLITS)
    start = time.perf_counter()
    with Progress(total, "sort-of-clevr", enabled=not args.quiet) as bar:
        write_dataset(args.out, settings, on_progress=bar.update)
    seconds = time.perf_counter() - start
    counts = ", ".join(f"{s} {settings.count(s)}" for s in SPLITS)
    print(f"wrote {args.out}: {counts} images, {settings.questions_per_image} questions each, "
          f"seed {settings.seed}, {seconds:.1f}s ({total / max(seconds, 1e-9):,.0f} images/s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(PROG, lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())

"""Sort-of-CLEVR generation speed: images per second for the default 10,200 images.

    python benchmarks/bench_sort_of_clevr.py [--train 9800 --val 200 --test 200] [--size 75]
                                             [--repeat 3]

Stages: ``generate`` (scenes, images, questions in memory, all splits), ``write`` (the CLI's
work: generate + compress + JSON + atomic moves, into a temporary folder), ``load`` (the train
split back from disk) and ``torch items`` (``SortOfClevrDataset.__getitem__``, when torch is
installed). Prints a markdown table of the best of ``--repeat`` runs.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from vqa_adapters.sort_of_clevr import (SPLITS, SortOfClevrSettings, generate_split,
                                        load_sort_of_clevr, write_dataset)


def best_of(repeat, fn):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    d = SortOfClevrSettings()
    for split in SPLITS:
        p.add_argument(f"--{split}", type=int, default=d.count(split))
    p.add_argument("--size", type=int, default=d.size)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    settings = SortOfClevrSettings(train=args.train, val=args.val, test=args.test, size=args.size)
    n = sum(settings.count(s) for s in SPLITS)
    rows = []

    t = best_of(args.repeat, lambda: [generate_split(settings, s) for s in SPLITS])
    rows.append(("generate (memory)", n, t))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "soc"
        t = best_of(args.repeat, lambda: write_dataset(out, settings))
        rows.append(("write (CLI work)", n, t))
        size_mb = sum(f.stat().st_size for f in out.iterdir()) / 1e6
        t = best_of(args.repeat, lambda: load_sort_of_clevr(out, "train"))
        rows.append(("load train", settings.train, t))
        try:
            from vqa_adapters.sort_of_clevr.torch_data import SortOfClevrDataset
        except ImportError:
            pass
        else:
            ds = SortOfClevrDataset(out, "train", masks=None)
            k = min(len(ds), 20000)
            t = best_of(args.repeat, lambda: [ds[i] for i in range(k)])
            rows.append(("torch items", k, t))

    print(f"Sort-of-CLEVR, {args.size}x{args.size}, {settings.questions_per_image} questions/image, "
          f"best of {args.repeat}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}; dataset {size_mb:.1f} MB")
    print()
    print("| stage | items | seconds | items/s |")
    print("|---|---:|---:|---:|")
    for name, count, sec in rows:
        print(f"| {name} | {count:,} | {sec:.2f} | {count / sec:,.0f} |")


if __name__ == "__main__":
    main()

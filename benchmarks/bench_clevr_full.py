"""``vqa-masks`` at the size of CLEVR's training split: one command, peak memory, bytes per question.

    python benchmarks/bench_clevr_full.py [--questions 700000] [--store objects] [--arrays-questions 20000]
                                          [--keep DIR] [--dataset-items 2000]

The 330 generated val questions (tests/data/clevr) are replicated to ``--questions`` (each copy its
own ``question_index``, written one by one to a question file in a temporary folder, so this
process never holds them), and the one command ``python -m vqa_adapters.cli.masks --scenes ...
--questions ... --out ... --store S --quiet`` runs in a child process, measured from start to exit
with its peak resident set size (``os.wait4``, see ``_common.run_measured``). The table row per run:
questions, wall seconds, questions/s, bytes written per question (every file of the output folder
over N) and peak RSS. ``--arrays-questions N`` (0 to skip) adds a ``--store arrays`` run at a size
whose masks fit in memory, for comparison. ``--dataset-items K`` (0 to skip) then reads K items'
masks from both outputs the way ``ClevrMaskDataset`` does, rendered from stored objects against
sliced from the stored array (items/s, mask only: the image read is the same in both). Prints
Markdown headed by the command, the date and the load.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from _common import run_measured  # noqa: E402 - beside this script (its folder is on sys.path)

DATA = ROOT / "tests" / "data" / "clevr"
SCENES = DATA / "CLEVR_val_scenes_000000-000499.json"
GENERATED = DATA / "CLEVR_val_000000-000032_generated_seed0.json"


def write_questions(path: Path, n: int) -> int:
    """The generated questions replicated to ``n``, renumbered 0..n-1, streamed to ``path``;
    returns the file's size in bytes."""
    doc = json.loads(GENERATED.read_text())
    mark = "-777777777"  # a placeholder index, replaced per copy (appears nowhere else)
    base = [json.dumps(dict(q, question_index=int(mark))) for q in doc["questions"]]
    assert all(q.count(mark) == 1 for q in base)
    with open(path, "w") as f:
        f.write('{"info": ' + json.dumps(doc.get("info", {})) + ', "questions": [\n')
        for i in range(n):
            f.write(("" if i == 0 else ",\n") + base[i % len(base)].replace(mark, str(i)))
        f.write("\n]}\n")
    return path.stat().st_size


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def run_one(tmp: Path, n: int, store: str, keep: Path | None) -> dict:
    qfile = tmp / f"questions_{n}.json"
    qbytes = write_questions(qfile, n)
    out = (keep or tmp) / f"out_{store}_{n}"
    cmd = [sys.executable, "-m", "vqa_adapters.cli.masks", "--scenes", str(SCENES), "--questions",
           str(qfile), "--out", str(out), "--store", store, "--quiet"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    load = os.getloadavg()[0]
    r = run_measured(cmd, cwd=str(tmp), env=env)
    qfile.unlink()
    if r.rc != 0:
        raise SystemExit(f"vqa-masks failed (exit {r.rc}):\n{r.stderr}")
    size = folder_bytes(out)
    return {"store": store, "n": n, "wall": r.wall, "rss": r.maxrss_mb, "bytes": size,
            "npz": (out / "masks.npz").stat().st_size, "qbytes": qbytes, "load": load,
            "out": out, "line": r.stdout.strip()}


def dataset_rates(objects_npz: Path, arrays_npz: Path, k: int) -> tuple[float, float, int]:
    """Items/s of the mask part of ``ClevrMaskDataset.__getitem__``: rendered from stored objects
    (:func:`render_stored_mask`, scene geometry built once per image as the Dataset does) against
    taken from the stored array; and how many of the masks compared differ (must be 0)."""
    import numpy as np

    from vqa_adapters.clevr import load_scenes
    from vqa_adapters.psl.facts import ObjectFacts, clevr_object_facts
    from vqa_adapters.psl.io import read_masks_npz, render_stored_mask

    scenes = load_scenes(SCENES)
    obj = read_masks_npz(objects_npz)
    arr = read_masks_npz(arrays_npz)
    k = min(k, len(arr), len(obj))
    rows = np.random.default_rng(0).permutation(k)  # a shuffled epoch
    facts: dict = {}
    t0 = time.perf_counter()
    rendered = []
    for i in rows:
        ii = int(obj.image_index[i])
        f = facts.get(ii)
        if f is None:
            full = clevr_object_facts(scenes[ii])
            f = facts[ii] = ObjectFacts({}, {}, {}, full.centres, full.radii, full.image_size)
        rendered.append(render_stored_mask(obj, int(i), f).astype(np.float32) / 255.0)
    t_obj = time.perf_counter() - t0
    t0 = time.perf_counter()
    read = [arr.masks[int(i)].astype(np.float32) / 255.0 for i in rows]
    t_arr = time.perf_counter() - t0
    differ = sum(not np.array_equal(a, b) for a, b in zip(rendered, read))
    return k / t_obj, k / t_arr, differ


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=700_000)
    ap.add_argument("--store", default="objects", choices=("objects", "arrays"))
    ap.add_argument("--arrays-questions", type=int, default=20_000,
                    help="questions of the --store arrays comparison run (0: none)")
    ap.add_argument("--dataset-items", type=int, default=2000,
                    help="items read from both outputs to time the Dataset's masks (0: none)")
    ap.add_argument("--keep", help="write the outputs here (kept) instead of the temporary folder")
    args = ap.parse_args(argv)
    keep = Path(args.keep) if args.keep else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    uptime = os.getloadavg()
    rows = []
    rates = None
    with tempfile.TemporaryDirectory(prefix="vqa-full-") as t:
        tmp = Path(t)
        rows.append(run_one(tmp, args.questions, args.store, keep))
        if args.arrays_questions:
            a = run_one(tmp, args.arrays_questions, "arrays", keep)
            rows.append(a)
            if args.dataset_items:
                o = (run_one(tmp, args.arrays_questions, "objects", keep)
                     if args.store != "objects" or args.questions != args.arrays_questions else rows[0])
                if o is not rows[0]:
                    rows.append(o)
                rates = dataset_rates(o["out"] / "masks.npz", a["out"] / "masks.npz",
                                      args.dataset_items)
    after = os.getloadavg()
    print(f"`python benchmarks/bench_clevr_full.py {' '.join(argv if argv is not None else sys.argv[1:])}`"
          f", {started:%Y-%m-%d %H:%M} UTC, on {platform.machine()} with {os.cpu_count()} CPUs, "
          f"load average (1, 5, 15 min) {uptime[0]:.2f}, {uptime[1]:.2f}, {uptime[2]:.2f} at the start, "
          f"{after[0]:.2f}, {after[1]:.2f}, {after[2]:.2f} at the end; masks 128x128, solver numpy-batch/cpu\n")
    print("| --store | questions | wall s | questions/s | bytes written / question | masks.npz bytes / question | peak RSS MiB | question file MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['store']} | {r['n']:,} | {r['wall']:.1f} | {r['n'] / r['wall']:,.0f} | "
              f"{r['bytes'] / r['n']:,.1f} | {r['npz'] / r['n']:,.1f} | {r['rss']:,.0f} | {r['qbytes'] / 1e6:,.0f} |")
    if rates is not None:
        obj_rate, arr_rate, differ = rates
        print(f"\nMasks of {min(args.dataset_items, args.arrays_questions):,} items in shuffled order, "
              f"as ClevrMaskDataset reads them: rendered from stored objects {obj_rate:,.0f} items/s, "
              f"sliced from the stored array {arr_rate:,.0f} items/s; masks that differ: {differ}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

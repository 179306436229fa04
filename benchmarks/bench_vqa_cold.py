"""Whole-command time of ``vqa-masks`` on 2,000 CLEVR questions, cold (a new process) and warm.

    python benchmarks/bench_vqa_cold.py [--questions 2000] [--runs 5] [--solver auto|numpy-batch|torch|numpy]

The 330 generated val questions (tests/data/clevr) are replicated to ``--questions`` (each copy its
own ``question_index``) in a temporary folder, which also receives ``--out``. *Cold*: each run is
``python -m vqa_adapters.cli.masks ...`` in a new process, timed from start to exit (interpreter
start, imports, reading, the pipeline, writing, interpreter exit), with the packages' bytecode
compiled first. *Warm*: ``main()`` called again in this process after one untimed call, so
imports, torch and the parser memo are already loaded.
Prints a Markdown table (median, min and max of ``--runs``) headed by the command and the load.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from _common import compile_packages, run_measured  # noqa: E402

DATA = ROOT / "tests" / "data" / "clevr"
SCENES = DATA / "CLEVR_val_scenes_000000-000499.json"
GENERATED = DATA / "CLEVR_val_000000-000032_generated_seed0.json"


def write_questions(path: Path, n: int) -> None:
    """The generated questions replicated to ``n``, renumbered 0..n-1."""
    doc = json.loads(GENERATED.read_text())
    base = doc["questions"]
    doc["questions"] = [dict(base[i % len(base)], question_index=i) for i in range(n)]
    path.write_text(json.dumps(doc))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--solver", default="auto", choices=("auto", "numpy-batch", "torch", "numpy"))
    args = ap.parse_args(argv)

    compile_packages("hlmrf", "vqa_adapters")  # as installed (see _common.compile_packages)
    with tempfile.TemporaryDirectory(prefix="vqa-cold-") as tmp:
        qfile = Path(tmp) / "questions.json"
        write_questions(qfile, args.questions)
        cli = ["--scenes", str(SCENES), "--questions", str(qfile), "--out", str(Path(tmp) / "out"),
               "--solver", args.solver, "--quiet"]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        loads, cold = [], []
        for _ in range(args.runs):
            loads.append(os.getloadavg()[0])
            r = run_measured([sys.executable, "-m", "vqa_adapters.cli.masks", *cli], env=env, cwd=tmp)
            if r.rc != 0:
                print(r.stderr, file=sys.stderr)
                return r.rc
            cold.append(r.wall)
        from vqa_adapters.cli.masks import main as cli_main
        from vqa_adapters.psl.solve import resolve_solver

        warm = []
        with contextlib.redirect_stdout(io.StringIO()):  # the CLI's summary lines
            cli_main(cli)  # imports, torch, parser memo: outside the clock
            for _ in range(args.runs):
                t0 = time.perf_counter()
                cli_main(cli)
                warm.append(time.perf_counter() - t0)

    n = args.questions
    print(f"`python benchmarks/bench_vqa_cold.py {' '.join(argv if argv is not None else sys.argv[1:])}`"
          f" on {platform.machine()} with {os.cpu_count()} CPUs, load average "
          f"{min(loads):.1f}-{max(loads):.1f}: {n} questions, masks 128x128, solver {resolve_solver(args.solver, 'cpu')}/cpu, "
          f"{args.runs} runs each\n")
    print("| run | seconds (median) | min-max | questions/s (median) |")
    print("|---|---:|---:|---:|")
    for name, ts in (("cold (new process, start to exit)", cold), ("warm (main() again in-process)", warm)):
        med = statistics.median(ts)
        print(f"| {name} | {med:.2f} | {min(ts):.2f}-{max(ts):.2f} | {n / med:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

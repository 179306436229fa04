"""Throughput of the whole PSL mask pipeline on CLEVR: parse, facts, ground, solve, choose, masks.

    python benchmarks/bench_vqa_pipeline.py [--questions 10000] [--size 128x128]
        [--solver torch|numpy] [--device cpu|cuda] [--chunk-size 2000] [--rules default]
        [--no-parse-cache]

The 330 generated val questions (tests/data/clevr) are replicated to ``--questions``. Every
stage runs for every question (each copy gets its own constants, facts, ground rows and solver
block); only the text parser's memo (by question text) profits from the repetition: pass
``--no-parse-cache`` to clear it before every question and measure the parser cold. Torch is
imported (and one tiny chunk solved) before the clock starts. Prints a Markdown table per stage.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from vqa_adapters.clevr import load_questions, load_scenes
from vqa_adapters.psl import PipelineSettings, clevr_pipeline, render_question_masks
from vqa_adapters.psl.facts import clevr_facts_lookup
from vqa_adapters.psl.masks import parse_size
from vqa_adapters.psl import pipeline as pl

DATA = ROOT / "tests" / "data" / "clevr"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=10_000)
    ap.add_argument("--size", default="128x128")
    ap.add_argument("--solver", default="torch", choices=("torch", "numpy"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--chunk-size", type=int, default=2000)
    ap.add_argument("--rules", default="default")
    ap.add_argument("--parser", default="text", choices=("text", "program"))
    ap.add_argument("--no-parse-cache", action="store_true")
    args = ap.parse_args(argv)

    scenes = load_scenes(DATA / "CLEVR_val_scenes_000000-000499.json")
    base = load_questions(DATA / "CLEVR_val_000000-000032_generated_seed0.json", scenes)
    reps = -(-args.questions // len(base))
    questions = (base * reps)[: args.questions]
    size = parse_size(args.size)
    settings = PipelineSettings(rules=args.rules, parser=args.parser, solver=args.solver,
                                device=args.device, chunk_size=args.chunk_size)
    if args.solver == "torch":  # import torch and warm up outside the clock
        clevr_pipeline(base[:5], scenes, settings, reference=False)
    if args.no_parse_cache:
        original = pl.cached_parse_question

        def cold(text):
            original.cache_clear()
            return original(text)

        pl.cached_parse_question = cold
    pl.cached_parse_question.cache_clear() if hasattr(pl.cached_parse_question, "cache_clear") else None
    t0 = time.perf_counter()
    run = clevr_pipeline(questions, scenes, settings, reference=False)
    t1 = time.perf_counter()
    # facts only for the scenes the questions are about (the pipeline's own facts are internal)
    masks = render_question_masks(run, clevr_facts_lookup(scenes), size, "uint8")
    t2 = time.perf_counter()
    n = len(questions)
    total = t2 - t0
    stages = dict(run.timings)
    stages["masks"] = t2 - t1
    print(f"`python benchmarks/bench_vqa_pipeline.py {' '.join(argv if argv is not None else sys.argv[1:])}`"
          f" on {platform.machine()} with {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}: {n} questions, masks {size[0]}x{size[1]} {masks.dtype}, "
          f"solver {args.solver}/{args.device}, chunk {args.chunk_size}, parse cache "
          f"{'off' if args.no_parse_cache else 'on'}\n")
    print("| stage | seconds | share |")
    print("|---|---:|---:|")
    for k, v in stages.items():
        print(f"| {k} | {v:.3f} | {v / total:.0%} |")
    print(f"| **total** | **{total:.3f}** | |")
    print(f"\n**{n / total:,.0f} questions/s** (solver blocks converged: "
          f"{int(run.converged.sum())}/{len(run.converged)}, mean iterations "
          f"{run.solver_iterations.mean():.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

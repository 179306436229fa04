"""Batched MAP inference: problems per second for many small CLEVR-sized HL-MRFs.

    python benchmarks/bench_batch.py [--sizes 1,64,1024,16384] [--device cpu]
                                     [--dtypes float32,float64] [--numpy-subset 512]
                                     [--cvxpy-max 64] [--threads N] [--seed 0]
    python benchmarks/bench_batch.py --large 10000000 --device cuda   # one large model (GPU)

Each problem is one VQA question's model (``hlmrf.testing.random_models.clevr_like_model``):
4 mentions x 10 objects candidate variables, 200 random soft potentials over 1-3 of them, half
squared, and an at-most-one constraint per mention (``sum_O candidate(M, O) <= 1``). Timed, from
a list of models to a list of Results, with the default :class:`AdmmSettings`:

* numpy ADMM one by one (``solve_admm``), on the first ``--numpy-subset`` models when B is larger
  (problems/second is then measured on that subset; the table says so);
* cvxpy/OSQP one by one (``solve_cvxpy``, eps 1e-6), only when B <= ``--cvxpy-max``; otherwise
  "n/a (skipped, too slow)": nothing is extrapolated;
* torch batched (``solve_batch``) on ``--device`` for each of ``--dtypes``.

Prints a Markdown table with the machine's load average before and after, since other work on the
same cores changes every number.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

from hlmrf.testing.random_models import clevr_like_model, random_model

from hlmrf.inference.admm import solve_admm
from hlmrf.inference.settings import AdmmSettings


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _fmt(pps: float | None, note: str = "") -> str:
    if pps is None:
        return "n/a (skipped, too slow)"
    return f"{pps:,.0f}{note}" if pps >= 100 else f"{pps:,.1f}{note}"


def bench_sizes(args) -> None:
    from hlmrf.inference.torch_admm import solve_batch

    st = AdmmSettings()
    sizes = [int(s) for s in args.sizes.split(",")]
    dtypes = [d for d in args.dtypes.split(",") if d]
    rng = np.random.default_rng(args.seed)
    models_all, gen_s = _timed(lambda: [clevr_like_model(rng) for _ in range(max(sizes))])
    m0 = models_all[0]
    print(f"# Batched MAP inference, CLEVR-sized problems ({m0.n} variables, ~{m0.m} rows, "
          f"~{m0.A.nnz} local copies each)\n")
    print(f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch threads {_torch_threads()}, device {args.device}")
    print(f"- load average before: {_load()}; models generated in {gen_s:.1f} s (not timed)")
    # Warm-ups, not timed: first calls pay imports and one-off initialisation.
    solve_admm(m0, st)
    for dt in dtypes:
        solve_batch([m0], st, device=args.device, dtype=dt)
    if min(sizes) <= args.cvxpy_max:
        from hlmrf.inference.check import solve_cvxpy

        solve_cvxpy(m0, solver="OSQP", eps=1e-6)
    rows = []
    numpy_cache: dict[int, float] = {}
    for B in sizes:
        models = models_all[:B]
        k = min(B, args.numpy_subset)
        if k not in numpy_cache:
            res, secs = _timed(lambda: [solve_admm(m, st) for m in models[:k]])
            numpy_cache[k] = k / secs
            numpy_iters = np.mean([r.iterations for r in res])
        pps_np = numpy_cache[k]
        note_np = f" (first {k})" if k < B else ""
        pps_cvx = None
        if B <= args.cvxpy_max:
            from hlmrf.inference.check import solve_cvxpy

            _, secs = _timed(lambda: [solve_cvxpy(m, solver="OSQP", eps=1e-6) for m in models])
            pps_cvx = B / secs
        torch_cells, ratios = [], []
        for dt in dtypes:
            res, secs = _timed(lambda: solve_batch(models, st, device=args.device, dtype=dt,
                                                   max_copies=args.max_copies,
                                                   compact_share=args.compact_share))
            bad = sum(not r.ok for r in res)
            pps = B / secs
            torch_cells.append(_fmt(pps) + (f" ({bad} not converged)" if bad else ""))
            ratios.append(f"{pps / pps_np:.1f}x")
        rows.append([f"{B:,}", _fmt(pps_np, note_np), _fmt(pps_cvx)] + torch_cells + ratios)
        print(f"  B={B}: done (load {_load()})", file=sys.stderr, flush=True)
    head = (["B", "numpy ADMM 1-by-1", "cvxpy/OSQP 1-by-1"] + [f"torch {d} batched" for d in dtypes]
            + [f"{d} / numpy" for d in dtypes])
    print(f"- numpy ADMM: {numpy_iters:.0f} iterations per problem on average\n")
    print("problems per second (higher is better)\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---:" for _ in head) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"\n- load average after: {_load()}")


def bench_large(args) -> None:
    """One large model (``--large`` soft potentials over ``--large / 10`` variables, half squared,
    plus at-most-one constraints over groups of 10): numpy ADMM vs torch on ``--device``."""
    from hlmrf.inference.torch_admm import solve_torch

    rng = np.random.default_rng(args.seed)
    n = max(args.large // 10, 10)
    cons = [("leq", range(i, i + 10), 1.0) for i in range(0, n - 9, 10)][: args.large // 100]
    model, gen_s = _timed(lambda: random_model(rng, n, args.large, squared_share=0.5, constraints=cons))
    print(f"# One large model: {model.n:,} variables, {model.m:,} rows, {model.A.nnz:,} local copies\n")
    print(f"- load average before: {_load()}; generated in {gen_s:.1f} s (not timed)")
    st = AdmmSettings(max_iter=args.large_iters)
    print("\n| solver | seconds | iterations | status | energy |\n|---|---:|---:|---|---:|")
    runs = [("numpy ADMM", lambda: solve_admm(model, st))] if not args.skip_numpy else []
    runs += [(f"torch {d} {args.device}", lambda d=d: solve_torch(model, st, device=args.device, dtype=d))
             for d in args.dtypes.split(",") if d]
    for name, fn in runs:
        res, secs = _timed(fn)
        print(f"| {name} | {secs:.2f} | {res.iterations} | {res.status.value} | {res.energy:.6g} |")
    print(f"\n- load average after: {_load()}")


def _torch_threads() -> str:
    try:
        import torch

        return str(torch.get_num_threads())
    except ImportError:  # pragma: no cover
        return "n/a"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1,64,1024,16384", help="comma-separated batch sizes B")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--numpy-subset", type=int, default=512,
                   help="solve at most this many models one by one with numpy ADMM")
    p.add_argument("--cvxpy-max", type=int, default=64, help="run cvxpy/OSQP only for B up to this")
    p.add_argument("--max-copies", type=int, default=None,
                   help="solve_batch's chunk size in local copies (default: its 'auto')")
    p.add_argument("--compact-share", type=float, default=0.25)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--large", type=int, default=0,
                   help="instead: one model with this many potentials (10M is for GPU sessions)")
    p.add_argument("--large-iters", type=int, default=25_000)
    p.add_argument("--skip-numpy", action="store_true", help="with --large: torch only")
    args = p.parse_args()
    args.max_copies = "auto" if args.max_copies is None else args.max_copies
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    bench_large(args) if args.large else bench_sizes(args)


if __name__ == "__main__":
    main()

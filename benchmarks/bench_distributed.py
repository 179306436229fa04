"""Distributed consensus ADMM: one worker against two, on the acquaintances model (issue 16, item 3).

    python benchmarks/bench_distributed.py [--size 300] [--iters 40] [--repeat 3] [--kernels numpy,numba]
                                           [--workdir /tmp/hlmrf-bench-acq]

The model (``gen_acquaintances.py``, reused when present under ``--workdir``) is grounded and
normalised once here and saved as arrays (``acqN-model.npz``); every worker process loads it, as a
worker of ``hlmrf-infer --workers`` holds the whole ground model, and iterates on its rows. Each
configuration runs as fresh processes: one worker (the single-process solver, no communicator) or
two (``torch.distributed`` gloo over 127.0.0.1), with the numpy kernel (one thread) or the numba
kernel (``NUMBA_NUM_THREADS`` threads per worker). Per configuration:

- **ms/iter**: ``solve_admm``'s loop with tolerances 0 and polishing off, the time between its
  first and last stopping-rule checks divided by the iterations between them (set-up and the
  final certificate outside), best of ``--repeat``, worker 0's clock;
- **all-reduce ms/iter** and **floats/iter**: the part of that span spent in
  ``TorchComm.sum``/``max`` on worker 0, and the floats it reduced;
- **solve**: the default settings (polishing on) to the certificate: iterations, status, seconds,
  and the largest difference of the values from the one-worker numpy solve.

Then the gloo all-reduce alone on 2 workers, for 1, n and 10 n floats (best of 200 after a warm
up), which ``docs/scaling.md`` uses for its latency and per-byte terms.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from _common import fmt, header, load_line, md_table

CONFIGS = [  # (label, kernel, workers, threads per worker)
    ("numpy, 1 worker", "numpy", 1, 1),
    ("numpy, 2 workers", "numpy", 2, 1),
    ("numba, 1 worker x 1 thread", "numba", 1, 1),
    ("numba, 1 worker x 2 threads", "numba", 1, 2),
    ("numba, 2 workers x 1 thread", "numba", 2, 1),
]


def model_file(size: int, workdir: Path, seed: int = 0) -> Path:
    """The ground, normalised model as arrays (written once)."""
    path = workdir / f"acq{size}-model.npz"
    if path.exists():
        return path
    from gen_acquaintances import write_model
    from hlmrf.api import load_facts, load_rules
    from hlmrf.grounding.ground import ground

    d = workdir / f"acq{size}"
    if not (d / "rules.psl").exists():
        write_model(d, size, seed=seed)
    program = load_rules(d / "rules.psl")
    m = ground(program, load_facts(d / "facts", program)).normalized()
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, indptr=m.A.indptr, indices=m.A.indices, data=m.A.data, n=m.n, c=m.c, w=m.w, p=m.p,
             kind=m.kind, rule=m.rule)
    os.replace(tmp, path)
    return path


def load_model(path: Path):
    import scipy.sparse as sp

    from hlmrf.model.hlmrf import HLMRF

    z = np.load(path)
    A = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=(len(z["indptr"]) - 1, int(z["n"])))
    A.has_sorted_indices = True
    return HLMRF(A, z["c"], z["w"], z["p"], z["kind"], z["rule"])


def worker(args) -> None:
    """One worker process: time the loop, solve, and (2 workers) time the bare all-reduce."""
    from hlmrf.inference.admm import solve_admm
    from hlmrf.inference.settings import AdmmSettings

    comm = None
    if args.world > 1:
        import torch.distributed as dist

        from hlmrf.distributed import TorchComm

        dist.init_process_group("gloo", init_method=f"file://{args.init}", rank=args.rank,
                                world_size=args.world)
        comm = TorchComm()
    model = load_model(Path(args.model))
    base = AdmmSettings(eps_abs=0.0, eps_rel=0.0, polish=False, kernel=args.kernel)
    out: dict = {"rows_here": None}
    best = None
    for _ in range(args.repeat):
        stamps = []

        def cb(it, r, s):
            stamps.append((it, time.perf_counter(), *((comm.seconds, comm.floats) if comm else (0.0, 0))))

        solve_admm(model, replace(base, max_iter=args.iters + 5), callback=cb, comm=comm)
        (i0, t0, c0, f0), (i1, t1, c1, f1) = stamps[0], stamps[-1]
        per = ((t1 - t0) / (i1 - i0), (c1 - c0) / (i1 - i0), (f1 - f0) / (i1 - i0))
        best = per if best is None or per[0] < best[0] else best
    out["ms_iter"], out["allreduce_ms_iter"], out["floats_iter"] = best[0] * 1e3, best[1] * 1e3, best[2]
    t0 = time.perf_counter()
    res = solve_admm(model, AdmmSettings(kernel=args.kernel), comm=comm)
    out.update(solve_s=time.perf_counter() - t0, iterations=res.iterations, status=res.status.value,
               energy=res.energy, m=model.m, copies=int(model.A.nnz), n=model.n)
    if comm is not None:
        out["rows_here"] = comm.partition(model).stop - comm.partition(model).start
        out["allreduce"] = allreduce_times(comm, model.n) if args.kernel == "numpy" else None
    if args.rank == 0:
        np.save(args.out + ".y.npy", res.y)
        Path(args.out).write_text(json.dumps(out))
    if comm is not None:
        import torch.distributed as dist

        dist.destroy_process_group()


def allreduce_times(comm, n: int, reps: int = 200) -> dict:
    """Best seconds of one all-reduce of 1, n and 10 n float64s."""
    times = {}
    for k in (1, n, 10 * n):
        x = np.ones(k)
        for _ in range(20):
            comm.sum(x.copy())
        best = float("inf")
        for _ in range(reps):
            y = x.copy()
            t0 = time.perf_counter()
            comm.sum(y)
            best = min(best, time.perf_counter() - t0)
        times[str(k)] = best
    return times


def run_config(path: Path, kernel: str, workers: int, threads: int, args, tmp: Path) -> dict:
    init = tmp / f"init-{kernel}-{workers}-{threads}"
    out = tmp / f"out-{kernel}-{workers}-{threads}.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": str(threads)}
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", "--rank", str(r), "--world", str(workers),
                               "--init", str(init), "--model", str(path), "--kernel", kernel,
                               "--iters", str(args.iters), "--repeat", str(args.repeat), "--out", str(out)],
                              env=env) for r in range(workers)]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"a worker failed ({codes}) in {kernel}, {workers} workers")
    res = json.loads(out.read_text())
    res["y"] = np.load(str(out) + ".y.npy")
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=300)
    ap.add_argument("--iters", type=int, default=40, help="iterations timed")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--kernels", default="numpy,numba", help="kernels to time (default numpy,numba)")
    ap.add_argument("--workdir", default="/tmp/hlmrf-bench-acq")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for name in ("--rank", "--world"):
        ap.add_argument(name, type=int, default=0, help=argparse.SUPPRESS)
    for name in ("--init", "--model", "--kernel", "--out"):
        ap.add_argument(name, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)

    print(header(f"Distributed consensus ADMM: 1 vs 2 workers, acquaintances N={args.size}"))
    t0 = time.perf_counter()
    path = model_file(args.size, Path(args.workdir))
    print(f"model arrays: {path} (ready in {time.perf_counter() - t0:.1f} s)\n")
    rows, ref, comm_times = [], None, None
    with tempfile.TemporaryDirectory(prefix="hlmrf-bench-dist-") as tmp:
        kernels = [k.strip() for k in args.kernels.split(",")]
        for label, kernel, workers, threads in [c for c in CONFIGS if c[1] in kernels]:
            load = load_line().split(" on ")[0].replace("load average ", "")
            r = run_config(path, kernel, workers, threads, args, Path(tmp))
            ref = r if ref is None else ref
            comm_times = r.get("allreduce") or comm_times
            per_worker = r["rows_here"] or r["m"]
            rows.append([label, f"{per_worker:,}", fmt(r["ms_iter"], ".1f"), fmt(r["allreduce_ms_iter"], ".2f"),
                         fmt(r["floats_iter"], ",.0f"), r["iterations"], r["status"], fmt(r["solve_s"], ".2f"),
                         fmt(float(np.max(np.abs(r["y"] - ref["y"]))), ".1e"), load])
    print(f"{ref['m']:,} potentials, {ref['copies']:,} local copies, {ref['n']:,} variables\n")
    print(md_table(["configuration", "rows on worker 0", "ms/iter", "all-reduce ms/iter", "floats/iter",
                    "solve iterations", "status", "solve s", "max |y - y(numpy, 1)|", "load (1, 5, 15 min) before"],
                   rows))
    if comm_times:
        print("\ngloo all-reduce alone, 2 workers on 127.0.0.1 (best of 200):\n")
        print(md_table(["floats", "bytes", "ms"], [[f"{int(k):,}", f"{8 * int(k):,}", fmt(v * 1e3, ".3f")]
                                                   for k, v in comm_times.items()]))
    print(f"\n{load_line()} (at end)")


if __name__ == "__main__":
    main()

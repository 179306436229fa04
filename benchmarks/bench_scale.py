"""hlmrf-infer at scale: the acquaintances model with the numpy and the DuckDB grounding backends.

    python benchmarks/bench_scale.py [--sizes 600,1000] [--backends numpy,duckdb]
        [--memory-limit 4GB] [--workdir /tmp/hlmrf-bench-scale] [--timeout 5400] [--ground-only]

For each size N the model is written by ``gen_acquaintances.py`` under ``--workdir`` (reused when
present; not timed), then ``hlmrf-infer RULES FACTS -o OUT -v`` runs once per backend in a process
of its own (``python -m hlmrf.cli.infer``): wall time from process start to exit, peak resident set
(``os.wait4``), the grounding and solve times, iterations and status that the command prints,
and, for DuckDB, the largest size its spill folder (``--temp-directory``, under ``--workdir``)
and database file reached, sampled every 0.2 s. DuckDB runs with ``--memory-limit`` and its
database in a file, so its joins spill past the limit. The machine's load is printed with each run.

``--ground-only`` times grounding alone instead (``hlmrf.ground`` in a child process: read the
facts, ground, exit), so the peak resident set is grounding's own: what decides between the
backends when the model fits but a join does not.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path

from _common import fmt, header, load_line, md_table, python, run_measured


def _du(paths) -> int:
    total = 0
    for p in paths:
        p = Path(p)
        if p.is_file():
            total += p.stat().st_size
        elif p.is_dir():
            for root, _, files in os.walk(p):
                for f in files:
                    try:
                        total += os.stat(os.path.join(root, f)).st_size
                    except OSError:
                        pass
    return total


def run(cmd: list[str], watch: list[Path], timeout: float, log_dir: Path):
    """``run_measured(cmd)`` while sampling the largest total size of ``watch``; returns
    ``(ChildRun, peak bytes)``."""
    peak_disk = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak_disk[0] = max(peak_disk[0], _du(watch))
            done.wait(0.2)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        child = run_measured(cmd, timeout=timeout, log_dir=log_dir)
    finally:
        done.set()
        t.join()
    return child, peak_disk[0]


def parse(out: str) -> dict:
    g = re.search(r"grounding: ([\d,]+) ground rules in ([\d.]+) s", out)
    i = re.search(r"inference: \S+ (\S+) after (\d+) iterations in ([\d.]+) s; energy ([-\d.e+]+)", out)
    gap = re.search(r"certified gap <= ([\d.e+-]+)", out)
    return {"rows": int(g.group(1).replace(",", "")) if g else None,
            "ground_s": float(g.group(2)) if g else None,
            "status": i.group(1) if i else None, "iterations": int(i.group(2)) if i else None,
            "solve_s": float(i.group(3)) if i else None, "energy": float(i.group(4)) if i else None,
            "gap": gap.group(1) if gap else None}


def child_ground(rules: str, facts: str, backend: str, memory_limit: str, spill: str, db: str) -> None:
    """Grounding alone, in this process; prints a JSON record."""
    import json

    t0 = time.perf_counter()
    from hlmrf.api import load_facts, load_rules
    from hlmrf.grounding.duckdb_backend import DuckDBOptions
    from hlmrf.grounding.ground import ground

    program = load_rules(rules)
    store = load_facts(facts, program)
    t1 = time.perf_counter()
    kw = {} if backend == "numpy" else {"backend": "duckdb", "duckdb": DuckDBOptions(
        database=db, memory_limit=memory_limit, temp_directory=spill)}
    model = ground(program, store, max_ground_rules=None, **kw)
    t2 = time.perf_counter()
    print(json.dumps({"rows": int(model.m), "load_s": t1 - t0, "ground_s": t2 - t1}))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="600,1000")
    ap.add_argument("--backends", default="numpy,duckdb")
    ap.add_argument("--memory-limit", default="4GB", help="DuckDB's --memory-limit")
    ap.add_argument("--workdir", default="/tmp/hlmrf-bench-scale")
    ap.add_argument("--timeout", type=float, default=5400.0, help="seconds per run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ground-only", action="store_true", help="time grounding alone (hlmrf.ground)")
    ap.add_argument("--_ground", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._ground:
        return child_ground(*args._ground)
    from gen_acquaintances import write_model

    print(header("hlmrf-infer at scale: numpy vs DuckDB grounding (acquaintances)"))
    rows = []
    work = Path(args.workdir)
    for n in [int(s) for s in args.sizes.split(",") if s.strip()]:
        model = work / f"acq{n}"
        if not (model / "rules.psl").exists():
            write_model(model, n, seed=args.seed)
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            out_dir = work / f"out{n}-{backend}"
            spill, db = work / f"spill{n}", work / f"ground{n}.duckdb"
            for p in (out_dir, spill):
                shutil.rmtree(p, ignore_errors=True)
            for p in (db, Path(str(db) + ".wal")):
                p.unlink(missing_ok=True)
            if args.ground_only:
                cmd = [python(), str(Path(__file__).resolve()), "--_ground", str(model / "rules.psl"),
                       str(model / "facts"), backend, args.memory_limit, str(spill), str(db)]
                child, disk = run(cmd, [spill, db, Path(str(db) + ".wal")], args.timeout,
                                  work / f"log{n}-{backend}-ground")
                rec = json.loads(child.stdout.strip().splitlines()[-1]) if child.rc == 0 else {}
                if child.rc != 0:
                    print(f"N={n} {backend}: exit {child.rc}\n{child.stderr[-2000:]}", file=sys.stderr)
                rows.append([n, backend, fmt(rec.get("rows"), ","), fmt(child.wall, ".1f"),
                             fmt(rec.get("ground_s"), ".1f"), fmt(child.maxrss_mb, ".0f"),
                             fmt(child.maxrss_mb * 2**20 / rec["rows"], ".0f") if rec.get("rows") else "n/a",
                             fmt(disk / 2**20, ".0f") if backend == "duckdb" else "-", child.rc, load_line()])
                for p_ in (spill, db, Path(str(db) + ".wal")):
                    shutil.rmtree(p_, ignore_errors=True) if p_.is_dir() else p_.unlink(missing_ok=True)
                continue
            cmd = [python(), "-m", "hlmrf.cli.infer", str(model / "rules.psl"), str(model / "facts"),
                   "-o", str(out_dir), "-v", "--max-ground-rules", "none"]
            if backend == "duckdb":
                cmd += ["--backend", "duckdb", "--memory-limit", args.memory_limit,
                        "--temp-directory", str(spill), "--database", str(db)]
            load = load_line()
            child, disk = run(cmd, [spill, db, Path(str(db) + ".wal")], args.timeout, work / f"log{n}-{backend}")
            rc, wall, rss, out, err = child.rc, child.wall, child.maxrss_mb, child.stdout, child.stderr
            p = parse(out)
            if rc != 0:
                print(f"N={n} {backend}: exit {rc}\n{err[-2000:]}", file=sys.stderr)
            rows.append([n, backend, fmt(p["rows"], ","), fmt(wall, ".1f"), fmt(p["ground_s"], ".1f"),
                         fmt(p["solve_s"], ".1f"), f"{fmt(p['iterations'])} ({p['status'] or 'failed'})",
                         fmt(p["gap"]), fmt(rss, ".0f"),
                         fmt(rss * 2**20 / p["rows"], ".0f") if p["rows"] else "n/a",
                         fmt(disk / 2**20, ".0f") if backend == "duckdb" else "-", rc, load])
            print(f"N={n} {backend}: exit {rc}, {wall:.1f} s, peak {rss:.0f} MiB", file=sys.stderr)
            for p_ in (spill, db, Path(str(db) + ".wal")):
                shutil.rmtree(p_, ignore_errors=True) if p_.is_dir() else p_.unlink(missing_ok=True)
    if args.ground_only:
        print(md_table(["N", "backend", "ground rules", "wall s", "ground s", "peak RSS MiB",
                        "bytes/potential", "DuckDB disk MiB (peak)", "exit", "load before"], rows))
        print(f"\n{load_line()} (at end)")
        return
    print(md_table(["N", "backend", "ground rules", "wall s", "ground s", "solve s", "iterations",
                    "certified gap", "peak RSS MiB", "bytes/potential", "DuckDB disk MiB (peak)", "exit",
                    "load before"], rows))
    print(f"\n{load_line()} (at end)")


if __name__ == "__main__":
    main()

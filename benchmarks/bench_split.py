"""The whole ``hlmrf-infer`` command on one worker, on N workers that each hold the whole model, and
on N workers that each ground and hold only their share (``--split-grounding``).

    python benchmarks/bench_split.py [--sizes 300,600] [--workers 2] [--workdir /tmp/hlmrf-split]

Each configuration is one child process (``python -m hlmrf.cli.infer RULES FACTS -o DIR``),
timed start to exit; its peak resident memory is the largest of its processes' (``os.wait4``
reports the child's and its reaped workers'). The models are the acquaintances models of
``gen_acquaintances.py`` (written under ``--workdir``, reused when present). Grounding seconds,
iterations, status and energy are read from the command's own output. Prints a Markdown table with
the load before each run.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from _common import header, load_line, md_table, run_measured

CONFIGS = (("1 worker", lambda w: []),
           ("{w} workers, each whole", lambda w: ["--workers", str(w)]),
           ("{w} workers, split", lambda w: ["--workers", str(w), "--split-grounding"]))


def model_dir(size: int, workdir: Path) -> Path:
    from gen_acquaintances import write_model

    out = workdir / f"acq{size}"
    if not (out / "rules.psl").exists():
        write_model(out, size)
    return out


def parse(stdout: str) -> dict:
    """Grounding seconds, ground rules, iterations, status and energy from hlmrf-infer's output."""
    g = re.search(r"grounding: ([\d,]+) ground rules.* in ([\d.]+) s", stdout)
    i = re.search(r"inference: .* (converged|iteration_limit|infeasible) after (\d+) iterations .*energy ([\d.]+)",
                  stdout)
    return {"rules": int(g.group(1).replace(",", "")) if g else None, "ground_s": float(g.group(2)) if g else None,
            "status": i.group(1) if i else "n/a", "iterations": int(i.group(2)) if i else None,
            "energy": i.group(3) if i else "n/a"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="300", help="comma-separated N (people)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "hlmrf-split"))
    args = ap.parse_args(argv)
    workdir = Path(args.workdir)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        d = model_dir(size, workdir)
        for name, extra in CONFIGS:
            load = load_line()
            run = run_measured([sys.executable, "-m", "hlmrf.cli.infer", str(d / "rules.psl"), str(d / "facts"),
                                "-o", str(workdir / f"out{size}"), *extra(args.workers)])
            if run.rc != 0:
                print(f"N={size} {name}: exit {run.rc}\n{run.stderr[-2000:]}", file=sys.stderr)
                return 1
            p = parse(run.stdout)
            rows.append([size, f"{p['rules']:,}", name.format(w=args.workers), f"{run.wall:.1f}",
                         f"{p['ground_s']:.1f}", p["iterations"], p["status"], p["energy"],
                         f"{run.maxrss_mb:,.0f}", load])
    print(header(f"hlmrf-infer on 1 and {args.workers} workers, whole and split"))
    print(md_table(["N", "ground rules", "configuration", "wall s", "grounding s", "iterations", "status",
                    "energy", "peak MiB per process", "load before"], rows))
    print(f"\n{load_line()} (at end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

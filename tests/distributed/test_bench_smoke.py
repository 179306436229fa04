"""``benchmarks/bench_distributed.py`` runs end to end at a tiny size (one and two workers, numpy
kernel): both solves converge to the same values and the table carries its numbers."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the distributed benchmark needs torch")
BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_distributed.py"


def test_bench_distributed_runs(tmp_path):
    out = subprocess.run([sys.executable, str(BENCH), "--size", "12", "--iters", "5", "--repeat", "1",
                          "--kernels", "numpy", "--workdir", str(tmp_path)],
                         capture_output=True, text=True, timeout=180, cwd=BENCH.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| numpy, ")]
    assert [r.split("|")[1].strip() for r in rows] == ["numpy, 1 worker", "numpy, 2 workers"]
    for r in rows:
        cells = [c.strip() for c in r.split("|")[1:-1]]
        assert cells[6] == "converged" and float(cells[8]) < 1e-9  # status, max |y - y(1 worker)|
    assert re.search(r"\| 1 \| 8 \| [0-9.]+ \|", out.stdout)  # the bare all-reduce table
    assert out.stdout.startswith("### Distributed consensus ADMM") and "load average" in out.stdout


def test_bench_split_runs(tmp_path):
    """``benchmarks/bench_split.py`` at a tiny size: the three configurations give the same
    energy and ground rules, and each row carries its numbers."""
    bench = BENCH.with_name("bench_split.py")
    out = subprocess.run([sys.executable, str(bench), "--sizes", "15", "--workdir", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, cwd=BENCH.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in out.stdout.splitlines()
            if line.startswith("| 15 |")]
    assert [r[2] for r in rows] == ["1 worker", "2 workers, each whole", "2 workers, split"]
    assert len({r[1] for r in rows}) == 1 and len({r[7] for r in rows}) == 1  # ground rules, energy
    assert all(r[6] == "converged" and float(r[8].replace(",", "")) > 0 for r in rows)

"""Shared helpers of the engine benchmarks: child processes measured for wall time and peak
memory, machine load, and Markdown tables headed by the exact command.

Peak memory is the child's maximum resident set size as the kernel reports it through
``os.wait4`` (``ru_maxrss``, KiB on Linux), so each engine is measured in a process of its own,
JVM and Python interpreter included.
"""
from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ChildRun:
    """One measured child process."""

    rc: int
    wall: float  # seconds, process start to exit
    maxrss_mb: float  # peak resident set size of the child, MiB
    stdout: str
    stderr: str
    timed_out: bool = False


def run_measured(cmd: list[str], timeout: float | None = None, cwd: str | None = None,
                 log_dir: str | Path | None = None, env: dict | None = None) -> ChildRun:
    """Run ``cmd``; return its exit status, wall time, peak RSS and output.

    Output goes to files (no pipe can fill up and stall the child); ``log_dir`` keeps them.
    """
    import tempfile

    tmp = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="hlmrf-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    out_path, err_path = tmp / "stdout.txt", tmp / "stderr.txt"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd, env=env)
        timed_out = False
        deadline = None if timeout is None else t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()  # our own child, by its id
                pid, status, usage = os.wait4(proc.pid, 0)
                timed_out = True
                break
            time.sleep(0.01)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ChildRun(proc.returncode, wall, usage.ru_maxrss / 1024.0, out_path.read_text(),
                    err_path.read_text(), timed_out)


def load_line() -> str:
    """``uptime``'s load averages and the core count, for the table header."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def command_line() -> str:
    """The exact command that produced this output."""
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def header(title: str) -> str:
    return (f"### {title}\n\n`{command_line()}`\n\n"
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}; {platform.node()}; Python "
            f"{platform.python_version()}; {load_line()} (at start)\n")


def md_table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if i else "---" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(lines)


def fmt(x, spec: str = ".3g", missing: str = "n/a") -> str:
    if x is None:
        return missing
    try:
        return format(x, spec)
    except (TypeError, ValueError):
        return str(x)


def parse_settings(pairs: list[str]) -> dict[str, str]:
    """``["alpha=1.6", "eps_rel=1e-4"]`` -> ``{"alpha": "1.6", "eps_rel": "1e-4"}``."""
    out = {}
    for p in pairs:
        if "=" not in p:
            raise SystemExit(f"--settings {p!r} must look like key=value, e.g. alpha=1.6")
        k, v = p.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def python() -> str:
    return sys.executable


def compile_packages(*names: str) -> None:
    """Bytecode for these packages of the checkout, as an installed package has it (not timed):
    pip compiles it at install and an editable install at the first import, but not where
    ``PYTHONDONTWRITEBYTECODE`` is set (as on our benchmark VM), and then every timed run
    recompiles each module changed since its ``.pyc`` was last written (10-20 ms of import time
    at acquaintances N=150 after a day of edits, 0.1-0.2 s for ``vqa-masks``), which no user pays."""
    import compileall

    root = Path(__file__).resolve().parents[1]
    for name in names:
        compileall.compile_dir(str(root / name), quiet=1)

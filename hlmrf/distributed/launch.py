"""Starting the distributed solve from a command: ``hlmrf-infer --workers N`` (local processes)
and ``torchrun`` (any launcher that sets ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT``).

:func:`launch_local` is a small ``torchrun`` for one machine: it starts N copies of the command
with the rendezvous in the environment, shows worker 0's output, and ends the others as soon as
one fails. :func:`join` is what each worker does: it joins the group and says whether it is the
one that prints and writes (rank 0). torch is imported only when a group is joined.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time

from hlmrf.errors import SettingsError

LAUNCHED = "HLMRF_LAUNCHED_WORKERS"
"""Set by :func:`launch_local` in its workers, so their ``--workers N`` does not launch again."""


def world_size() -> int:
    """The number of workers the environment describes (1 when not started by a launcher)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        raise SettingsError(f"WORLD_SIZE={os.environ['WORLD_SIZE'][:40]!r} is not a number of "
                            "workers; unset it or start the command with torchrun") from None


def should_launch(workers: int) -> bool:
    """Whether ``--workers N`` means "start N local processes" (not already inside a launch)."""
    if os.environ.get(LAUNCHED):
        return False
    if workers > 1 and world_size() > 1:
        raise SettingsError(f"--workers {workers} inside a torchrun launch (WORLD_SIZE="
                            f"{world_size()}): drop --workers; torchrun starts the workers")
    return workers > 1


def check_solver(solver: str, workers: int | None = None, database: str | None = None) -> None:
    """Only the numpy/numba ADMM solver runs distributed, and the workers, which each ground the
    whole model, cannot share one DuckDB file (``workers``: as asked on the command line;
    default: as the environment says)."""
    if (workers or world_size()) <= 1:
        return
    if solver != "admm":
        raise SettingsError(f"--solver {solver} does not run on several workers; use --solver admm "
                            "(the default) with --workers or torchrun, or run on one worker")
    if database is not None:
        raise SettingsError(f"--database {database[:80]}: every worker grounds the model in its own "
                            "DuckDB, and they cannot share one file; drop --database (in memory, "
                            "spilling to --temp-directory) or run on one worker")


def check_split(split: bool, workers: int, ground_rules=None, check: bool = False) -> None:
    """``--split-grounding`` needs several workers, and nothing that needs the whole model."""
    if not split:
        return
    if max(workers, world_size()) <= 1:
        raise SettingsError("--split-grounding shares the model among several workers: add "
                            "--workers N (N > 1) or start the command with torchrun")
    if ground_rules:
        raise SettingsError("--ground-rules lists every ground rule, and with --split-grounding no "
                            "worker holds them all: drop one of the two")
    if check:
        raise SettingsError("--check solves the whole model with cvxpy, and with --split-grounding no "
                            "worker holds it: drop one of the two")


def join():
    """Join the group when started as one of several workers: ``(communicator, is_root)``, or
    ``(None, True)`` for a single process."""
    if world_size() == 1:
        return None, True
    from hlmrf.distributed.comm import init_from_env

    comm = init_from_env()
    return comm, comm.rank == 0


def leave(comm) -> None:
    if comm is not None:
        import torch.distributed as dist

        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_local(module: str, argv: list[str], workers: int, stderr=None) -> int:
    """Run ``python -m module *argv`` as ``workers`` processes on this machine; return 0, or the
    exit status of the first worker that failed (its stderr shown when it is not worker 0).

    Worker 0's output goes to this process's stdout and stderr; the others' stderr is kept in
    temporary files (every worker reports a bad input alike: it is shown once).
    """
    stderr = stderr if stderr is not None else sys.stderr
    base = {**os.environ, LAUNCHED: "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
            "WORLD_SIZE": str(workers)}
    procs, logs = [], []
    try:
        for rank in range(workers):
            env = {**base, "RANK": str(rank), "LOCAL_RANK": str(rank)}
            log = None if rank == 0 else tempfile.TemporaryFile("w+")
            logs.append(log)
            procs.append(subprocess.Popen([sys.executable, "-m", module, *argv], env=env,
                                          stdout=None if rank == 0 else subprocess.DEVNULL,
                                          stderr=log))
        while any(p.poll() is None for p in procs):
            if any(p.returncode not in (None, 0) for p in procs):
                break  # one failed: the others would wait for it in an all-reduce
            time.sleep(0.05)
    except KeyboardInterrupt:
        _stop(procs)
        return 130
    try:  # a bad input fails every worker alike: let worker 0 report it, not worker k
        procs[0].wait(timeout=3)
    except subprocess.TimeoutExpired:
        pass
    # the first worker that failed (the others may be ended because of it)
    failed = next((r for r, p in enumerate(procs) if p.returncode not in (None, 0)), None)
    _stop(procs)
    if failed is None:
        return 0
    code = procs[failed].returncode
    if failed != 0:
        logs[failed].seek(0)
        stderr.write(f"worker {failed} of {workers} failed (exit status {code}):\n"
                     f"{logs[failed].read()[-4000:]}")
    return code if code > 0 else 1


def _stop(procs) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

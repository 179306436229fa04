"""The ``torch.distributed`` communicator of the distributed ADMM solve, and how to start one.

:class:`TorchComm` implements :class:`hlmrf.inference.admm.OneWorker`'s interface with
``all_reduce`` (gloo on CPUs; NCCL when asked, copying each reduced array to this worker's GPU and
back, since the kernels iterate in host memory). It also counts what it moves (calls, floats,
seconds), which ``benchmarks/bench_distributed.py`` reports. Importing this module imports torch.
"""
from __future__ import annotations

import contextlib
import os
import time

import numpy as np

from hlmrf.errors import require
from hlmrf.distributed.partition import row_ranges

torch = require("torch", "torch")
import torch.distributed as dist  # noqa: E402


class TorchComm:
    """All-reduce over an initialised ``torch.distributed`` process group.

    Parameters
    ----------
    group : the process group (default: the world).
    device : where the reduction runs: ``"cpu"`` (gloo) or a CUDA device (NCCL).
    """

    def __init__(self, group=None, device: str = "cpu"):
        if not dist.is_initialized():
            raise RuntimeError("torch.distributed is not initialised: call "
                               "hlmrf.distributed.init_from_env() (or init_process_group) first")
        self.group = group
        self.rank = dist.get_rank(group)
        self.size = dist.get_world_size(group)
        self.device = torch.device(device)
        self.calls = 0
        self.floats = 0
        self.seconds = 0.0

    def partition(self, model) -> slice:
        return row_ranges(model.A.indptr, self.size)[self.rank]

    def _reduce(self, x: np.ndarray, op) -> np.ndarray:
        start = time.perf_counter()
        x = np.ascontiguousarray(x, dtype=np.float64)
        t = torch.from_numpy(x)
        if self.device.type != "cpu":
            t = t.to(self.device)
        dist.all_reduce(t, op=op, group=self.group)
        if self.device.type != "cpu":
            x = t.cpu().numpy()
        self.calls += 1
        self.floats += x.size
        self.seconds += time.perf_counter() - start
        return x

    def sum(self, x: np.ndarray) -> np.ndarray:
        return self._reduce(x, dist.ReduceOp.SUM)

    def max(self, x: np.ndarray) -> np.ndarray:
        return self._reduce(x, dist.ReduceOp.MAX)


def init_from_env(backend: str | None = None, timeout_s: float = 600.0) -> TorchComm:
    """Join the process group that ``torchrun`` (or ``hlmrf-infer --workers``) describes in the
    environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``; ``LOCAL_RANK`` picks
    the GPU under NCCL) and return its communicator. ``backend``: ``gloo`` (default) or ``nccl``."""
    import datetime

    backend = backend or os.environ.get("HLMRF_DIST_BACKEND", "gloo")
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    device = "cpu"
    if backend == "nccl":
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        torch.cuda.set_device(device)
    return TorchComm(device=device)


@contextlib.contextmanager
def session(comm: TorchComm):
    """Within the block, :func:`hlmrf.inference.admm.solve_admm` (and so :func:`hlmrf.infer`)
    solves on ``comm``'s workers unless given another communicator."""
    from hlmrf.inference.admm import COMMUNICATOR

    token = COMMUNICATOR.set(comm)
    try:
        yield comm
    finally:
        COMMUNICATOR.reset(token)


def solve_admm_distributed(model, settings=None, comm: TorchComm | None = None, **kwargs):
    """:func:`hlmrf.inference.admm.solve_admm` on this worker's rows of ``model`` (every worker
    calls it with the same model and settings); ``comm`` defaults to the world group's."""
    from hlmrf.inference.admm import solve_admm

    return solve_admm(model, settings, comm=comm if comm is not None else TorchComm(), **kwargs)

"""Consensus ADMM on several worker processes, over ``torch.distributed`` (gloo or NCCL).

Consensus ADMM is a map-reduce: each worker owns a contiguous range of the potentials (rows),
balanced by local copies (:func:`row_ranges`), and iterates on them with the same kernels as the
single-process solver; per iteration only the consensus numerators (one float per variable) and
a few norms are summed across the workers, plus the copy counts once and the certificate's sums
(energy, the largest violation, the dual-bound terms and ``A^T theta``, ``n`` floats) when it is
checked. The loop is :func:`hlmrf.inference.admm.solve_admm` itself, given a communicator
(:class:`~hlmrf.distributed.comm.TorchComm`), so the stopping rule, rho adaptation, certificate and
polish pacing are the single-process ones and so is the result, to rounding.

What this package deliberately does not do (yet): read a worker's rows from partitioned grounding
output. Every worker grounds the whole model and keeps only its rows for iterating; polishing
(a KKT solve on the whole model) runs on every worker alike. ``import hlmrf`` does not import
this package or torch.
"""
from __future__ import annotations

from hlmrf.distributed.partition import row_ranges

__all__ = ["TorchComm", "init_from_env", "row_ranges", "session", "solve_admm_distributed"]


def __getattr__(name):  # torch is imported only when a torch-backed name is used
    if name in ("TorchComm", "init_from_env", "session", "solve_admm_distributed"):
        from hlmrf.distributed import comm

        return getattr(comm, name)
    raise AttributeError(name)

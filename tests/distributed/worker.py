"""One worker of the 2-process equivalence test: ``python worker.py RANK WORLD INIT_FILE OUT``.

Joins a gloo group through a shared file, solves every case of ``cases.py`` distributed and
saves each result (y, u of its rows, status, iterations, energy, bound, residuals) to OUT (npz).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch.distributed as dist

from hlmrf.distributed import TorchComm, solve_admm_distributed

_spec = importlib.util.spec_from_file_location("cases", Path(__file__).with_name("cases.py"))
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)
CASES, MODELS, SETTINGS = cases.CASES, cases.MODELS, cases.SETTINGS


def main(rank: int, world: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    comm = TorchComm()
    saved = {}
    for name, key in CASES:
        model = MODELS[name]()
        res = solve_admm_distributed(model, SETTINGS[key], comm)
        tag = f"{name}|{key}"
        saved[tag + "|y"] = res.y
        saved[tag + "|u"] = res.extra["state"]["u"]
        saved[tag + "|info"] = np.array([res.iterations, res.energy, res.lower_bound, res.violation,
                                         res.primal_residual, res.dual_residual, res.rho,
                                         float(res.extra["polished"])])
        saved[tag + "|status"] = np.array(res.status.value)
    saved["calls"] = np.array([comm.calls, comm.floats])
    np.savez(out, **saved)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])

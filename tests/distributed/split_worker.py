"""One worker of the split-model equivalence test: ``python split_worker.py RANK WORLD INIT OUT``.

Joins a gloo group through a shared file; for every case of ``SPLIT_CASES`` grounds only its share
(``hlmrf.infer(..., share=(rank, world))`` inside a distributed session) and saves y, status,
iterations, energy, bound, its share's row count and the per-rule energies summed over workers.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch.distributed as dist

import hlmrf
from hlmrf.distributed import TorchComm, session
from hlmrf.inference.admm import whole_sum

_spec = importlib.util.spec_from_file_location("cases", Path(__file__).with_name("cases.py"))
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)


def main(rank: int, world: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    comm = TorchComm()
    saved = {}
    with session(comm):
        for name, key in cases.SPLIT_CASES:
            program, store = cases.SPLIT_PROGRAMS[name]()
            run = hlmrf.infer(program, store, cases.SPLIT_SETTINGS[key], share=(rank, world))
            res = run.result
            tag = f"{name}|{key}"
            saved[tag + "|y"] = res.y
            saved[tag + "|info"] = np.array([res.iterations, res.energy, res.lower_bound, res.violation,
                                             run.model.m, float(res.extra["polished"])])
            saved[tag + "|status"] = np.array(res.status.value)
            saved[tag + "|rule_energy"] = whole_sum(run.model, comm, run.energy_by_rule())
    np.savez(out, **saved)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])

"""Stage 5: MAP inference. Every solver maps an HLMRF to a :class:`Result`."""
from __future__ import annotations

from typing import Callable

import numpy as np

from hlmrf.inference.admm import solve_admm
from hlmrf.inference.batch_numpy import solve_batch_numpy
from hlmrf.inference.result import Result, Status
from hlmrf.inference.settings import AdmmSettings
from hlmrf.model.hlmrf import HLMRF

SOLVERS = ("admm", "torch", "cvxpy")


def solve(model: HLMRF, solver: str = "admm", settings: AdmmSettings | None = None,
          y0: np.ndarray | None = None, device: str = "cpu", dtype: str = "float64",
          callback: Callable[[int, float, float], None] | None = None) -> Result:
    """Solve one model with the named solver (``admm``, ``torch`` or ``cvxpy``)."""
    if solver == "admm":
        return solve_admm(model, settings, y0=y0, callback=callback)
    if solver == "torch":
        from hlmrf.inference.torch_admm import solve_torch

        return solve_torch(model, settings, y0=y0, device=device, dtype=dtype, callback=callback)
    if solver == "cvxpy":
        from hlmrf.inference.check import solve_cvxpy

        return solve_cvxpy(model)
    from hlmrf.errors import SettingsError

    raise SettingsError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")


__all__ = ["AdmmSettings", "Result", "SOLVERS", "Status", "solve", "solve_admm", "solve_batch_numpy"]

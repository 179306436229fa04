"""What every solver returns: a value with a status, the state, and an info record."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np


class Status(enum.Enum):
    CONVERGED = "converged"
    ITERATION_LIMIT = "iteration_limit"
    INFEASIBLE = "infeasible"
    OPTIMAL = "optimal"  # an exact reference solver's optimum


@dataclass(frozen=True)
class Result:
    """A MAP state and how it was reached.

    Attributes
    ----------
    y : (n,) variable values in [0, 1].
    status, iterations, primal_residual, dual_residual : the solver's stopping state.
    energy : total weighted energy of the soft potentials at ``y``.
    violation : largest hard-constraint violation at ``y``.
    seconds : wall time of the solve.
    solver : which solver produced it.
    rho : the penalty parameter at the end (ADMM; it adapts).
    """

    y: np.ndarray
    status: Status
    iterations: int
    primal_residual: float
    dual_residual: float
    energy: float
    violation: float
    seconds: float
    solver: str
    rho: float = float("nan")
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def ok(self) -> bool:
        return self.status in (Status.CONVERGED, Status.OPTIMAL)

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
    lower_bound : a certified lower bound on the optimum energy (a Lagrangian dual bound; nan
        when the solver gives none). ``gap`` = ``energy - lower_bound`` bounds how far ``energy``
        is above the optimum, so CONVERGED is a checkable claim.
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
    lower_bound: float = float("nan")

    @property
    def gap(self) -> float:
        """Certified bound on ``energy - optimum`` (nan without a lower bound)."""
        return max(0.0, self.energy - self.lower_bound) if self.lower_bound == self.lower_bound else float("nan")

    @property
    def relative_gap(self) -> float:
        """``gap / max(|energy|, 1e-12)``."""
        return self.gap / max(abs(self.energy), 1e-12)

    @property
    def ok(self) -> bool:
        return self.status in (Status.CONVERGED, Status.OPTIMAL)

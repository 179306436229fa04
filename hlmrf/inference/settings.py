"""ADMM settings: one frozen dataclass with defaults, a one-line doc per field, and validation."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from hlmrf.errors import SettingsError


@dataclass(frozen=True)
class AdmmSettings:
    rho: float = 1.0
    """Initial penalty parameter (the reference engine's default step size)."""
    eps_abs: float = 1e-5
    """Absolute tolerance of the primal and dual residuals (reference default)."""
    eps_rel: float = 1e-3
    """Relative tolerance of the primal and dual residuals (reference default)."""
    max_iter: int = 25_000
    """Iteration limit (reference default)."""
    constraint_tol: float = 1e-5
    """Largest hard-constraint violation accepted at convergence (the reference uses 5e-3)."""
    alpha: float = 1.6
    """Over-relaxation factor in (0, 2); 1 is plain ADMM as in the reference."""
    adaptive_rho: bool = True
    """Rebalance rho when the primal and dual residuals drift apart (residual balancing)."""
    adapt_every: int = 25
    """Iterations between rho rebalancing checks."""
    check_every: int = 5
    """Iterations between stopping-rule checks."""
    gap_rel: float = 1e-4
    """CONVERGED requires a certified duality gap (energy minus a Lagrangian lower bound) of at most
    ``gap_rel * |energy| + gap_abs``."""
    gap_abs: float = field(default=1e-7, metadata={"allow_inf": True})
    """Absolute part of the gap allowance, in energy units of the (normalised) model: it matters only
    when the optimum is near 0, where a relative gap cannot be certified. ``inf`` turns the gap check
    off (the reference engine's residual rule alone; then CONVERGED certifies nothing)."""
    polish: bool = True
    """When the residuals are small but the certificate fails, project the state onto the active
    hard constraints (if only they fail) or solve the active set the ADMM state suggests exactly
    (OSQP's polishing), and keep the result if its certificate is better."""
    polish_max_dim: int = 20_000
    """Skip polishing when its KKT system has more rows than this (a sparse LU of a densely
    connected model can fill in to a dense matrix; 20,000 rows is at most 3.2 GB)."""
    normalize_weights: bool = True
    """Divide weights by the largest before solving (reference default; MAP state unchanged)."""
    kernel: str = field(default="auto", metadata={"choices": ("auto", "numpy", "numba")})
    """The ADMM iteration body: ``numpy`` (the reference implementation), ``numba`` (one fused,
    compiled pass; ``pip install "hlmrf[fast]"``) or ``auto`` (numba when installed and the model
    has more than two million local copies, where its compile-cache load pays, else numpy)."""
    threads: int = 0
    """Threads one solve iterates on. The numpy kernel runs the row ranges of a model of more
    than 500,000 local copies on them; 0 there means one per core this process may use (one per
    worker process when the solve is distributed). The compiled kernel passes it to numba (at
    most ``NUMBA_NUM_THREADS``); 0 there leaves numba's own count. The iterates do not depend on
    it."""

    def __post_init__(self) -> None:
        checks = [
            (self.rho > 0 and self.rho < float("inf"), "rho must be a finite number > 0"),
            (self.eps_abs >= 0 and self.eps_rel >= 0, "eps_abs and eps_rel must be >= 0"),
            (self.max_iter >= 1, "max_iter must be >= 1"),
            (0 < self.alpha < 2, "alpha must lie in (0, 2)"),
            (self.adapt_every >= 1 and self.check_every >= 1, "adapt_every and check_every must be >= 1"),
            (self.constraint_tol > 0, "constraint_tol must be > 0"),
            (self.gap_rel >= 0 and self.gap_abs >= 0, "gap_rel and gap_abs must be >= 0"),
            (self.polish_max_dim >= 0, "polish_max_dim must be >= 0"),
            (self.kernel in ("auto", "numpy", "numba"), "kernel must be one of auto, numpy, numba"),
            (self.threads >= 0, "threads must be >= 0 (0: one per core)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise SettingsError(msg)

    @classmethod
    def from_options(cls, options: list[str] | tuple[str, ...]) -> "AdmmSettings":
        """Build from command-line ``KEY=VALUE`` strings (``-D max_iter=5000``)."""
        pairs = {}
        for opt in options:
            if "=" not in opt:
                raise SettingsError(f"option {opt!r} must look like KEY=VALUE, e.g. max_iter=5000")
            k, v = opt.split("=", 1)
            pairs[k.strip()] = v.strip()
        return cls.from_mapping(pairs)

    @classmethod
    def from_mapping(cls, options: Mapping[str, object]) -> "AdmmSettings":
        """Build from a mapping; unknown keys are an error that lists them and the valid ones,
        and string values are parsed strictly by type (see :mod:`hlmrf.infra.settings`)."""
        from hlmrf.infra.settings import settings_from_mapping

        return settings_from_mapping(cls, options, what="ADMM option")

"""hlmrf: Probabilistic Soft Logic (hinge-loss Markov random fields) in pure Python."""
from hlmrf.errors import (
    DataError,
    GroundingError,
    HlmrfError,
    InfeasibleError,
    MissingDependencyError,
    RuleError,
    RuleSyntaxError,
    SettingsError,
    SolverError,
)

__version__ = "0.1.0"

__all__ = [
    "DataError",
    "GroundingError",
    "HlmrfError",
    "InfeasibleError",
    "MissingDependencyError",
    "RuleError",
    "RuleSyntaxError",
    "SettingsError",
    "SolverError",
    "__version__",
]

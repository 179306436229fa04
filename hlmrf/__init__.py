"""hlmrf: Probabilistic Soft Logic (hinge-loss Markov random fields) in pure Python.

The pipeline, one stage per sub-package: ``language`` (parse rules) -> ``data`` (facts) ->
``grounding`` -> ``model`` (HL-MRF arrays) -> ``inference`` (ADMM, cvxpy, torch) ->
``learning``/``evaluation``, with the command-line tools in ``cli``. Importing hlmrf imports
neither torch nor cvxpy.

>>> import hlmrf
>>> program = hlmrf.load_rules("examples/smokers/rules.psl")          # doctest: +SKIP
>>> store = hlmrf.load_facts("examples/smokers/facts", program)       # doctest: +SKIP
>>> run = hlmrf.infer(program, store)                                  # doctest: +SKIP
>>> run.values("Cancer")[("Anna",)]                                    # doctest: +SKIP
0.99
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hlmrf.infra.fast_import import import_scipy_sparse

import_scipy_sparse()  # first: every module below imports scipy.sparse, which this makes cheaper

from hlmrf.api import Inference, infer, load_facts, load_rules
from hlmrf.data.store import FactStore
from hlmrf.errors import (
    DataError,
    GroundingError,
    HlmrfError,
    HlmrfWarning,
    InfeasibleError,
    MissingDependencyError,
    RuleError,
    RuleSyntaxError,
    SettingsError,
    SolverError,
)
from hlmrf.grounding.ground import ground
from hlmrf.inference import solve
from hlmrf.inference.admm import solve_admm
from hlmrf.inference.result import Result, Status
from hlmrf.inference.settings import AdmmSettings
from hlmrf.language.parser import parse_rules
from hlmrf.model.hlmrf import HLMRF
from hlmrf.model.batch import ModelBatch


def solve_batch(models: Sequence[HLMRF] | ModelBatch, settings: AdmmSettings | None = None,
                device: str = "cpu", dtype: str = "float64",
                y0: Sequence[np.ndarray | None] | None = None, *,
                compact_share: float = 0.25, max_copies: int | str | None = "auto") -> list[Result]:
    """Solve many models at once with the batched torch ADMM (needs the ``torch`` extra).

    ``models`` is a list of :class:`HLMRF` or a :class:`hlmrf.model.batch.ModelBatch`; returns
    one :class:`Result` per model. See :func:`hlmrf.inference.torch_admm.solve_batch` for
    ``compact_share`` (when converged models leave the working set) and ``max_copies`` (the
    working set's size cap).
    """
    from hlmrf.inference.torch_admm import solve_batch as _solve_batch

    return _solve_batch(models, settings, device=device, dtype=dtype, y0=y0,
                        compact_share=compact_share, max_copies=max_copies)


__version__ = "0.1.0"

__all__ = [
    "AdmmSettings",
    "DataError",
    "FactStore",
    "GroundingError",
    "HLMRF",
    "HlmrfError",
    "HlmrfWarning",
    "InfeasibleError",
    "Inference",
    "MissingDependencyError",
    "Result",
    "RuleError",
    "RuleSyntaxError",
    "SettingsError",
    "SolverError",
    "Status",
    "__version__",
    "ground",
    "infer",
    "load_facts",
    "load_rules",
    "parse_rules",
    "solve",
    "solve_admm",
    "solve_batch",
]

"""Seeded random HL-MRFs for solver tests and benchmarks.

``random_model`` draws potentials over a few variables each (PSL-like: coefficients of magnitude
about 1, a constant in [-1, 1]) and hard constraints that are feasible by construction (disjoint
variable groups, right-hand sides inside the reachable range). ``clevr_like_model`` is the shape of
one VQA question: mentions x objects candidate variables with an at-most-one constraint per
mention. Nothing here solves or checks anything.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hlmrf.model.hlmrf import HLMRF
from hlmrf.model.terms import Kind

_KIND_NAMES = {"linear": Kind.LINEAR, "hinge": Kind.HINGE, "leq": Kind.LEQ, "eq": Kind.EQ}


def _kind(k) -> Kind:
    return _KIND_NAMES[k.lower()] if isinstance(k, str) else Kind(k)


def random_model(rng: np.random.Generator, n_vars: int, n_pots: int,
                 kinds: Sequence = ("linear", "hinge"), squared_share: float = 0.5,
                 constraints: int | Sequence = 0, max_arity: int = 3,
                 weights: tuple[float, float] = (0.1, 1.0)) -> HLMRF:
    """A random model.

    Parameters
    ----------
    rng : the generator (the model is a function of its state).
    n_vars, n_pots : variables and soft potentials.
    kinds : soft kinds to draw from (``"linear"``, ``"hinge"`` or :class:`Kind` values).
    squared_share : probability that a soft potential has exponent 2.
    constraints : a number of random hard constraints (``sum_{i in S} y_i <= c`` or ``= c`` over
        disjoint groups ``S``, feasible by construction), or an explicit list of
        ``(kind, vars, c)`` rows meaning ``sum_{i in vars} y_i {<=, =} c``.
    max_arity : most variables per potential.
    weights : range of the uniform weights.
    """
    kinds = [_kind(k) for k in kinds]
    rows = []
    for _ in range(n_pots):
        k = int(rng.integers(1, min(max_arity, n_vars) + 1))
        idx = rng.choice(n_vars, size=k, replace=False)
        coef = rng.choice([-1.0, 1.0], size=k) * rng.uniform(0.5, 1.5, size=k)
        kind = kinds[int(rng.integers(len(kinds)))]
        p = 2 if rng.random() < squared_share else 1
        rows.append(({int(i): float(a) for i, a in zip(idx, coef)}, float(rng.uniform(-1.0, 1.0)),
                     float(rng.uniform(*weights)), p, kind, 0))
    if isinstance(constraints, (int, np.integer)):
        perm = rng.permutation(n_vars)
        size = max(1, min(5, n_vars // max(int(constraints), 1)))
        for j in range(int(constraints)):
            group = perm[j * size:(j + 1) * size]
            if len(group) == 0:
                break
            kind = Kind.LEQ if rng.random() < 0.6 else Kind.EQ
            c = float(rng.uniform(0.2, 0.8) * len(group)) if kind == Kind.EQ else float(rng.uniform(0.0, 1.0))
            rows.append(({int(i): 1.0 for i in group}, c, 0.0, 1, kind, 1))
    else:
        for kind, group, c in constraints:
            rows.append(({int(i): 1.0 for i in group}, float(c), 0.0, 1, _kind(kind), 1))
    return HLMRF.from_rows(rows, n_vars)


def clevr_like_model(rng: np.random.Generator, mentions: int = 4, objects: int = 10,
                     n_pots: int = 200, squared_share: float = 0.5) -> HLMRF:
    """One VQA-question-sized model: ``candidate(M, O)`` variables (mention-major), random soft
    potentials over them, and ``sum_O candidate(M, O) <= 1`` for every mention ``M``."""
    cons = [("leq", range(m * objects, (m + 1) * objects), 1.0) for m in range(mentions)]
    return random_model(rng, mentions * objects, n_pots, squared_share=squared_share, constraints=cons)

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
import scipy.sparse as sp

from hlmrf.model.hlmrf import HLMRF, GroundIndex
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
    kinds = np.array([int(_kind(k)) for k in kinds])
    max_arity = max(1, min(max_arity, n_vars))
    # Vectorised draws (benchmarks build tens of thousands of these): k distinct variables per
    # potential are the first k of a random permutation of each row.
    arity = rng.integers(1, max_arity + 1, size=n_pots)
    order = np.argsort(rng.random((n_pots, n_vars)), axis=1)[:, :max_arity]
    take = np.arange(max_arity)[None, :] < arity[:, None]
    cols = np.sort(np.where(take, order, n_vars), axis=1)  # distinct, sorted; n_vars marks unused
    coef = rng.choice([-1.0, 1.0], size=(n_pots, max_arity)) * rng.uniform(0.5, 1.5, size=(n_pots, max_arity))
    used = cols < n_vars
    indices, data = cols[used], coef[used]
    c = rng.uniform(-1.0, 1.0, size=n_pots)
    w = rng.uniform(*weights, size=n_pots)
    p = np.where(rng.random(n_pots) < squared_share, 2, 1)
    kind = kinds[rng.integers(len(kinds), size=n_pots)]
    rows = []
    if isinstance(constraints, (int, np.integer)):
        perm = rng.permutation(n_vars)
        size = max(1, min(5, n_vars // max(int(constraints), 1)))
        for j in range(int(constraints)):
            group = perm[j * size:(j + 1) * size]
            if len(group) == 0:
                break
            hk = Kind.LEQ if rng.random() < 0.6 else Kind.EQ
            rhs = rng.uniform(0.2, 0.8) * len(group) if hk == Kind.EQ else rng.uniform(0.0, 1.0)
            rows.append(({int(i): 1.0 for i in group}, float(rhs), 0.0, 1, hk, 1))
    else:
        for hk, group, rhs in constraints:
            rows.append(({int(i): 1.0 for i in group}, float(rhs), 0.0, 1, _kind(hk), 1))
    hard = HLMRF.from_rows(rows, n_vars)
    A = sp.vstack([sp.csr_matrix((data, indices, np.r_[0, np.cumsum(arity)]), shape=(n_pots, n_vars)),
                   hard.A], format="csr")
    A.sort_indices()
    return HLMRF(A, np.r_[c, hard.c], np.r_[w, hard.w], np.r_[p, hard.p].astype(np.int8),
                 np.r_[kind, hard.kind].astype(np.int8), np.r_[np.zeros(n_pots, np.int32), hard.rule],
                 GroundIndex(rule_texts=("soft", "hard")))


def clevr_like_model(rng: np.random.Generator, mentions: int = 4, objects: int = 10,
                     n_pots: int = 200, squared_share: float = 0.5) -> HLMRF:
    """One VQA-question-sized model: ``candidate(M, O)`` variables (mention-major), random soft
    potentials over them, and ``sum_O candidate(M, O) <= 1`` for every mention ``M``."""
    cons = [("leq", range(m * objects, (m + 1) * objects), 1.0) for m in range(mentions)]
    return random_model(rng, mentions * objects, n_pots, squared_share=squared_share, constraints=cons)

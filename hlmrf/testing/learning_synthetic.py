"""A synthetic learning problem with known weights: random facts, truth = MAP state under w*."""
from __future__ import annotations

import numpy as np

import hlmrf
from hlmrf.data.store import FactStore
from hlmrf.inference.settings import AdmmSettings

RULES = """\
1: A(X) -> Y(X) ^2
1: B(X) -> !Y(X) ^2
1: Link(X, Z) & Y(X) -> Y(Z) ^2
1: !Y(X) ^2
"""
W_STAR = np.array([4.0, 1.0, 2.0, 0.5])
TIGHT = AdmmSettings(eps_abs=1e-8, eps_rel=1e-7, normalize_weights=True)


def program():
    return hlmrf.parse_rules(RULES, "synthetic.psl")


def facts(seed: int, n: int = 60, links: int = 90, with_truth: bool = True,
          w_star: np.ndarray = W_STAR) -> FactStore:
    """Observations A, B, Link and targets Y; truth Y = MAP state under ``w_star``."""
    rng = np.random.default_rng(seed)
    people = [f"p{i}" for i in range(n)]
    store = FactStore()
    store.add_observations("A", [(p,) for p in people], values=rng.uniform(0, 1, n).round(3))
    store.add_observations("B", [(p,) for p in people], values=rng.uniform(0, 1, n).round(3))
    pairs = set()
    while len(pairs) < links:
        a, b = rng.integers(0, n, 2)
        if a != b:
            pairs.add((people[a], people[b]))
    store.add_observations("Link", sorted(pairs), values=np.ones(len(pairs)))
    store.add_targets("Y", [(p,) for p in people])
    if with_truth:
        prog = program()
        model = hlmrf.ground(prog, store).with_weights(w_star)
        y = hlmrf.solve_admm(model.normalized(), TIGHT).y
        args, cols = model.index.atoms("Y")
        names = model.index.constants
        store.add_truth("Y", [(names[r[0]],) for r in args], values=y[cols])
    return store

"""Small helpers shared by the rule-language tests: build stores, ground, solve exactly."""
from __future__ import annotations

import numpy as np

from hlmrf import parse_rules
from hlmrf.data.store import FactStore
from hlmrf.grounding.ground import ground


def store_of(obs=None, targets=None) -> FactStore:
    """``obs={"P": [("a", "b", 0.5), ...]}``, ``targets={"Q": [("a",), ...]}``."""
    s = FactStore()
    for name, rows in (targets or {}).items():
        s.add_targets(name, rows)
    for name, rows in (obs or {}).items():
        arity = len(rows[0]) - 1 if rows and isinstance(rows[0][-1], float) else None
        s.add_observations(name, rows, arity=arity)
    return s


def ground_text(text: str, store: FactStore, **kw):
    return ground(parse_rules(text, "t.psl"), store, **kw)


def rows(model):
    """Each row as ``({atom name: coefficient}, c, kind, weight)`` for hand comparison."""
    out = []
    for i in range(model.m):
        coefs = model.row_atoms(i)
        out.append((coefs, float(model.c[i]), int(model.kind[i]), float(model.w[i])))
    return out


def exact(model) -> dict[str, float]:
    """The MAP state from cvxpy (an independent solver), by atom name."""
    from hlmrf.inference.check import solve_cvxpy

    y = solve_cvxpy(model).y
    return {model.index.atom_name(j): float(y[j]) for j in range(model.n)}


def admm(model) -> dict[str, float]:
    from hlmrf.inference import solve
    from hlmrf.inference.settings import AdmmSettings

    y = solve(model, "admm", AdmmSettings(eps_abs=1e-8, eps_rel=1e-7, max_iter=50_000)).y
    return {model.index.atom_name(j): float(y[j]) for j in range(model.n)}


def close(a: dict, b: dict, tol: float) -> bool:
    return set(a) == set(b) and all(abs(a[k] - b[k]) <= tol for k in a)


__all__ = ["store_of", "ground_text", "rows", "exact", "admm", "close", "np"]

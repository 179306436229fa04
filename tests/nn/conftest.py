"""Shared by the tests of hlmrf.nn (through the ``ref`` fixture; with ``--import-mode=importlib``
test modules cannot import each other). Independent references for the layer's gradients: an exact solve by cvxpy (Clarabel) and a
dense KKT solve whose active set is read off the exact solver's dual values, not off primal
thresholds as the layer does. Written here from the math, sharing no code with hlmrf.nn."""
from __future__ import annotations

import dataclasses
import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp

from hlmrf.model.hlmrf import HLMRF
from hlmrf.model.terms import Kind
from hlmrf.testing.random_models import random_model


def make_model(seed: int, squared_share: float, constraints: int, n_vars: int = 8, n_pots: int = 18,
               n_in: int = 4, rules: int = 3):
    """A random model (soft rows split over ``rules`` rules, a weak squared prior on every
    variable so the MAP state is unique) and a random input matrix ``B``."""
    rng = np.random.default_rng(seed)
    m = random_model(rng, n_vars, n_pots, squared_share=squared_share, constraints=constraints)
    prior = HLMRF.from_rows([({j: 1.0}, float(rng.uniform(0.2, 0.8)), 0.05, 2, Kind.LINEAR, 0)
                             for j in range(n_vars)], n_vars)
    soft = m.kind <= Kind.HINGE
    rule = np.where(soft, rng.integers(0, rules, m.m), rules).astype(np.int32)
    A = sp.vstack([m.A, prior.A], format="csr")
    model = HLMRF(A, np.r_[m.c, prior.c], np.r_[m.w, prior.w], np.r_[m.p, prior.p].astype(np.int8),
                  np.r_[m.kind, prior.kind].astype(np.int8), np.r_[rule, np.full(n_vars, rules + 1)].astype(np.int32))
    model = dataclasses.replace(model, index=dataclasses.replace(
        model.index, rule_texts=tuple(f"rule {r}" for r in range(rules + 2))))
    B = (rng.random((model.m, n_in)) < 0.3) * rng.uniform(-1.0, 1.0, (model.m, n_in))
    B[model.kind >= Kind.LEQ] = 0.0  # hard rows keep feasible right-hand sides
    return model, B


def exact_solve(model: HLMRF, c: np.ndarray, w: np.ndarray):
    """``(y, duals)`` of the MAP problem by Clarabel at tight tolerances, in epigraph form."""
    import cvxpy as cp

    A = model.A.toarray()
    n = model.n
    y = cp.Variable(n)
    d = A @ y - c
    hinge = np.flatnonzero(model.kind == Kind.HINGE)
    lin = np.flatnonzero(model.kind == Kind.LINEAR)
    leq = np.flatnonzero(model.kind == Kind.LEQ)
    eq = np.flatnonzero(model.kind == Kind.EQ)
    s = cp.Variable(len(hinge))
    sq_h, sq_l = model.p[hinge] == 2, model.p[lin] == 2
    obj = 0
    if len(hinge):
        obj += w[hinge][~sq_h] @ s[np.flatnonzero(~sq_h)] + w[hinge][sq_h] @ cp.square(s[np.flatnonzero(sq_h)])
    if len(lin):
        obj += w[lin][~sq_l] @ d[lin[~sq_l]] + w[lin][sq_l] @ cp.square(d[lin[sq_l]])
    cons = {"lo": y >= 0, "hi": y <= 1}
    if len(hinge):
        cons["epi"] = s >= d[hinge]
        cons["pos"] = s >= 0
    if len(leq):
        cons["leq"] = d[leq] <= 0
    if len(eq):
        cons["eq"] = d[eq] == 0
    prob = cp.Problem(cp.Minimize(obj), list(cons.values()))
    prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11)
    duals = {k: np.atleast_1d(v.dual_value) for k, v in cons.items()}
    return np.asarray(y.value), duals, hinge, leq, eq


def dense_jacobian(model: HLMRF, B: np.ndarray, x: np.ndarray, w: np.ndarray | None = None,
                   margin: float = 1e-5):
    """``dy/dx`` (n x n_in) at the exact MAP state for inputs ``x`` (constants ``c - B x``),
    by a dense KKT solve on the active set given by the exact duals. Returns ``None`` when the
    point is degenerate (a dual or a hinge within ``margin`` of the border of its active set)."""
    w = model.w if w is None else w
    c = model.c - B @ x
    y, du, hinge, leq, eq = exact_solve(model, c, w)
    A = model.A.toarray()
    d = A @ y - c
    n = model.n
    lo, hi = du["lo"], du["hi"]
    at_bound = (lo > margin) | (hi > margin)
    loose = ((lo > 1e-9) & (lo <= margin)) | ((hi > 1e-9) & (hi <= margin))
    free = ~at_bound
    if loose.any():
        return None
    quad, held = [], []
    for k, i in enumerate(hinge):
        lam = du["epi"][k]
        if model.p[i] == 2:
            if abs(d[i]) < margin:
                return None
            if d[i] > 0:
                quad.append(i)
        else:
            if lam < margin or lam > w[i] - margin:  # off the kink: away from it
                if abs(d[i]) < margin:
                    return None
            else:
                held.append(i)
    quad += [i for i in np.flatnonzero(model.kind == Kind.LINEAR) if model.p[i] == 2]
    for k, i in enumerate(leq):
        lam = du["leq"][k]
        if lam > margin:
            held.append(i)
        elif abs(d[i]) < margin:
            return None
    held += list(eq)
    F = np.flatnonzero(free)
    if len(F) == 0:
        return np.zeros((n, B.shape[1]))
    H = sum((2 * w[i] * np.outer(A[i, F], A[i, F]) for i in quad), np.zeros((len(F), len(F))))
    R = -sum((2 * w[i] * np.outer(A[i, F], B[i]) for i in quad), np.zeros((len(F), B.shape[1])))
    C = A[held][:, F] if held else np.zeros((0, len(F)))
    keep = np.abs(C).sum(axis=1) > 0
    C, Bc = C[keep], B[held][keep] if held else np.zeros((0, B.shape[1]))
    K = np.block([[H, C.T], [C, np.zeros((len(C), len(C)))]])
    rhs = np.vstack([R, -Bc])
    sol = np.linalg.lstsq(K, rhs, rcond=None)[0]
    J = np.zeros((n, B.shape[1]))
    J[F] = sol[:len(F)]
    return J


@pytest.fixture(scope="session")
def ref() -> types.ModuleType:
    """This module: ``make_model``, ``exact_solve``, ``dense_jacobian``."""
    return sys.modules[__name__]

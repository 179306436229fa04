"""The math of every potential kind, written once.

Every row ``i`` of a model is an affine function ``d_i(y) = a_i . y - c_i`` of the variables ``y``
in ``[0, 1]^n`` plus a kind code, a weight ``w_i`` and an exponent ``p_i`` in {1, 2}:

=============  ==========================================  ===================================
kind           energy / meaning                            prox step (see below)
=============  ==========================================  ===================================
LINEAR         ``w * d``          (p = 1)                  ``t = w / rho``
               ``w * d^2``        (p = 2)                  ``t = 2 w d / (rho + 2 w |a|^2)``
HINGE          ``w * max(0, d)``  (p = 1)                  0 if ``d <= 0``; ``w/rho`` if that
                                                           keeps ``d(x) >= 0``; else ``d/|a|^2``
               ``w * max(0, d)^2`` (p = 2)                 0 if ``d <= 0``; else as squared LINEAR
LEQ            hard constraint ``d <= 0``                  0 if ``d <= 0``; else ``d / |a|^2``
EQ             hard constraint ``d == 0``                  ``d / |a|^2``
=============  ==========================================  ===================================

The prox step solves ``argmin_x  w f(a.x - c) + rho/2 |x - v|^2`` for one term in closed form
(``d`` is evaluated at ``v``); every solution has the shape ``x = v - t a`` with a scalar ``t`` per
term, which is what lets every solver (numpy, torch) update all terms of a kind at once. The
solvers call :func:`prox_step` (numpy) or re-state these same formulas on tensors; nothing else in
the code base re-derives them.
"""
from __future__ import annotations

import enum

import numpy as np


class Kind(enum.IntEnum):
    LINEAR = 0
    HINGE = 1
    LEQ = 2
    EQ = 3


HARD_KINDS = (Kind.LEQ, Kind.EQ)


def term_energy(d: np.ndarray, w: np.ndarray, p: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Weighted energy of each soft row (0 for hard rows) given its distance ``d = a.y - c``."""
    soft = kind <= Kind.HINGE
    val = np.where(kind == Kind.HINGE, np.maximum(d, 0.0), d)
    val = np.where(p == 2, val * val, val)
    return np.where(soft, w * val, 0.0)


def term_violation(d: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """How far each hard row is from holding (0 for soft rows and for satisfied constraints)."""
    return np.where(kind == Kind.LEQ, np.maximum(d, 0.0), np.where(kind == Kind.EQ, np.abs(d), 0.0))


def prox_step(kind: int, p: int, d: np.ndarray, w: np.ndarray, aa: np.ndarray, rho) -> np.ndarray:
    """The scalar ``t`` of ``x = v - t a`` for terms of one (kind, exponent), vectorised.

    ``d = a.v - c`` at the prox centre ``v``, ``aa = |a|^2``, ``rho`` scalar or per-term array.
    """
    if kind == Kind.LEQ:
        return np.where(d > 0.0, d / aa, 0.0)
    if kind == Kind.EQ:
        return d / aa
    if p == 2:
        t = 2.0 * w * d / (rho + 2.0 * w * aa)
        return t if kind == Kind.LINEAR else np.where(d > 0.0, t, 0.0)
    if kind == Kind.LINEAR:
        return np.broadcast_to(w / rho, d.shape).copy()
    step = w / rho
    return np.where(d <= 0.0, 0.0, np.where(d - step * aa >= 0.0, step, d / aa))


def dual_bound(theta: np.ndarray, A, c: np.ndarray, w: np.ndarray, p: np.ndarray) -> float:
    """A Lagrangian lower bound on the optimum energy, valid for any dual-feasible ``theta``.

    Every term is a maximum of affine functions of ``d = a.y - c``: ``w max(0, d) = max over theta
    in [0, w] of theta d``; ``w max(0, d)^2 = max over theta >= 0 of theta d - theta^2 / (4w)``
    (``theta`` free for the non-hinged kinds, ``[0, inf)`` for LEQ, free for EQ). Swapping min and
    max gives ``-theta.c - sum theta^2/(4w) [p = 2] + sum_i min(0, (A^T theta)_i)``, the box
    [0, 1] taken as it is. ADMM's prox step yields such a ``theta = rho * t`` at every iteration,
    so ``energy - dual_bound`` certifies how far a state is from the optimum.
    """
    g = A.T @ theta
    quad = np.where((p == 2) & (w > 0), theta * theta / (4.0 * np.where(w > 0, w, 1.0)), 0.0)
    # einsum rather than ``@``: a 1-D BLAS dot wakes BLAS threads (slow on a loaded machine).
    return float(-np.einsum("i,i->", theta, c) - quad.sum() + np.minimum(g, 0.0).sum())

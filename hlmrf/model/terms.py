"""The math of every potential kind, written once: :data:`TABLE`.

Every row ``i`` of a model is an affine function ``d_i(y) = a_i . y - c_i`` of the variables ``y``
in ``[0, 1]^n`` plus a kind code, a weight ``w_i`` and an exponent ``p_i`` in {1, 2}. Each
(kind, exponent) is one entry of :data:`TABLE`, and every formula below is that entry's numbers
put into one kind-free expression (``h = max(d, lb)``, ``lb`` = 0 on one-sided rows, -inf on
two-sided ones):

=============  ====================  ======  ==================  =====================  ==========
kind, p        energy                ``lb``  prox ``num / D``    ``K1`` (cap), ``K3``   dual theta
=============  ====================  ======  ==================  =====================  ==========
LINEAR, 1      ``w d``               -inf    0 / 1               ``w/rho``, +inf        ``= w``
LINEAR, 2      ``w d^2``             -inf    2w / (rho+2w|a|^2)  +inf, 0                free
HINGE, 1       ``w max(0, d)``       0       1 / |a|^2           ``w/rho``, 0           [0, w]
HINGE, 2       ``w max(0, d)^2``     0       2w / (rho+2w|a|^2)  +inf, 0                >= 0
LEQ            hard ``d <= 0``       0       1 / |a|^2           +inf, 0                >= 0
EQ             hard ``d == 0``       -inf    1 / |a|^2           +inf, 0                free
=============  ====================  ======  ==================  =====================  ==========

* **Energy** of a soft row: ``w h^p``; hard rows carry none. **Violation** of a hard row:
  ``max(d, 0)`` (LEQ) or ``|d|`` (EQ).
* **Prox step**: ``argmin_x  w f(a.x - c) + rho/2 |x - v|^2`` for one term has the closed form
  ``x = v - t a`` with ``t = min(K1, K3 + num * max(d, lb) / D)`` (``d`` evaluated at ``v``),
  which is what lets every solver update all terms at once. (Linear hinge: the step ``w/rho``
  is taken while it keeps ``d(x) >= 0``, else ``x`` is projected onto ``d = 0``.)
* **Dual bound**: every term is a maximum of affine functions of ``d`` (``w max(0, d)`` is the
  maximum over ``theta`` in [0, w] of ``theta d``; ``w h^2`` that of ``theta d - theta^2/(4w)``),
  so for ``theta`` in the dual domain above, ``-theta.c - sum theta^2/(4w) [p = 2] +
  sum_i min(0, (A^T theta)_i)`` is a lower bound on the optimum (:func:`dual_bound`). ADMM's
  ``theta = rho t`` lies in it at every iteration.

:func:`coefficients` turns the table into per-row arrays; the numpy solver
(:mod:`hlmrf.inference.admm`), the torch solver (tensors built from the same arrays), the
certificates (:mod:`hlmrf.inference.polish`) and the cvxpy cross-check read them, and nothing else
in the code base re-derives these formulas.
"""
from __future__ import annotations

import enum
from typing import Sequence
from dataclasses import dataclass

import numpy as np


class Kind(enum.IntEnum):
    LINEAR = 0
    HINGE = 1
    LEQ = 2
    EQ = 3


HARD_KINDS = (Kind.LEQ, Kind.EQ)

W = "w"  # in the table: the row's own weight
_INF = float("inf")


@dataclass(frozen=True)
class KindMath:
    """One entry of :data:`TABLE` (see the module docstring for the formulas it fills in)."""

    energy: str  # the formula, for people
    lb: float  # h = max(d, lb): 0 on one-sided rows, -inf on two-sided ones
    power: int  # energy w h^power; 0 on hard rows (no energy)
    num: tuple  # prox numerator  num[0] * w + num[1]
    den: tuple  # prox denominator  den[0] * w|a|^2 + den[1] * |a|^2 + den[2], plus rho if rho_in_den
    rho_in_den: bool
    cap: bool  # K1 = w / rho (else +inf)
    k3: float  # 0 or +inf
    dual: tuple  # (lo, hi) of theta; W stands for the weight
    violation: int  # 0: soft row; 1: max(d, 0); 2: |d|


_HARD_LEQ = KindMath("d <= 0", 0.0, 0, (0.0, 1.0), (0.0, 1.0, 0.0), False, False, 0.0, (0.0, _INF), 1)
_HARD_EQ = KindMath("d == 0", -_INF, 0, (0.0, 1.0), (0.0, 1.0, 0.0), False, False, 0.0, (-_INF, _INF), 2)

TABLE: dict = {
    (Kind.LINEAR, 1): KindMath("w d", -_INF, 1, (0.0, 0.0), (0.0, 0.0, 1.0), False, True, _INF, (W, W), 0),
    (Kind.LINEAR, 2): KindMath("w d^2", -_INF, 2, (2.0, 0.0), (2.0, 0.0, 0.0), True, False, 0.0, (-_INF, _INF), 0),
    (Kind.HINGE, 1): KindMath("w max(0, d)", 0.0, 1, (0.0, 1.0), (0.0, 1.0, 0.0), False, True, 0.0, (0.0, W), 0),
    (Kind.HINGE, 2): KindMath("w max(0, d)^2", 0.0, 2, (2.0, 0.0), (2.0, 0.0, 0.0), True, False, 0.0, (0.0, _INF), 0),
    (Kind.LEQ, 1): _HARD_LEQ, (Kind.LEQ, 2): _HARD_LEQ,  # the exponent of a hard row is moot
    (Kind.EQ, 1): _HARD_EQ, (Kind.EQ, 2): _HARD_EQ,
}
"""The math of each (kind, exponent): the only place it is written."""


@dataclass(frozen=True)
class Coefficients:
    """:data:`TABLE` laid out per row (arrays of the model's length), for vectorised solvers;
    a field :func:`coefficients` was not asked for is None."""

    lb: np.ndarray  # h = max(d, lb)
    num: np.ndarray  # prox numerator
    den: np.ndarray  # prox denominator, less rho where rho_in_den
    rho_in_den: np.ndarray  # bool (the squared soft rows)
    cap: np.ndarray  # bool: K1 = w / rho
    k3: np.ndarray
    soft: np.ndarray  # bool: carries energy
    sq: np.ndarray  # bool: energy w h^2 (also: a theta^2/(4w) term in the dual bound)
    lo: np.ndarray  # dual domain of theta
    hi: np.ndarray
    leq: np.ndarray  # bool: violation max(d, 0)
    eq: np.ndarray  # bool: violation |d|


def coefficients(kind: np.ndarray, p: np.ndarray, w: np.ndarray, aa: np.ndarray | None = None,
                 fields: Sequence[str] | None = None) -> Coefficients:
    """Each row's entry of :data:`TABLE`, as arrays; ``aa = |a|^2`` (needed for the prox only).

    ``fields``: only these are computed (the others are None), so a solver that needs a few holds
    no per-row arrays for the rest (the numpy ADMM kernel, :data:`PROX_FIELDS`).
    """
    kind, p = np.asarray(kind), np.asarray(p)
    w = np.asarray(w, dtype=np.float64)
    m = len(w)
    aa = np.zeros(m) if aa is None else np.asarray(aa, dtype=np.float64)
    want = set(fields) if fields is not None else set(_FLOATS + _FLAGS)
    arrays = {name: np.zeros(m, float if name in _FLOATS else bool) if name in want else None
              for name in _FLOATS + _FLAGS}
    for (k, e), km in TABLE.items():
        rows = np.flatnonzero((kind == k) & (p == e))
        if len(rows) == 0:
            continue
        wr, ar = w[rows], aa[rows]
        for name, value in _VALUES:  # only the fields asked for: each is a group-sized array
            if arrays[name] is not None:
                arrays[name][rows] = value(km, wr, ar)
    return Coefficients(**arrays)


_VALUES = (
    ("lb", lambda km, wr, ar: km.lb),
    ("num", lambda km, wr, ar: km.num[0] * wr + km.num[1]),
    ("den", lambda km, wr, ar: km.den[0] * wr * ar + km.den[1] * ar + km.den[2]),
    ("k3", lambda km, wr, ar: km.k3),
    ("lo", lambda km, wr, ar: dual_domain(km, wr)[0]),
    ("hi", lambda km, wr, ar: dual_domain(km, wr)[1]),
    ("rho_in_den", lambda km, wr, ar: km.rho_in_den),
    ("cap", lambda km, wr, ar: km.cap),
    ("soft", lambda km, wr, ar: km.power > 0),
    ("sq", lambda km, wr, ar: km.power == 2),
    ("leq", lambda km, wr, ar: km.violation == 1),
    ("eq", lambda km, wr, ar: km.violation == 2),
)
"""Each :class:`Coefficients` field's value on the rows of one table entry ``km`` (their
weights ``wr`` and ``|a|^2`` ``ar``), computed only when :func:`coefficients` is asked for it."""


_FLOATS = ("lb", "num", "den", "k3", "lo", "hi")
_FLAGS = ("rho_in_den", "cap", "soft", "sq", "leq", "eq")
PROX_FIELDS = ("lb", "num", "den", "k3", "rho_in_den", "cap", "sq")
"""What :func:`prox_bounds`, :func:`prox_at` and :func:`dual_bound` read."""


def prox_bounds(co: Coefficients, w: np.ndarray, rho) -> tuple[np.ndarray, np.ndarray]:
    """``(K1, D)`` of the prox step at ``rho`` (scalar or per row); only these depend on rho."""
    with np.errstate(divide="ignore"):
        return np.where(co.cap, w / rho, np.inf), np.where(co.rho_in_den, rho + co.den, co.den)


@dataclass(frozen=True)
class ProxAt:
    """The prox step of every row at one ``rho``, with what does not depend on ``d`` folded:
    ``t = min(K1, K3 + h * ratio)``, ``h = max(d, lb)``, ``ratio = num / D`` (``K1``, ``D`` from
    :func:`prox_bounds`). ``k3`` is None when it is 0 on every row and ``K1`` None when it is
    +inf on every row (then :meth:`step` skips those passes: two of the four on a model of squared
    hinges). Made by :func:`prox_at` whenever rho changes; :meth:`rows` gives a contiguous share.
    """

    lb: np.ndarray | float  # a number when every row has the same
    ratio: np.ndarray
    k3: np.ndarray | None
    K1: np.ndarray | None
    zero: np.ndarray  # rows whose D is 0 (rows without copies: constant terms)
    num: np.ndarray  # num, on ``zero``'s rows

    def step(self, d: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The multiplier ``t`` of ``x = v - t a`` for every row, from ``d = a.v - c`` at the prox
        centre ``v`` (into ``out`` when given; ``d`` itself may be ``out``). On a row whose ``D``
        is 0, ``0 / 0`` is taken as 0 (an inactive hinge's multiplier), not nan; a positive
        numerator gives inf, which ``K1`` caps at the weight."""
        t = np.maximum(d, self.lb, out=out)
        if len(self.zero):
            q = self.num * t[self.zero]
            np.multiply(t, self.ratio, out=t)
            with np.errstate(divide="ignore", invalid="ignore"):
                t[self.zero] = np.where(q == 0.0, 0.0, q / 0.0)  # 0 / 0 is 0; q / 0 stays +-inf
        else:
            np.multiply(t, self.ratio, out=t)
        if self.k3 is not None:
            np.add(t, self.k3, out=t)
        if self.K1 is not None:
            np.minimum(t, self.K1, out=t)
        return t

    def rows(self, r0: int, r1: int) -> "ProxAt":
        """The same step on rows ``r0:r1`` only (views, no copies of the per-row arrays)."""
        part = (self.zero >= r0) & (self.zero < r1)
        lb = self.lb if np.ndim(self.lb) == 0 else self.lb[r0:r1]
        return ProxAt(lb, self.ratio[r0:r1], None if self.k3 is None else self.k3[r0:r1],
                      None if self.K1 is None else self.K1[r0:r1], self.zero[part] - r0, self.num[part])


def prox_at_groups(groups, w: np.ndarray, aa: np.ndarray, rho) -> ProxAt:
    """:func:`prox_at` for a model whose rows come in ``groups``, ``(kind, p, rows)`` with ``rows``
    a slice or an index array (as :func:`hlmrf.inference.admm.layout` lists them), made group by
    group: no per-row :class:`Coefficients` is held (35 bytes a row), only the step's own arrays,
    and ``lb`` is a number when every group has the same."""
    m = len(w)
    lbs = {TABLE[k, p].lb for k, p, _ in groups}
    lb = lbs.pop() if len(lbs) == 1 else np.empty(m)
    ratio = np.zeros(m)
    k3 = K1 = None
    zero, num = [np.zeros(0, np.int64)], [np.zeros(0)]
    for kind, p, rows in _chunks(groups, PROX_CHUNK):
        wr, ar = w[rows], aa[rows]
        code = np.full(len(wr), kind, np.int8)
        g = prox_at(coefficients(code, np.full(len(wr), p, np.int8), wr, ar, PROX_FIELDS), wr,
                    rho if np.ndim(rho) == 0 else rho[rows])
        del code, ar
        ratio[rows] = g.ratio
        if np.ndim(lb):
            lb[rows] = TABLE[kind, p].lb
        if g.k3 is not None:
            k3 = np.zeros(m) if k3 is None else k3
            k3[rows] = g.k3
        if g.K1 is not None:
            K1 = np.full(m, np.inf) if K1 is None else K1
            K1[rows] = g.K1
        if len(g.zero):
            zero.append(g.zero + rows.start if isinstance(rows, slice) else rows[g.zero])
            num.append(g.num)
    zero, num = np.concatenate(zero), np.concatenate(num)
    order = np.argsort(zero, kind="stable")
    return ProxAt(lb, ratio, k3, K1, zero[order], num[order])


PROX_CHUNK = 1 << 18
"""Rows per piece that :func:`prox_at_groups` makes at a time: its temporaries (a dozen per-row
arrays of the piece) stay a few MiB, not 170 MiB at acquaintances N=300."""


def _chunks(groups, size: int):
    """``(kind, p, rows)`` of every group, cut into pieces of at most ``size`` rows."""
    for kind, p, rows in groups:
        if isinstance(rows, slice):
            for a in range(rows.start, rows.stop, size):
                yield kind, p, slice(a, min(a + size, rows.stop))
        else:
            for a in range(0, len(rows), size):
                yield kind, p, rows[a:a + size]


def prox_at(co: Coefficients, w: np.ndarray, rho) -> ProxAt:
    """:class:`ProxAt` at ``rho`` (a scalar or one per row) from the per-row table entries."""
    K1, D = prox_bounds(co, w, rho)
    zero = np.flatnonzero(D == 0.0)
    ratio = np.divide(co.num, D, out=np.zeros(len(D)), where=D != 0.0)  # D = 0: see step
    return ProxAt(co.lb, ratio, co.k3 if bool(co.k3.any()) else None,
                  K1 if bool(np.isfinite(K1).any()) else None, zero, co.num[zero])


def _entries(kind: np.ndarray, p: np.ndarray):
    """``(KindMath, rows)`` for each table entry present; rows as a boolean mask. One entry at a
    time, so evaluating a model of millions of rows holds a mask, not :func:`coefficients`'
    dozen per-row arrays."""
    kind, p = np.asarray(kind), np.asarray(p)
    for (k, e), km in TABLE.items():
        rows = (kind == k) & (p == e)
        if rows.any():
            yield km, rows


def term_energy(d: np.ndarray, w: np.ndarray, p: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Weighted energy ``w h^p`` of each soft row (0 for hard rows) given its distance ``d``."""
    d, w = np.asarray(d, dtype=np.float64), np.asarray(w, dtype=np.float64)
    out = np.zeros(len(d))
    for km, rows in _entries(kind, p):
        if km.power:
            h = np.maximum(d[rows], km.lb)
            out[rows] = w[rows] * (h * h if km.power == 2 else h)
    return out


def term_violation(d: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """How far each hard row is from holding (0 for soft rows and for satisfied constraints)."""
    d = np.asarray(d, dtype=np.float64)
    out = np.zeros(len(d))
    kind = np.asarray(kind)
    for km, rows in _entries(kind, np.ones_like(kind)):
        if km.violation == 1:
            out[rows] = np.maximum(d[rows], 0.0)
        elif km.violation == 2:
            out[rows] = np.abs(d[rows])
    return out


def dual_domain(km: KindMath, w):
    """``(lo, hi)``, the dual domain of ``theta`` on rows of table entry ``km`` whose weights are
    ``w`` (:data:`W` in the table stands for the weight)."""
    lo, hi = km.dual
    return (w if lo == W else lo), (w if hi == W else hi)


def clip_dual(theta: np.ndarray, lo, hi, out: np.ndarray | None = None) -> np.ndarray:
    """``theta`` moved into ``[lo, hi]``, non-finite values to 0 (into ``out`` when given)."""
    # fmax/fmin, not clip: a NaN multiplier of a fixed-multiplier row (lo = hi = w) becomes w.
    out = np.fmax(theta, lo, out=out)
    np.fmin(out, hi, out=out)
    out[~np.isfinite(out)] = 0.0
    return out


def project_dual(co: Coefficients, theta: np.ndarray) -> np.ndarray:
    """``theta`` moved into each row's dual domain ``[lo, hi]`` (non-finite values to 0)."""
    return clip_dual(np.asarray(theta, dtype=np.float64), co.lo, co.hi)


def dual_bound(theta: np.ndarray, A, c: np.ndarray, w: np.ndarray, sq: np.ndarray) -> float:
    """The Lagrangian lower bound on the optimum energy for a dual-feasible ``theta`` (see the
    module docstring); ``sq`` is :attr:`Coefficients.sq`. ``energy - dual_bound`` certifies how
    far a state is from the optimum."""
    g = A.T @ theta
    quad = np.where(sq & (w > 0), theta * theta / (4.0 * np.where(w > 0, w, 1.0)), 0.0)
    # einsum rather than ``@``: a 1-D BLAS dot wakes BLAS threads (slow on a loaded machine).
    return float(-np.einsum("i,i->", theta, c) - quad.sum() + np.minimum(g, 0.0).sum())

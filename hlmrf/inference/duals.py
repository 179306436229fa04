"""ADMM's scaled duals, one per local copy, held without a per-copy array.

Consensus ADMM with over-relaxation (:func:`hlmrf.inference.admm.solve_admm`) updates the scaled
dual of copy ``k`` (row ``i``, variable ``j``, coefficient ``a_k``) as::

    u'_k = (1 - alpha) u_k - alpha t_i a_k + (z_j - z'_j)

(``t_i`` the row's prox multiplier: ``x_k = z_j - u_k - t_i a_k``, ``xh = alpha x + (1 - alpha)
z[var]``, ``u' = u + xh - z'[var]``). The forcing terms are one number per row times the copy's
coefficient, and one number per variable, so by induction every iterate is::

    u_k = a_k tau_i + eps_j + beta h0_k

with ``tau`` per row, ``eps`` per variable, ``beta`` a scalar and ``h0`` the duals the solve started
from (None for a cold start), updated as ``tau' = (1 - alpha) tau - alpha t``, ``eps' = (1 - alpha)
eps + (z - z')``, ``beta' = (1 - alpha) beta``. Everything the iteration reads from the duals
follows without the per-copy array: a row's ``sum a_k u_k`` is ``|a_i|^2 tau_i + (A eps)_i + beta
(P h0)_i``, and a variable's ``sum u_k`` is ``(A^T tau)_j + deg_j eps_j + beta (sum h0)_j``. So the
kernels stream the coefficients and columns of the copies, not their duals (12 bytes a copy per
iteration instead of 28), and a solve holds 8 bytes a row instead of 8 a copy.

:class:`RowDuals` holds that state; :meth:`RowDuals.per_copy` forms ``u`` when it is asked for.
:class:`DualState` is what ``Result.extra["state"]`` holds: ``state["u"]`` is formed on first
reading, and a solve warm-started from it on the same matrix takes ``tau``, ``eps`` over exactly.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hlmrf.errors import SettingsError


class RowDuals:
    """The duals of the copies of ``A``'s rows (a worker's rows on several workers), as
    ``u_k = a_k tau[row_k] + eps[var_k] + beta h0_k``.

    Attributes
    ----------
    tau : (m,) per row. eps : (n,) per variable. beta : the weight of ``h0``.
    h0 : (L,) the per-copy duals of a warm start that is not of this form, else None;
    ph0 : (m,) ``sum_k a_k h0_k`` per row, and s0 : (n,) ``sum_k h0_k`` per variable (this
    worker's copies), when ``h0`` is set.
    """

    def __init__(self, A, n: int):
        self.A = A
        self.tau = np.zeros(A.shape[0])
        self.eps = np.zeros(n)
        self.beta = 0.0
        self.h0 = self.ph0 = self.s0 = None

    def warm_start(self, state) -> float | None:
        """Start from ``state`` (a :class:`DualState` or a mapping with per-copy ``"u"`` and
        ``"rho"``); returns its rho, or None when its shapes do not match (nothing changes).
        A :class:`DualState` of a solve on this same matrix is taken over exactly; any other
        state through its per-copy duals."""
        if isinstance(state, DualState) and state.duals.A is self.A:
            src = state.duals
            self.tau, self.eps = src.tau.copy(), src.eps.copy()
            self.beta, self.h0, self.ph0, self.s0 = src.beta, src.h0, src.ph0, src.s0
            return float(state["rho"])
        rho = _checked_rho(state)
        u = state.get("u")
        if np.shape(u) != (self.A.nnz,):
            return None
        try:
            u = np.array(u, dtype=np.float64)
        except (TypeError, ValueError):
            u = None
        if u is None or not np.isfinite(u).all():
            raise SettingsError('state["u"] must hold finite numbers, one per local copy '
                                '(pass previous_result.extra["state"] as it is)')
        self.set_per_copy(u)
        return rho

    def set_per_copy(self, u: np.ndarray) -> None:
        """Duals given one per copy (in the CSR matrix's copy order)."""
        import scipy.sparse as sp

        A = self.A
        H = sp.csr_matrix((u, A.indices, A.indptr), shape=A.shape, copy=False)
        self.tau[:] = 0.0
        self.eps[:] = 0.0
        self.beta, self.h0 = 1.0, u
        self.ph0 = sp.csr_matrix((A.data * u, A.indices, A.indptr), shape=A.shape) @ np.ones(A.shape[1])
        self.s0 = H.T @ np.ones(A.shape[0])

    def scale(self, s: float) -> None:
        """``u /= s`` (rho rescaled by ``s``)."""
        self.tau /= s
        self.eps /= s
        self.beta /= s

    def per_copy(self) -> np.ndarray:
        """``u``, one per copy in the CSR matrix's copy order (a new array)."""
        A = self.A
        u = np.repeat(self.tau, np.diff(A.indptr))
        u *= A.data
        u += np.take(self.eps, A.indices, mode="clip")
        if self.beta != 0.0 and self.h0 is not None:
            u += self.beta * self.h0
        return u


def _checked_rho(state) -> float:
    """``state["rho"]`` of a warm start, or a :class:`~hlmrf.errors.SettingsError` saying what a
    warm start must be."""
    if not isinstance(state, Mapping):
        raise SettingsError(f"state must be a previous result's extra[\"state\"] (a mapping with "
                            f"\"u\" and \"rho\"), not a {type(state).__name__}")
    rho = state.get("rho")
    try:
        rho = float(rho)
    except (TypeError, ValueError):
        rho = float("nan")
    if not (0.0 < rho < float("inf")):
        raise SettingsError(f'state["rho"] must be a finite number > 0, not {state.get("rho")!r} '
                            '(pass previous_result.extra["state"] as it is)')
    return rho


class DualState(Mapping):
    """``Result.extra["state"]``: ``{"u": per-copy duals, "rho": rho}``, with ``"u"`` formed from
    the :class:`RowDuals` on first reading (so a run that never reads it never holds it), and the
    row form kept for a warm start on the same matrix (:meth:`RowDuals.warm_start`)."""

    def __init__(self, duals: RowDuals, rho: float):
        self.duals, self.rho, self._u = duals, float(rho), None

    def __getitem__(self, key):
        if key == "rho":
            return self.rho
        if key == "u":
            if self._u is None:
                self._u = self.duals.per_copy()
            return self._u
        raise KeyError(key)

    def __iter__(self):
        return iter(("u", "rho"))

    def __len__(self) -> int:
        return 2

    def __repr__(self) -> str:
        return f"DualState(copies={self.duals.A.nnz}, rho={self.rho})"

    def __reduce__(self):
        """Pickled (and deep-copied) as the plain ``{"u": ..., "rho": ...}`` it stands for, not
        with the model's matrix it refers to."""
        return dict, ([("u", self["u"]), ("rho", self.rho)],)

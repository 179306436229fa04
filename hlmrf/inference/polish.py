"""Certificates and solution polishing for an approximate MAP state (after OSQP's polish step).

ADMM converges fast to a neighbourhood of the optimum and slowly inside it; its residual-based
stopping rule can stop a linear-hinge model a fraction of a percent above the optimum. Two things
fix that here, both solver-agnostic (they take a model, a state ``y`` and a dual estimate
``theta``, one value per row, as ADMM's prox step yields with ``theta = rho * t``):

* :func:`certificate` evaluates ``energy(y)``, the hard-constraint violation at ``y`` and the
  Lagrangian lower bound :func:`hlmrf.model.terms.dual_bound` at ``theta`` projected onto the
  dual domain. ``energy - bound`` is a certified bound on how far ``y`` is above the optimum,
  whatever produced ``theta``.
* :func:`polish` guesses the active set from the state (each linear hinge inactive, active or at
  its kink; each inequality constraint active or not; each variable at 0, at 1 or free), solves
  the equality-constrained problem that set defines exactly (one sparse quasi-definite KKT system,
  regularised and refined as OSQP does), and returns the polished state and its multipliers. When
  the guess is right, the polished state and its bound meet (gap ~1e-12); when it is wrong, the
  certificate says so and the caller keeps iterating. Polishing never has to be trusted.

Not here: the iteration itself (:mod:`hlmrf.inference.admm`); no dense factorisations.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hlmrf.model.hlmrf import HLMRF, column_counts, select_rows
from hlmrf.model import terms
from hlmrf.model.terms import Kind, coefficients, dual_bound


# Work units that pace polishing deterministically (the same run takes the same steps on any
# machine and under any load). One unit is about a second on the 2-core development machine:
# a polish costs about 3 ms plus, for the sparse LU of a densely connected KKT system, 4e-8 per
# squared row (acquaintances, N=150: 11,810 rows in 5.6 s); one ADMM iteration about 0.1 ms
# plus 2.5e-8 per local copy.
WORK_PER_POLISH = 3e-3
WORK_PER_KKT_ROW2 = 4e-8
WORK_PER_ITERATION = 1e-4
WORK_PER_COPY_ITERATION = 2.5e-8


@dataclass(frozen=True)
class Certificate:
    """How good a state is, provably.

    Attributes
    ----------
    energy : energy of the soft rows at the state.
    lower_bound : a Lagrangian lower bound on the optimum energy (valid for any dual estimate).
    violation : largest hard-constraint violation at the state.
    """

    energy: float
    lower_bound: float
    violation: float
    convex: bool = True
    """False when a soft row has a negative weight: the energy is then not convex, no bound
    exists, and only the residuals and the constraints can be checked (a local solution)."""

    @property
    def gap(self) -> float:
        """Certified bound on ``energy - optimum`` (for a feasible state); nan when non-convex,
        inf when there is no lower bound (a nan bound certifies nothing: ``max(0, nan)`` would
        have been 0)."""
        if not self.convex:
            return float("nan")
        if self.lower_bound != self.lower_bound:
            return float("inf")
        return max(0.0, self.energy - self.lower_bound)

    def holds(self, gap_rel: float, gap_abs: float, constraint_tol: float) -> bool:
        if not self.convex:
            return self.violation <= constraint_tol
        return self.gap <= gap_rel * abs(self.energy) + gap_abs and self.violation <= constraint_tol


def project_dual(model: HLMRF, theta: np.ndarray) -> np.ndarray:
    """``theta`` moved into the dual domain of each row (where :func:`dual_bound` is valid; the
    domains are :data:`hlmrf.model.terms.TABLE`'s)."""
    return terms.project_dual(coefficients(model.kind, model.p, model.w), theta)


def certificate(model: HLMRF, y: np.ndarray, theta: np.ndarray) -> Certificate:
    """The certificate of state ``y`` with dual estimate ``theta`` (model row order)."""
    co = coefficients(model.kind, model.p, model.w)
    bound = dual_bound(terms.project_dual(co, theta), model.A, model.c, model.w, co.sq)
    return Certificate(model.energy(y), bound, model.violation(y))


def polish(model: HLMRF, y: np.ndarray, theta: np.ndarray, delta: float = 1e-7,
           refine: int = 8, max_dim: int = 20_000, budget: float = float("inf"), log: dict | None = None):
    """Solve the problem on the active set that ``(y, theta)`` suggests.

    Parameters
    ----------
    y : the approximate state (ADMM's consensus; values exactly 0 or 1 are taken as at a bound).
    theta : the approximate multiplier of every row (ADMM: ``rho * t``), or a function of no
        arguments that returns it: called only once the size checks pass (a solver's multipliers
        of a model too large to polish are then never gathered into one model-sized array).
    delta : the KKT regularisation; refinement removes its effect.
    max_dim : do not polish when the KKT system has more rows than this (its sparse LU can fill
        in to a dense matrix on densely connected models: 20,000 rows is at most 3.2 GB).
    budget : work units the caller can spend (see ``WORK_PER_KKT_ROW2``); skipped when the
        estimated cost, ``WORK_PER_POLISH + WORK_PER_KKT_ROW2 * dim**2``, is larger.
    log : a dict; ``log["skipped"]`` says why a call returned None, ``log["work"]`` adds up the
        estimated cost of the calls that ran.

    Returns
    -------
    ``(y_polished, theta_polished)`` or None when skipped or singular. Neither is guaranteed
    better: check them with :func:`certificate`.
    """
    y = np.clip(np.asarray(y, dtype=np.float64), 0.0, 1.0)
    log = {} if log is None else log
    free = (y > 0.0) & (y < 1.0)
    if int(free.sum()) > max_dim:  # before any model-sized work
        log["skipped"] = f"more than polish_max_dim={max_dim:,} free variables"
        return None
    A, c, w, p, k = model.A, model.c, model.w, model.p, model.kind
    free &= column_counts(A, model.n) > 0
    n_eq = int(np.count_nonzero(k == Kind.EQ))
    if int(free.sum()) + n_eq > max_dim:  # every equality row is in the KKT system
        log["skipped"] = f"KKT system of at least {int(free.sum()) + n_eq:,} rows > polish_max_dim"
        return None
    theta = np.asarray(theta() if callable(theta) else theta, dtype=np.float64)
    tiny = 1e-12
    # Row classes. A linear hinge is at its kink when its multiplier lies strictly inside [0, w]
    # (ADMM's prox step projected its copy onto the hinge's boundary). One float temporary,
    # reused: the model can have millions of rows.
    h1 = (k == Kind.HINGE) & (p == 1)
    bound = np.multiply(w, 1 - 1e-9)
    h1_active = theta >= bound
    h1_active &= h1
    np.maximum(w, 1.0, out=bound)
    bound *= tiny
    h1_kink = theta > bound
    del bound
    h1_kink &= h1
    h1_kink &= ~h1_active
    p1 = ((k == Kind.LINEAR) & (p == 1)) | h1_active  # fixed multiplier w
    q = (k == Kind.LINEAR) & (p == 2) | ((k == Kind.HINGE) & (p == 2) & (theta > tiny))
    eq = h1_kink | (k == Kind.EQ) | ((k == Kind.LEQ) & (theta > tiny))
    F = np.flatnonzero(free)
    if len(F) == 0:
        return y, _response_theta(model, y, theta, eq)
    dim = len(F) + int(eq.sum())
    if dim > max_dim:  # checked before any copy of A is made
        log["skipped"] = f"KKT system of {dim:,} rows > polish_max_dim"
        return None
    cost = WORK_PER_POLISH + WORK_PER_KKT_ROW2 * dim * dim
    if cost > budget:
        log["skipped"] = "over the work budget"
        return None
    log["work"] = log.get("work", 0.0) + cost
    # Imported here, past the checks: scipy.sparse.linalg costs about 10 MiB and 50 ms to load,
    # which a model too large to polish should not pay.
    from scipy.sparse.linalg import splu

    yX = np.where(free, 0.0, y)
    AF = A[:, F]
    Aq, Ae = AF[q], AF[eq]
    wq = w[q]
    # Stationarity on free variables and the equalities:
    #   2 Aq^T W (Aq yF + Aq,X yX - cq) + Ae^T lam = -A_p1^T w_p1 ;  Ae yF = ce - Ae,X yX.
    H = (Aq.T @ sp.diags(2.0 * wq) @ Aq).tocsc()
    g = AF[p1].T @ w[p1] + Aq.T @ (2.0 * wq * (A[q] @ yX - c[q]))
    ce = c[eq] - A[eq] @ yX
    nF, nE = len(F), Ae.shape[0]
    K = sp.bmat([[H, Ae.T], [Ae, None]], format="csc")
    reg = sp.diags(np.r_[np.full(nF, delta), np.full(nE, -delta)], format="csc")
    try:
        # Quasi-definite: factorable in any symmetric order without pivoting.
        lu = splu((K + reg).tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                  options={"SymmetricMode": True})
    except (RuntimeError, ValueError, MemoryError):
        log["skipped"] = "singular KKT system"
        return None
    b = np.r_[-g, ce]
    x = np.r_[y[F], theta[eq]]
    for _ in range(max(1, refine)):
        r = b - K @ x
        dx = lu.solve(r)
        if not np.all(np.isfinite(dx)):
            return None
        x = x + dx
        if np.max(np.abs(r), initial=0.0) < 1e-13:
            break
    yp = y.copy()
    yp[F] = np.clip(x[:nF], 0.0, 1.0)
    lam = x[nF:]
    th = _response_theta(model, yp, theta, eq)
    th[np.flatnonzero(eq)] = lam
    return yp, project_dual(model, th)


def improve(model: HLMRF, y: np.ndarray, theta: np.ndarray, cert: Certificate, settings,
            budget: float = float("inf"), project: bool = True, log: dict | None = None,
            certify=None):
    """Try to certify ``y``: project it onto the hard constraints when only they fail the
    certificate ``cert``, and polish it (within ``budget`` work units) when the gap fails.

    ``settings`` is an :class:`~hlmrf.inference.settings.AdmmSettings` (tolerances,
    ``polish_max_dim``). Returns the best state tried and the best certificate: its energy and
    violation, and the largest lower bound found. ``log`` counts ``attempts`` and sets ``used``.
    ``certify(y, theta)`` replaces :func:`certificate` (a solver's leaner version of the same;
    ``theta=None`` means ``cert``'s multipliers, whose bound is already known). ``theta`` is
    passed on to :func:`polish` as it is (an array, or a function that returns it).
    """
    st = settings
    if certify is None:
        def certify(y_, theta_):
            if theta_ is None:  # same multipliers, same bound
                return Certificate(model.energy(y_), cert.lower_bound, model.violation(y_))
            return certificate(model, y_, theta_)
    log = {} if log is None else log
    tol = (st.gap_rel, st.gap_abs, st.constraint_tol)
    best_y, best = y, cert
    if project and cert.gap <= st.gap_rel * abs(cert.energy) + st.gap_abs and cert.violation > st.constraint_tol:
        yp = project_hard(model, y, st.polish_max_dim)
        if yp is not None:
            cp = certify(yp, None)
            if cp.violation < best.violation:
                best_y, best = yp, Certificate(cp.energy, max(cp.lower_bound, cert.lower_bound), cp.violation)
            if best.holds(*tol):
                return best_y, best
    if budget < 0:
        return best_y, best
    out = polish(model, y, theta, max_dim=st.polish_max_dim, budget=budget, log=log)
    if out is None:
        return best_y, best
    log["attempts"] = log.get("attempts", 0) + 1
    yp, thp = out
    cp = certify(yp, thp)
    if cp.violation > st.constraint_tol:
        yq = project_hard(model, yp, st.polish_max_dim)
        if yq is not None:
            cq = certify(yq, thp)
            if cq.violation < cp.violation:
                yp, cp = yq, cq
    bound = max(best.lower_bound, cp.lower_bound)
    if cp.violation <= max(best.violation, st.constraint_tol) and cp.energy < best.energy:
        log["used"] = True
        return yp, Certificate(cp.energy, bound, cp.violation)
    return best_y, Certificate(best.energy, bound, best.violation)


def project_hard(model: HLMRF, y: np.ndarray, max_dim: int = 20_000, rounds: int = 3):
    """The nearest point to ``y`` on the active hard constraints, kept in the box.

    Equality rows and inequality rows that are active or violated are held as equalities; the
    least-norm correction ``A_H^T (A_H A_H^T)^-1 (c_H - A_H y)`` is applied and clipped to [0, 1],
    a few rounds. Cheap when the hard rows are sparse and nearly disjoint (symmetry and sum-to-one
    constraints). Returns None when there is nothing to do or the system is too large. An equation
    stated twice is held once (:func:`_distinct_equations`); when the equations left share no
    variable (symmetry constraints, once each), ``A_H A_H^T`` is diagonal and the solve is a
    division: no factorisation, and scipy.sparse.linalg (about 11 MB of libraries once imported)
    is not loaded.
    """
    hard = np.flatnonzero(model.kind >= Kind.LEQ)
    if len(hard) == 0:
        return None
    # Only the hard rows are read: no model-sized temporaries (the soft rows can be millions).
    A_h, c_h, is_eq = select_rows(model.A, hard), model.c[hard], model.kind[hard] == Kind.EQ
    y = np.clip(np.asarray(y, dtype=np.float64), 0.0, 1.0)
    for _ in range(rounds):
        d = A_h @ y - c_h
        rows = np.flatnonzero(is_eq | (d > -1e-12))
        if len(rows) == 0:
            return None
        AH, rhs = _distinct_equations(A_h[rows], c_h[rows], -d[rows])
        G = (AH @ AH.T).tocsc() + sp.identity(AH.shape[0], format="csc") * 1e-12
        # Past max_dim rows, go on only when the active constraints are nearly disjoint (their
        # Gram matrix has a few entries per row, as symmetry and sum-to-one constraints do): its
        # LU then stays about as sparse as it is.
        if G.shape[0] > max_dim and G.nnz > 8 * G.shape[0]:
            return None
        if G.nnz == G.shape[0]:  # diagonal: the constraints are disjoint
            step = rhs / G.diagonal()
        else:
            from scipy.sparse.linalg import splu

            try:
                step = splu(G, permc_spec="MMD_AT_PLUS_A").solve(rhs)
            except (RuntimeError, ValueError, MemoryError):
                return None
        y = np.clip(y + AH.T @ step, 0.0, 1.0)
    return y


def _distinct_equations(AH: sp.csr_matrix, c: np.ndarray, rhs: np.ndarray):
    """The active hard rows held as equations ``AH y = c``, each equation once: a row equal to
    another up to its sign (a symmetry constraint ground for both orders, ``K(a,b) - K(b,a) = 0``
    and ``K(b,a) - K(a,b) = 0``) states the same equation, and its copy only makes the Gram
    matrix singular (and not diagonal, so the projection would need a factorisation). Rows are
    compared with the rows of the same number of entries (a model mixes rows of one entry, whose
    partner atom is observed, with rows of two); rows without entries are all kept. ``(rows,
    rhs)`` are returned unchanged when nothing repeats or the indices are not sorted."""
    nnz = np.diff(AH.indptr)
    if AH.shape[0] < 2 or not AH.has_sorted_indices:
        return AH, rhs
    keep = [np.flatnonzero(nnz == 0)]
    for k in np.unique(nnz[nnz > 0]):
        rows = np.flatnonzero(nnz == k)
        if len(rows) < 2:
            keep.append(rows)
            continue
        k = int(k)
        at = (AH.indptr[rows][:, None] + np.arange(k)).ravel()  # each row's k entries, in order
        val = AH.data[at].reshape(-1, k)
        sign = np.where(val[:, 0] < 0, -1.0, 1.0)
        key = np.concatenate([AH.indices[at].reshape(-1, k).astype(np.float64), val * sign[:, None],
                              (c[rows] * sign)[:, None]], axis=1)
        keep.append(rows[np.unique(key, axis=0, return_index=True)[1]])
    keep = np.sort(np.concatenate(keep))
    if len(keep) == AH.shape[0]:
        return AH, rhs
    return AH[keep], rhs[keep]


def _response_theta(model: HLMRF, y: np.ndarray, theta: np.ndarray, eq: np.ndarray) -> np.ndarray:
    """Each soft row's multiplier as the state implies it (its derivative where smooth); rows in
    ``eq`` keep ``theta``."""
    # The derivative of the energy w h^p in d, h = max(d, lb) (the table's), taken as w (p = 1)
    # or 2 w h (p = 2) where h = d and 0 where d < lb; hard rows: 0.
    d = model.distance(y)
    w = model.w
    co = coefficients(model.kind, model.p, w)
    th = np.where(co.sq, 2.0 * w * np.maximum(d, co.lb), np.where(d > co.lb, w, 0.0))
    th = np.where(co.soft, th, 0.0)
    return np.where(eq, theta, th)

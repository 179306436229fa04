"""Maximum pseudo-likelihood weight learning, by numeric integration on a grid.

The pseudo-likelihood replaces ``P(y)`` by ``prod_j P(y_j | y_-j)``: each variable's conditional
with every other variable held at its truth. Given the others, only the ground rules touching
``y_j`` depend on it, so ``P(y_j = t | rest) = exp(-sum_r w_r Phi_jr(t)) / Z_j`` with
``Phi_jr(t)`` the unweighted energy of rule ``r``'s rows touching ``j``, a piecewise linear or
quadratic function of ``t``. ``-log PL`` is convex in ``w``; its gradient is
``sum_j Phi_jr(truth) - E_{P(.|rest)}[Phi_jr]``. ``Z_j`` and the expectations are integrals over
the feasible part of [0, 1]: computed here with the trapezoid rule on ``grid`` points, vectorised
over all (variable, rule) pairs at once. Hard constraints restrict each conditional to where they
hold; variables tied by a two-variable equality (``Knows(a,b) = Knows(b,a)``) move together as one
block (otherwise their conditional is a point mass and carries no information), and variables in
any other equality are left out. No MAP inference is needed, so the objective is minimised with
L-BFGS-B (bounds give non-negativity) or, on request, projected gradient descent. It does not
sample.
"""
from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from hlmrf.errors import SettingsError
from hlmrf.inference.settings import AdmmSettings
from hlmrf.learning.base import Learner, check_number
from hlmrf.model.terms import Kind

_CHUNK = 1 << 22  # grid values per block of the vectorised evaluation (bounds memory)


class MaxPseudoLikelihood(Learner):
    """Maximum pseudo-likelihood weight learning.

    Parameters
    ----------
    epochs : optimiser iterations (L-BFGS-B iterations or gradient steps).
    optimizer : ``"lbfgs"`` (default; no step size to tune) or ``"gd"`` (projected gradient
        descent with ``step_size``).
    step_size : step of ``"gd"``.
    grid : number of trapezoid points on [0, 1] per conditional (>= 3).
    l2 : ``l2/2 |w|^2`` added to the mean negative log pseudo-likelihood.
    nonnegative : constrain weights to be >= 0.
    init, latent, settings : as :class:`~hlmrf.learning.VotedPerceptron` (``settings`` is used
        only for latent completion).

    Attributes
    ----------
    weights_, history_, model_ : as the other learners; ``loss`` is the mean negative log
        pseudo-likelihood per block plus the regulariser.
    n_blocks_ : number of conditionals in the objective.
    """

    name = "pseudolikelihood"

    def __init__(self, *, epochs: int = 100, optimizer: str = "lbfgs", step_size: float = 1.0,
                 grid: int = 101, l2: float = 0.01, nonnegative: bool = True, init="model",
                 latent: str = "infer", settings: AdmmSettings | None = None):
        super().__init__(epochs=epochs, l2=l2, nonnegative=nonnegative, init=init, latent=latent,
                         settings=settings)
        self.optimizer = optimizer
        self.step_size = step_size
        self.grid = grid

    def _check_params(self) -> None:
        super()._check_params()
        if self.optimizer not in ("lbfgs", "gd"):
            raise SettingsError(f"optimizer must be 'lbfgs' or 'gd', not {self.optimizer!r}")
        if not (isinstance(self.grid, (int, np.integer)) and self.grid >= 3):
            raise SettingsError(f"grid must be an integer >= 3, not {self.grid!r}")
        check_number("step_size", self.step_size, positive=True)

    def _divergence_fix(self) -> str:
        if self.optimizer == "gd":
            return super()._divergence_fix()
        return (f"keep the weights bounded with a moderate l2 (now {self.l2:g}; default 0.01) or "
                f"fewer epochs")

    # -- the objective ----------------------------------------------------------------------------
    def _setup(self, w: np.ndarray) -> None:
        self._tables = None

    def _ensure_tables(self, w: np.ndarray) -> None:
        truth = self._completed_truth(w)
        if self._tables is None or not self.labelled_.all():
            self._tables = _conditional_tables(self.model_, truth, self.labelled_, self.n_rules_,
                                               self.grid)
            self.n_blocks_ = self._tables.n_blocks

    def objective(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        """Mean negative log pseudo-likelihood and its gradient at rule weights ``w``."""
        self._ensure_tables(w)
        nll, grad = self._tables.nll(w)
        return nll + 0.5 * self.l2 * float(w @ w), grad + self.l2 * w

    def _run(self, w: np.ndarray, callback) -> np.ndarray:
        self._ensure_tables(w)
        free = self.learnable_
        if self.optimizer == "gd":
            for epoch in range(1, self.epochs + 1):
                ts = time.perf_counter()
                loss, grad = self.objective(w)
                w = self._project(w - self.step_size * grad)
                self._record(epoch, loss, w, time.perf_counter() - ts, {}, callback)
            return w
        from scipy.optimize import minimize

        x0 = w[free]
        clock = [time.perf_counter()]

        def fun(x):
            full = w.copy()
            full[free] = x
            f, g = self.objective(full)
            return f, g[free]

        def cb(xk):
            full = w.copy()
            full[free] = xk
            loss, _ = self.objective(full)
            now = time.perf_counter()
            self._record(len(self.history_) + 1, loss, full, now - clock[0], {}, callback)
            clock[0] = now

        bounds = [(0.0, None)] * len(x0) if self.nonnegative else None
        res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds, callback=cb,
                       options={"maxiter": self.epochs})
        out = w.copy()
        out[free] = res.x
        if not self.history_:  # converged before the first iteration
            loss, _ = self.objective(out)
            self._record(1, loss, out, time.perf_counter() - clock[0], {}, callback)
        self.optimizer_result_ = res
        return self._project(out)


class _Tables:
    """Per-(block, rule) unweighted energies on the grid and at the truth."""

    def __init__(self, phi, phi0, g_block, g_rule, feasible, qw, n_blocks, n_rules):
        self.phi = phi  # (G, K)
        self.phi0 = phi0  # (G,)
        self.g_block = g_block
        self.g_rule = g_rule
        self.log_q = np.where(feasible, np.log(qw)[None, :], -np.inf)  # (B, K)
        self.n_blocks = n_blocks
        self.n_rules = n_rules
        self.P = sp.csr_matrix((np.ones(len(g_block)), (g_block, np.arange(len(g_block)))),
                               shape=(n_blocks, len(g_block)))

    def nll(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        if self.n_blocks == 0:
            return 0.0, np.zeros(self.n_rules)
        wg = w[self.g_rule]
        E = self.P @ (wg[:, None] * self.phi)  # (B, K)
        E0 = self.P @ (wg * self.phi0)  # (B,)
        s = self.log_q - E
        mx = s.max(axis=1, keepdims=True)
        p = np.exp(s - mx)
        z = p.sum(axis=1, keepdims=True)
        p /= z
        logz = (mx + np.log(z))[:, 0]
        nll = float(np.mean(E0 + logz))
        expected = np.einsum("gk,gk->g", self.phi, p[self.g_block])
        grad = np.bincount(self.g_rule, weights=self.phi0 - expected, minlength=self.n_rules)
        return nll, grad / self.n_blocks


def _blocks(model, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Block label per variable (union of two-variable equalities) and a pinned-variable mask."""
    eq = np.flatnonzero(model.kind == Kind.EQ)
    pinned = np.zeros(n, dtype=bool)
    if len(eq) == 0:
        return np.arange(n), pinned
    A = model.A
    nnz = np.diff(A.indptr)[eq]
    pair = eq[(nnz == 2)]
    start = A.indptr[pair]
    a0, a1 = A.data[start], A.data[start + 1]
    tie = pair[(np.abs(a0 + a1) < 1e-12) & (np.abs(model.c[pair]) < 1e-12)]
    other = np.setdiff1d(eq, tie)
    if len(other):
        pinned[A[other].indices] = True
    if len(tie):
        s = A.indptr[tie]
        g = sp.coo_matrix((np.ones(len(tie)), (A.indices[s], A.indices[s + 1])), shape=(n, n))
        _, labels = sp.csgraph.connected_components(g, directed=False)
    else:
        labels = np.arange(n)
    return labels, pinned


def _conditional_tables(model, truth, labelled, n_rules, K) -> _Tables:
    n = model.n
    labels, pinned = _blocks(model, n)
    _, labels = np.unique(labels, return_inverse=True)
    nb = int(labels.max()) + 1 if n else 0
    # A block's truth point: its members' mean (members are equal when the data obey the ties).
    t0 = np.bincount(labels, weights=truth, minlength=nb) / np.maximum(np.bincount(labels, minlength=nb), 1)
    y0 = t0[labels]
    d0 = model.A @ y0 - model.c
    M = sp.csr_matrix((np.ones(n), (np.arange(n), labels)), shape=(n, nb))
    Ab = (model.A @ M).tocoo()  # (row, block, summed coefficient)
    keep = np.abs(Ab.data) > 1e-12
    rows, blk, alpha = Ab.row[keep], Ab.col[keep], Ab.data[keep]
    kind, p = model.kind[rows], model.p[rows]
    t = np.linspace(0.0, 1.0, K)
    qw = np.full(K, 1.0 / (K - 1))
    qw[[0, -1]] *= 0.5
    # Blocks in the objective: some member labelled, no member pinned by a general equality.
    has_label = np.bincount(labels, weights=labelled.astype(float), minlength=nb) > 0
    is_pinned = np.bincount(labels, weights=pinned.astype(float), minlength=nb) > 0
    in_eq = np.zeros(nb, dtype=bool)
    in_eq[blk[kind == Kind.EQ]] = True  # an equality moving with the block: a point mass
    active = has_label & ~is_pinned & ~in_eq
    feasible = np.ones((nb, K), dtype=bool)
    leq = (kind == Kind.LEQ) & active[blk]
    for sl in _chunks(int(leq.sum()), K):
        idx = np.flatnonzero(leq)[sl]
        d = d0[rows[idx], None] + alpha[idx, None] * (t[None, :] - t0[blk[idx], None])
        np.logical_and.at(feasible, blk[idx], d <= 1e-6)
    soft = (kind <= Kind.HINGE) & active[blk]
    sidx = np.flatnonzero(soft)
    gkey = blk[sidx].astype(np.int64) * max(n_rules, 1) + model.rule[rows[sidx]]
    groups, ginv = np.unique(gkey, return_inverse=True)
    G = len(groups)
    phi = np.zeros((G, K))
    for sl in _chunks(len(sidx), K):
        idx = sidx[sl]
        d = d0[rows[idx], None] + alpha[idx, None] * (t[None, :] - t0[blk[idx], None])
        e = _unit_energy(d, kind[idx, None], p[idx, None])
        S = sp.csr_matrix((np.ones(len(idx)), (ginv[sl], np.arange(len(idx)))), shape=(G, len(idx)))
        phi += S @ e
    phi0 = np.bincount(ginv, weights=_unit_energy(d0[rows[sidx]], kind[sidx], p[sidx]), minlength=G)
    g_block = (groups // max(n_rules, 1)).astype(np.int64)
    g_rule = (groups % max(n_rules, 1)).astype(np.int64)
    # Renumber to the active blocks with a feasible point.
    ok = active & feasible.any(axis=1)
    new = np.cumsum(ok) - 1
    sel = ok[g_block]
    return _Tables(phi[sel], phi0[sel], new[g_block[sel]], g_rule[sel], feasible[ok], qw,
                   int(ok.sum()), n_rules)


def _unit_energy(d, kind, p):
    v = np.where(kind == Kind.HINGE, np.maximum(d, 0.0), d)
    return np.where(p == 2, v * v, v)


def _chunks(n: int, K: int):
    step = max(1, _CHUNK // K)
    return [slice(s, min(n, s + step)) for s in range(0, n, step)]

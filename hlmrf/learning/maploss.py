"""Learn weights by minimising a loss of the MAP state, differentiating through the solver.

The loss is the squared error or the binary cross-entropy of the MAP state ``y*(w)`` against the
truth of the labelled targets. Its gradient comes from *implicit differentiation* of the
optimality (KKT) conditions at ``y*``: on the active set (variables off their bounds, soft rows
past their hinge, hard rows and linear hinges exactly at zero held as equalities ``C dy = 0``)
stationarity reads ``H dy/dw_r + C^T dlambda/dw_r = -b_r`` with ``H = sum 2 w_i a_i a_i^T`` over
the active squared rows and ``b_r`` the unweighted gradient of rule ``r``'s rows. One sparse
adjoint solve of that (regularised, quasi-definite) system per step gives the whole gradient.
Chosen over unrolling the ADMM iterations because it is exact at the solution, costs one
factorisation whatever the iteration count, keeps no iterate history, and lets the solver
warm-start freely. Where ``y*`` is not differentiable (linear-hinge models, whose MAP states are
vertices and piecewise constant in ``w``) the result is a generalised gradient of the active set
found and may be zero; squared potentials give informative gradients. The MAP state is scale
invariant in ``w``, so steps are taken relative to the largest weight.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from hlmrf.errors import LearningWarning, SettingsError, SolverError
from hlmrf.inference.settings import AdmmSettings
from hlmrf.learning.base import Learner, check_number
from hlmrf.model.hlmrf import HLMRF
from hlmrf.model.terms import Kind

LOSSES = ("mse", "bce")
#: The MAP solves of this learner are tighter than the reference defaults: the gradient is only
#: as good as the active set read off the MAP state.
TIGHT = AdmmSettings(eps_abs=1e-7, eps_rel=1e-6)


class MapLossLearner(Learner):
    """Minimise the squared error or binary cross-entropy of the MAP state.

    Parameters
    ----------
    loss : ``"mse"`` (mean squared error) or ``"bce"`` (mean binary cross-entropy, values clipped
        to ``[eps, 1 - eps]``).
    step_size : each step moves the weights by ``step_size * max|w|`` along ``-grad/max|grad|``
        (a relative step: the MAP state ignores the weights' scale).
    epochs : number of steps (one MAP solve and one sparse solve each).
    decay : the step shrinks as ``step_size / (1 + decay * t)``.
    l2 : ``l2/2 |w / max w|^2`` added to the loss (on the scale-free weights).
    nonnegative : clip weights at 0.
    keep_best : return the visited weights with the lowest training loss, not the last ones.
    tol : how close to a bound, a hinge or a constraint counts as on it when reading the active
        set.
    eps : clipping of ``bce``.
    init, latent, settings : as :class:`~hlmrf.learning.VotedPerceptron`; latent targets are
        simply left out of the loss (their MAP values still change with ``w``), so ``latent``
        only matters when it is ``"error"``. ``settings`` defaults to tight tolerances.

    Attributes
    ----------
    weights_, history_, model_ : as the other learners; ``loss`` is the training loss of the MAP
        state at the weights the step started from.
    best_loss_ : the lowest training loss seen.
    """

    name = "maploss"

    def __init__(self, *, loss: str = "mse", step_size: float = 0.1, epochs: int = 50,
                 decay: float = 0.05, l2: float = 0.0, nonnegative: bool = True,
                 keep_best: bool = True, tol: float = 1e-5, eps: float = 1e-6, init="model",
                 latent: str = "infer", settings: AdmmSettings | None = None):
        super().__init__(epochs=epochs, l2=l2, nonnegative=nonnegative, init=init, latent=latent,
                         settings=settings)
        self.loss = loss
        self.step_size = step_size
        self.decay = decay
        self.keep_best = keep_best
        self.tol = tol
        self.eps = eps

    def _check_params(self) -> None:
        super()._check_params()
        if self.loss not in LOSSES:
            raise SettingsError(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        check_number("step_size", self.step_size, positive=True)
        check_number("decay", self.decay)
        check_number("tol", self.tol, positive=True)
        check_number("eps", self.eps, positive=True, upper=0.5)

    def _setup(self, w: np.ndarray) -> None:
        if self.settings is None:
            self.settings_ = TIGHT
        self._best = (np.inf, w.copy())
        self._moved = False  # whether any step had a nonzero gradient

    def loss_and_grad(self, w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, object]:
        """Training loss of the MAP state at ``w``, its gradient in ``w``, the state and the
        solver's result."""
        res = self._map(w)
        y = res.y
        lab = self.labelled_
        t = self.truth_[lab]
        nl = max(int(lab.sum()), 1)
        g = np.zeros(self.model_.n)
        if self.loss == "mse":
            diff = y[lab] - t
            loss = float(np.mean(diff * diff))
            g[lab] = 2.0 * diff / nl
        else:
            q = np.clip(y[lab], self.eps, 1.0 - self.eps)
            loss = float(-np.mean(t * np.log(q) + (1.0 - t) * np.log(1.0 - q)))
            g[lab] = (q - t) / (q * (1.0 - q)) / nl
        grad = map_gradient(self.model_.with_weights(w), y, g, self.n_rules_, self.tol)
        wmax = max(float(np.max(np.abs(w))), 1e-12)
        if self.l2:
            loss += 0.5 * self.l2 * float((w / wmax) @ (w / wmax))
            grad = grad + self.l2 * (w / wmax) / wmax  # not w / wmax**2: that overflows
        return loss, grad, y, res

    def _step(self, epoch: int, w: np.ndarray):
        loss, grad, y, res = self.loss_and_grad(w)
        if loss < self._best[0]:
            self._best = (loss, w.copy())
        grad = np.where(self.learnable_, grad, 0.0)
        gmax = float(np.max(np.abs(grad)))
        wmax = max(float(np.max(np.abs(w))), 1e-12)
        if gmax > 0:
            self._moved = True
            eta = self.step_size / (1.0 + self.decay * (epoch - 1))
            w = w - eta * wmax * grad / gmax
        metrics = self._train_metrics(y)
        metrics["iterations"] = res.iterations
        return loss, w, metrics

    def _final_weights(self, w: np.ndarray) -> np.ndarray:
        loss, _, _, _ = self.loss_and_grad(w)
        if loss < self._best[0]:
            self._best = (loss, w.copy())
        self.best_loss_ = float(self._best[0])
        return self._best[1] if self.keep_best else w

    def _warn_if_suspect(self) -> None:
        super()._warn_if_suspect()
        if self.history_ and not self._moved:
            warnings.warn("MapLossLearner: the gradient of the loss was 0 at every step, so the "
                          "weights did not move: the MAP state does not change with them (it "
                          "ignores their scale, and is piecewise constant for linear-hinge "
                          "rules); square the rules (`^2`) or use VotedPerceptron",
                          LearningWarning, stacklevel=3)


def map_gradient(model: HLMRF, y: np.ndarray, g: np.ndarray, n_rules: int,
                 tol: float = 1e-5, reg: float = 1e-9) -> np.ndarray:
    """``dL/dw`` per rule, given ``g = dL/dy`` at the MAP state ``y`` of ``model``.

    Implicit differentiation of the KKT conditions on the active set read off ``y`` (see the
    module docstring and :func:`map_adjoint`, which gives the derivative per row). ``reg``
    regularises the KKT matrix (redundant constraints, variables no squared term touches).
    """
    adj = map_adjoint(model, y, g, tol, reg)
    return np.bincount(model.rule, weights=adj.w, minlength=n_rules)[:n_rules]


@dataclass(frozen=True)
class MapAdjoint:
    """The derivative of a loss of the MAP state with respect to every row's numbers.

    Attributes
    ----------
    c : (m,) ``dL/dc_i``, the derivative in row ``i``'s constant (``d_i = a_i . y - c_i``).
    w : (m,) ``dL/dw_i``, the derivative in row ``i``'s weight (0 for hard rows, for rows off
        their hinge and for linear hinges held at their kink).
    """

    c: np.ndarray
    w: np.ndarray


def map_adjoint(model: HLMRF, y: np.ndarray, g: np.ndarray, tol: float = 1e-5, reg: float = 1e-9,
                squared_tol: float | None = None) -> MapAdjoint:
    """``dL/dc`` and ``dL/dw`` per row, given ``g = dL/dy`` at the MAP state ``y`` of ``model``.

    One adjoint solve of the KKT system on the active set read off ``y``: free variables are
    those more than ``tol`` inside [0, 1] (a variable within ``tol`` of a bound stays there); a
    linear hinge within ``tol`` of its kink, an ``EQ`` row and an ``LEQ`` row within ``tol`` of
    holding with equality are held as equalities ``C dy = dc_C``; a squared hinge counts as
    active (curvature ``2 w a a^T``) when ``d > squared_tol`` (default ``tol``). With the
    adjoint ``[v; mu]`` of ``K = [[H, C^T], [C, 0]]`` at right-hand side ``[g_F; 0]``:
    ``dL/dc_i = 2 w_i a_i . v`` on active squared rows, ``mu_i`` on rows held as equalities,
    0 elsewhere; ``dL/dw_i = -phi'(d_i) a_i . v`` on active soft rows. ``reg`` (relative to the
    largest curvature) regularises ``K`` (redundant constraints, flat directions).

    Raises
    ------
    SolverError : the KKT matrix is singular even so.
    """
    m = model.m
    d = model.distance(y)
    kind, p, w = model.kind, model.p, model.w
    soft = kind <= Kind.HINGE
    sq_tol = tol if squared_tol is None else squared_tol
    # Unweighted derivative of each soft row's energy with respect to its distance.
    on = soft & ((kind == Kind.LINEAR) | np.where(p == 2, d > sq_tol, d > tol))
    dphi = np.where(on, np.where(p == 2, 2.0 * d, 1.0), 0.0)
    kink = soft & (kind == Kind.HINGE) & (p == 1) & (np.abs(d) <= tol)
    cons = ((kind == Kind.EQ) | ((kind == Kind.LEQ) & (d >= -tol)) | kink)
    free = (y > tol) & (y < 1.0 - tol)
    F = np.flatnonzero(free)
    if len(F) == 0:
        return MapAdjoint(np.zeros(m), np.zeros(m))
    A = model.A
    quad = np.flatnonzero(on & (p == 2))
    Aq = A[quad][:, F]
    H = (Aq.T @ sp.diags(2.0 * w[quad]) @ Aq).tocsc()
    crow = np.flatnonzero(cons)
    C = A[crow][:, F]
    if C.shape[0]:
        nonempty = np.flatnonzero(np.diff(C.tocsr().indptr) > 0)
        C, crow = C[nonempty], crow[nonempty]
    nf, nc = len(F), C.shape[0]
    scale = max(float(np.max(np.abs(H.diagonal()), initial=0.0)), 1.0)
    delta = reg * scale
    K = sp.bmat([[H + delta * sp.identity(nf), C.T], [C, -delta * sp.identity(nc)]], format="csc") \
        if nc else (H + delta * sp.identity(nf)).tocsc()
    rhs = np.concatenate([g[F], np.zeros(nc)])
    try:
        sol = spla.splu(K).solve(rhs) if K.shape[0] > 1 else rhs / K.toarray()[0, 0]
    except RuntimeError as exc:  # scipy's "Factor is exactly singular"
        raise SolverError(f"the KKT system of the MAP state is singular ({exc}), so the gradient "
                          f"of the loss in the weights is undefined; negative weights make the MAP "
                          f"problem non-convex: fit with nonnegative=True") from None
    v, mu = sol[:nf], sol[nf:]
    Bv = A[:, F] @ v  # (m,) a_i . v
    dc = np.zeros(m)
    dc[quad] = 2.0 * w[quad] * Bv[quad]
    dc[crow] = mu
    return MapAdjoint(dc, -dphi * Bv)

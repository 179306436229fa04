"""What every weight learner shares: the training problem, latent completion and the fit loop.

A :class:`TrainingProblem` is a ground model plus a truth vector over its variables (``nan`` where
a target has no truth: a *latent* variable). It is built once per ``fit`` (grounding happens once;
every step re-weights the same arrays with :meth:`HLMRF.with_weights`). Latent variables are
handled as the reference engine's EM learners do (its ``HardEM``): the labelled variables are
pegged to their truth and the latent ones set to the MAP state of that conditioned model under the
current weights; the reference's non-EM learners refuse latent variables instead
(``latent="error"``). This module does no file I/O and prints nothing.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hlmrf.errors import DataError, SettingsError
from hlmrf.inference.admm import solve_admm
from hlmrf.inference.settings import AdmmSettings
from hlmrf.model.hlmrf import HLMRF

LATENT_MODES = ("infer", "error")


@dataclass(frozen=True)
class EpochRecord:
    """One learning step as ``history_`` keeps it.

    Attributes
    ----------
    epoch : 1-based step number.
    loss : the learner's objective at the weights the step started from.
    weights : rule weights after the step (0 for hard rules).
    seconds : wall time of the step (MAP solves included).
    metrics : extra training numbers (e.g. ``mse`` of the MAP state against the truth,
        ``iterations`` of the solver).
    """

    epoch: int
    loss: float
    weights: np.ndarray
    seconds: float
    metrics: dict = field(default_factory=dict)


def truth_vector(model: HLMRF, store) -> np.ndarray:
    """The truth of every variable of ``model`` from ``store``'s truth atoms (``nan`` if none).

    Truth atoms that are not targets are ignored (they cannot inform the weights).
    """
    from hlmrf.grounding.relational import lookup_rows

    y = np.full(model.n, np.nan)
    base = max(len(store.constants), 1)
    for name in model.index.predicates:
        p = store.get(name)
        if p is None or len(p.truth_args) == 0:
            continue
        args, cols = model.index.atoms(name)
        pos = lookup_rows(args, p.truth_args, base)
        ok = pos >= 0
        y[cols.start + pos[ok]] = p.truth_values[ok]
    return y


def rule_weights_of(model: HLMRF, n_rules: int, default: float = 1.0) -> np.ndarray:
    """Per-rule weight as the model's soft rows carry it (``default`` for rules with none)."""
    out = np.full(n_rules, default, dtype=np.float64)
    soft = ~model.hard
    out[model.rule[soft]] = model.w[soft]
    return out


def soft_rules(model: HLMRF, n_rules: int) -> np.ndarray:
    """Mask of rules whose weights can be learned: rules with no hard ground row."""
    hard = np.zeros(n_rules, dtype=bool)
    hard[model.rule[model.hard]] = True
    return ~hard


def condition(model: HLMRF, fixed: np.ndarray, values: np.ndarray) -> tuple[HLMRF, np.ndarray]:
    """The model over the free variables with ``y[fixed] = values[fixed]`` folded into ``c``.

    Returns ``(submodel, free_columns)``; rows left without a free variable are dropped (they are
    constants of the conditioned problem).
    """
    free = np.flatnonzero(~fixed)
    A = model.A.tocsc()
    c = model.c - A[:, np.flatnonzero(fixed)] @ values[fixed]
    sub = A[:, free].tocsr()
    keep = np.flatnonzero(np.diff(sub.indptr) > 0)
    sub = sub[keep]
    sub.sort_indices()
    return HLMRF(sub, c[keep], model.w[keep], model.p[keep], model.kind[keep], model.rule[keep],
                 model.index), free


def solve_map(model: HLMRF, settings: AdmmSettings, y0: np.ndarray | None, state: dict | None = None):
    """MAP state of ``model``; weights are rescaled to a largest weight of 1 (MAP unchanged),
    which keeps ADMM's ``rho`` well matched to the weights whatever their scale. ``state`` is a
    previous result's ``extra["state"]`` (duals and rho) for a full warm start."""
    return solve_admm(model.normalized(), settings, y0=y0, state=state)


class Learner:
    """Base of the weight learners: input handling, latent completion and the epoch loop.

    Subclasses implement ``_setup`` (once per fit) and ``_step`` (one epoch; returns the loss,
    the new weights and a metrics dict).
    """

    name = "learner"

    def __init__(self, *, epochs: int, l2: float, nonnegative: bool, init: str | np.ndarray | None,
                 latent: str, settings: AdmmSettings | None):
        self.epochs = epochs
        self.l2 = l2
        self.nonnegative = nonnegative
        self.init = init
        self.latent = latent
        self.settings = settings

    # -- validation -------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if not (isinstance(self.epochs, (int, np.integer)) and self.epochs >= 1):
            raise SettingsError(f"epochs must be an integer >= 1, not {self.epochs!r}")
        if not self.l2 >= 0:
            raise SettingsError(f"l2 must be >= 0, not {self.l2!r}")
        if self.latent not in LATENT_MODES:
            raise SettingsError(f"latent must be one of {', '.join(LATENT_MODES)}, not {self.latent!r}")
        if isinstance(self.init, str) and self.init not in ("model", "uniform"):
            raise SettingsError(f"init must be 'model', 'uniform' or an array, not {self.init!r}")

    # -- fit --------------------------------------------------------------------------------------
    def fit(self, X, y=None, *, callback: Callable[[EpochRecord], None] | None = None):
        """Learn rule weights.

        Parameters
        ----------
        X : a :class:`~hlmrf.language.ast.Program` (then ``y`` is the
            :class:`~hlmrf.data.store.FactStore` holding observations, targets and truth) or a
            ground :class:`HLMRF` (then ``y`` is the ``(n,)`` truth vector, ``nan`` for latent
            variables).
        callback : called with each :class:`EpochRecord` as it is made (progress displays).

        Returns
        -------
        self
        """
        self._check_params()
        t0 = time.perf_counter()
        if isinstance(X, HLMRF):
            model, truth = X, np.asarray(y, dtype=np.float64)
            n_rules = len(model.index.rule_texts) or (int(model.rule.max()) + 1 if model.m else 0)
            hard_program = None
        else:
            from hlmrf.grounding.ground import ground

            program, store = X, y
            model = ground(program, store)
            truth = truth_vector(model, store)
            n_rules = len(program.rules)
            hard_program = np.array([r.hard for r in program.rules], dtype=bool)
        if truth.shape != (model.n,):
            raise DataError(f"the truth vector has shape {truth.shape}; the model has {model.n} variables")
        labelled = ~np.isnan(truth)
        if not labelled.any():
            raise DataError("no target atom has a truth value: weight learning needs "
                            "<predicate>_truth.txt files for the targets of the training facts")
        if (~labelled).any() and self.latent == "error":
            raise DataError(f"{int((~labelled).sum())} target atom(s) have no truth value, e.g. "
                            f"{model.index.atom_name(int(np.flatnonzero(~labelled)[0]))}; add their "
                            f"truth or fit with latent='infer'")
        learnable = soft_rules(model, n_rules)
        if hard_program is not None:
            learnable &= ~hard_program
        w = self._initial_weights(model, n_rules, learnable, X if hard_program is not None else None)
        self.settings_ = self.settings or AdmmSettings()
        self.model_ = model
        self.truth_ = truth
        self.labelled_ = labelled
        self.learnable_ = learnable
        self.n_rules_ = n_rules
        self.history_: list[EpochRecord] = []
        self._unit = model.with_weights(np.ones(n_rules))
        self._y_map = None  # warm start of the full MAP solves
        self._y_lat = None  # warm start of the latent (conditioned) solves
        self._setup(w)
        w = self._run(w, callback)
        self.weights_ = self._final_weights(w)
        self.model_ = model.with_weights(self.weights_)
        self.n_epochs_ = len(self.history_)
        self.seconds_ = time.perf_counter() - t0
        return self

    def _initial_weights(self, model, n_rules, learnable, program) -> np.ndarray:
        if isinstance(self.init, str) or self.init is None:
            if self.init == "uniform":
                w = np.ones(n_rules)
            elif program is not None:
                w = np.array([r.weight if r.weight is not None else 0.0 for r in program.rules], float)
            else:
                w = rule_weights_of(model, n_rules)
        else:
            w = np.asarray(self.init, dtype=np.float64).copy()
            if w.shape != (n_rules,):
                raise SettingsError(f"init has {w.size} weights; the model has {n_rules} rules")
        return np.where(learnable, w, 0.0)

    def _final_weights(self, w: np.ndarray) -> np.ndarray:
        return w

    def _project(self, w: np.ndarray) -> np.ndarray:
        w = np.where(self.learnable_, w, 0.0)
        return np.maximum(w, 0.0) if self.nonnegative else w

    def _record(self, epoch, loss, w, seconds, metrics, callback) -> None:
        rec = EpochRecord(epoch, float(loss), np.array(w, dtype=np.float64), seconds, metrics)
        self.history_.append(rec)
        if callback is not None:
            callback(rec)

    # -- hooks ------------------------------------------------------------------------------------
    def _run(self, w: np.ndarray, callback) -> np.ndarray:
        """The epoch loop: one ``_step`` per epoch (learners with their own optimiser override)."""
        for epoch in range(1, self.epochs + 1):
            ts = time.perf_counter()
            loss, w, metrics = self._step(epoch, w)
            w = self._project(w)
            self._record(epoch, loss, w, time.perf_counter() - ts, metrics, callback)
        return w

    def _setup(self, w: np.ndarray) -> None:  # pragma: no cover - overridden
        pass

    def _step(self, epoch: int, w: np.ndarray):  # pragma: no cover - overridden
        raise NotImplementedError

    # -- shared pieces ----------------------------------------------------------------------------
    def _completed_truth(self, w: np.ndarray) -> np.ndarray:
        """Truth with latent variables set to their MAP state given the labelled ones (HardEM)."""
        truth = self.truth_
        if self.labelled_.all():
            return truth
        sub, free = condition(self.model_.with_weights(w), self.labelled_, np.nan_to_num(truth))
        y0 = self._y_lat
        res = solve_map(sub, self.settings_, y0)
        self._y_lat = res.y
        out = truth.copy()
        out[free] = res.y
        return out

    def _map(self, w: np.ndarray):
        """MAP state of the training model under ``w``, warm-started from the previous one."""
        res = solve_map(self.model_.with_weights(w), self.settings_, self._y_map,
                        getattr(self, "_state_map", None))
        self._y_map = res.y
        self._state_map = res.extra.get("state")
        return res

    def _train_metrics(self, y: np.ndarray) -> dict:
        lab = self.labelled_
        diff = y[lab] - self.truth_[lab]
        return {"mse": float(np.mean(diff * diff)), "mae": float(np.mean(np.abs(diff)))}

    def predict(self, X, store=None) -> np.ndarray:
        """MAP state under the learned weights: of the training model (no argument), of another
        ground model with the same rules, or of ``(program, store)``."""
        if X is None:
            model = self.model_
        elif isinstance(X, HLMRF):
            model = X.with_weights(self.weights_)
        else:
            from hlmrf.grounding.ground import ground

            model = ground(X, store).with_weights(self.weights_)
        return solve_map(model, self.settings_, None).y

    def get_params(self) -> dict:
        """The constructor's hyperparameters (scikit-learn convention)."""
        import inspect

        return {k: getattr(self, k) for k in inspect.signature(type(self).__init__).parameters
                if k != "self"}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items()
                         if not isinstance(v, np.ndarray))
        return f"{type(self).__name__}({args})"


def rule_counts(model: HLMRF, n_rules: int) -> np.ndarray:
    """Number of soft ground rows per rule."""
    soft = ~model.hard
    return np.bincount(model.rule[soft], minlength=n_rules).astype(np.float64)


def unit_energy_by_rule(unit: HLMRF, y: np.ndarray, n_rules: int) -> np.ndarray:
    """Unweighted energy (total incompatibility) per rule at ``y``."""
    e = unit.energy_by_rule(y)
    out = np.zeros(n_rules)
    out[:len(e)] = e[:n_rules]
    return out


__all__ = ["EpochRecord", "Learner", "condition", "rule_counts", "rule_weights_of", "soft_rules",
           "solve_map", "truth_vector", "unit_energy_by_rule"]


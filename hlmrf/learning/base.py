"""What every weight learner shares: the training problem, latent completion and the fit loop.

The training problem is a ground model plus a truth vector over its variables (``nan`` where a
target has no truth: a *latent* variable). It is built once per ``fit`` (grounding happens once;
every step re-weights the same arrays with :meth:`HLMRF.with_weights`). Latent variables are
handled as the reference engine's EM learners do (its ``HardEM``): the labelled variables are
pegged to their truth and the latent ones set to the MAP state of that conditioned model under the
current weights; the reference's non-EM learners refuse latent variables instead
(``latent="error"``). This module does no file I/O and prints nothing.
"""
from __future__ import annotations

import inspect
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hlmrf.errors import DataError, LearningWarning, RuleError, SettingsError, SolverError
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


def check_number(name: str, value, *, positive: bool = False, upper: float | None = None) -> None:
    """Raise :class:`SettingsError` unless ``value`` is a finite real ``>= 0`` (``> 0`` with
    ``positive``; ``< upper`` when given). Infinite or ``nan`` hyperparameters are refused here
    because they turn every weight into ``nan`` one step later."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    ok = not isinstance(value, (bool, str)) and math.isfinite(x) and (x > 0 if positive else x >= 0)
    if ok and upper is not None:
        ok = x < upper
    if not ok:
        bound = f"{'> 0' if positive else '>= 0'}" + (f" and < {upper:g}" if upper is not None else "")
        raise SettingsError(f"{name} must be a finite number {bound}, not {value!r}")


class Learner:
    """Base of the weight learners: input handling, latent completion and the epoch loop.

    Subclasses implement ``_setup`` (once per fit) and ``_step`` (one epoch; returns the loss,
    the new weights and a metrics dict). Every epoch's weights and loss are checked: a learner
    never returns or records a non-finite weight, it stops with a :class:`SolverError` naming the
    rule, the epoch and the setting to change.
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
        if not (isinstance(self.epochs, (int, np.integer)) and not isinstance(self.epochs, bool)
                and self.epochs >= 1):
            raise SettingsError(f"epochs must be an integer >= 1, not {self.epochs!r}")
        check_number("l2", self.l2)
        if self.settings is not None and not isinstance(self.settings, AdmmSettings):
            raise SettingsError(f"settings must be an AdmmSettings or None, not {self.settings!r}")
        if self.latent not in LATENT_MODES:
            raise SettingsError(f"latent must be one of {', '.join(LATENT_MODES)}, not {self.latent!r}")
        if isinstance(self.init, str) and self.init not in ("model", "uniform"):
            raise SettingsError(f"init must be 'model', 'uniform' or an array, not {self.init!r}")

    # -- fit --------------------------------------------------------------------------------------
    def fit(self, X, y=None, *, callback: Callable[[EpochRecord], None] | None = None,
            max_ground_rules: int | None | str = "default", backend: str = "numpy", duckdb=None,
            spark=None):
        """Learn rule weights.

        Parameters
        ----------
        X : a :class:`~hlmrf.language.ast.Program` (then ``y`` is the
            :class:`~hlmrf.data.store.FactStore` holding observations, targets and truth) or a
            ground :class:`HLMRF` (then ``y`` is the ``(n,)`` truth vector, ``nan`` for latent
            variables).
        callback : called with each :class:`EpochRecord` as it is made (progress displays).
        max_ground_rules : refuse, before grounding ``X``, a program over this many ground rules
            (see :func:`hlmrf.grounding.ground.ground`; ``"default"`` is its default, ``None``
            no limit). A resource limit of this fit, not a hyperparameter.
        backend, duckdb, spark : how ``X`` is ground (:func:`hlmrf.grounding.ground.ground`'s
            ``"numpy"``, ``"duckdb"`` or ``"spark"``, and that backend's options); not
            hyperparameters either.

        Returns
        -------
        self

        Warns
        -----
        LearningWarning
            When the learned weights are of no use: every learned weight is 0 (or, for
            :class:`~hlmrf.learning.MapLossLearner`, the gradient was 0 at every step).
        """
        self._reset()
        self._check_params()
        t0 = time.perf_counter()
        if isinstance(X, HLMRF):
            model, truth = X, np.asarray(y, dtype=np.float64)
            n_rules = len(model.index.rule_texts) or (int(model.rule.max()) + 1 if model.m else 0)
            hard_program = None
            self._rule_texts = tuple(model.index.rule_texts)
        else:
            from hlmrf.grounding.ground import ground

            program, store = X, y
            self._rule_texts = tuple(r.text or str(r) for r in program.rules)
            self._check_program(program)
            limit = {} if isinstance(max_ground_rules, str) and max_ground_rules == "default" else \
                {"max_ground_rules": max_ground_rules}
            model = ground(program, store, **limit, backend=backend, duckdb=duckdb, spark=spark)
            truth = truth_vector(model, store)
            n_rules = len(program.rules)
            hard_program = np.array([r.hard for r in program.rules], dtype=bool)
        if truth.shape != (model.n,):
            raise DataError(f"the truth vector has shape {truth.shape}; the model has {model.n} variables")
        outside = ~np.isnan(truth) & ~((truth >= 0.0) & (truth <= 1.0))
        if outside.any():
            j = int(np.flatnonzero(outside)[0])
            raise DataError(f"{int(outside.sum())} truth value(s) are not in [0, 1], e.g. "
                            f"{float(truth[j])!r} for {_atom_name(model, j)}; truth values are "
                            f"numbers in [0, 1], with nan for a target without truth")
        labelled = ~np.isnan(truth)
        if not labelled.any():
            raise DataError("no target atom has a truth value: weight learning needs "
                            "<predicate>_truth.txt files for the targets of the training facts")
        if (~labelled).any() and self.latent == "error":
            raise DataError(f"{int((~labelled).sum())} target atom(s) have no truth value, e.g. "
                            f"{_atom_name(model, int(np.flatnonzero(~labelled)[0]))}; add their "
                            f"truth or fit with latent='infer'")
        learnable = soft_rules(model, n_rules)
        if hard_program is not None:
            learnable &= ~hard_program
        if not learnable.any():
            raise RuleError("no weighted rule to learn: " + (
                "the program has no rules" if n_rules == 0 else "every rule is a hard constraint")
                + "; give at least one rule a weight (`1.0: ...`)")
        w = self._initial_weights(model, n_rules, learnable, X if hard_program is not None else None)
        self.settings_ = self.settings if self.settings is not None else AdmmSettings()
        self.model_ = model
        self.truth_ = truth
        self.labelled_ = labelled
        self.learnable_ = learnable
        self.n_rules_ = n_rules
        self.history_: list[EpochRecord] = []
        self._unit = model.with_weights(np.ones(n_rules))
        self._y_map = None  # warm start of the full MAP solves
        self._y_lat = None  # warm start of the latent (conditioned) solves
        self._state_map = None  # duals and rho of the last full MAP solve (warm start)
        self._setup(w)
        # Overflow is reported by the finiteness checks of every epoch (a SolverError that names
        # the rule and the setting to change), not by numpy warnings on the way there.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            w = self._run(w, callback)
            final = self._final_weights(w)
        self._check_finite(len(self.history_), 0.0, final)
        self.weights_ = final
        self.model_ = model.with_weights(self.weights_)
        self.n_epochs_ = len(self.history_)
        self.seconds_ = time.perf_counter() - t0
        self._warn_if_suspect()
        return self

    def _warn_if_suspect(self) -> None:
        """Warn (:class:`LearningWarning`) about learned weights that fit but are of no use."""
        w = self.weights_[self.learnable_]
        if w.size and not (w > 0).any():
            what = "every learned weight is 0" if not w.any() else "no learned weight is above 0"
            warnings.warn(f"{type(self).__name__}: {what}, so the MAP state under the learned "
                          f"weights is undetermined; try another learner, fewer epochs or a "
                          f"larger l2", LearningWarning, stacklevel=3)

    def _reset(self) -> None:
        """Forget everything a previous ``fit`` left: learned attributes (``weights_``, ...) and
        private per-fit state (warm starts, the solver's duals, tables), so that a refit equals
        a fit of a fresh instance. Only the constructor's hyperparameters survive."""
        params = set(self._get_param_names())
        for key in [k for k in vars(self) if k not in params]:
            delattr(self, key)

    def _check_program(self, program) -> None:
        for rule in program.rules:
            if rule.hard:
                continue
            wr = rule.weight
            if not (isinstance(wr, (int, float, np.floating)) and math.isfinite(wr)) or \
                    (wr < 0 and self.nonnegative):
                raise RuleError(f"rule weight {wr!r} is not a finite number >= 0; give the rule a "
                                f"weight such as `1.0:`", rule.span, program.text or None)

    def _rule_label(self, i: int) -> str:
        text = self._rule_texts[i] if i < len(self._rule_texts) else ""
        return f"rule {i + 1}" + (f" (`{text}`)" if text else "")

    def _initial_weights(self, model, n_rules, learnable, program) -> np.ndarray:
        if isinstance(self.init, str) or self.init is None:
            if self.init == "uniform":
                w = np.ones(n_rules)
            elif program is not None:
                w = np.array([r.weight if r.weight is not None else 0.0 for r in program.rules], float)
            else:
                w = rule_weights_of(model, n_rules)
            source = "the model's weight"
        else:
            try:
                w = np.array(self.init, dtype=np.float64)
            except (TypeError, ValueError):
                raise SettingsError(f"init must be 'model', 'uniform' or one number per rule, "
                                    f"not {self.init!r}") from None
            if w.shape != (n_rules,):
                raise SettingsError(f"init has {w.size} weights; the model has {n_rules} rules")
            source = "init"
        w = np.where(learnable, w, 0.0)
        bad = ~np.isfinite(w) | ((w < 0) & self.nonnegative)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            what = "negative" if np.isfinite(w[i]) else "not finite"
            fix = " or fit with nonnegative=False" if what == "negative" else ""
            raise SettingsError(f"{source} of {self._rule_label(i)} is {float(w[i])!r} ({what}); "
                                f"start from finite weights >= 0{fix}")
        return w

    def _check_finite(self, epoch: int, loss: float, w: np.ndarray) -> None:
        """Stop with a :class:`SolverError` when a step produced a non-finite weight or loss."""
        bad = ~np.isfinite(w)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            what = f"the weight of {self._rule_label(i)} became {float(w[i])!r}"
        elif not math.isfinite(loss):
            i = int(np.argmax(np.abs(w))) if w.size else 0
            what = f"the loss became {float(loss)!r}"
            if w.size:
                what += f" (the largest weight, {w[i]:.3g}, is that of {self._rule_label(i)})"
        else:
            return
        raise SolverError(f"learning diverged at epoch {epoch} of {type(self).__name__}: {what}; "
                          f"{self._divergence_fix()}")

    def _divergence_fix(self) -> str:
        """What to change when the weights run off to infinity (the learner's step-size knob)."""
        if self.l2 >= 1:  # a large l2 overshoots as much as a large step does
            return f"lower step_size (now {self.step_size:g}) or l2 (now {self.l2:g})"
        return (f"lower step_size (now {self.step_size:g}); a small l2 (now {self.l2:g}) also "
                f"keeps the weights bounded")

    def _final_weights(self, w: np.ndarray) -> np.ndarray:
        return w

    def _project(self, w: np.ndarray) -> np.ndarray:
        w = np.where(self.learnable_, w, 0.0)
        return np.maximum(w, 0.0) if self.nonnegative else w

    def _record(self, epoch, loss, w, seconds, metrics, callback) -> None:
        self._check_finite(epoch, loss, w)
        rec = EpochRecord(epoch, float(loss), np.array(w, dtype=np.float64), seconds, metrics)
        self.history_.append(rec)
        if callback is not None:
            callback(rec)

    # -- hooks ------------------------------------------------------------------------------------
    def _run(self, w: np.ndarray, callback) -> np.ndarray:
        """The epoch loop: one ``_step`` per epoch (learners with their own optimiser override)."""
        for epoch in range(1, self.epochs + 1):
            ts = time.perf_counter()
            try:
                loss, w, metrics = self._step(epoch, w)
            except SolverError as exc:  # the MAP solve under this epoch's weights diverged
                raise SolverError(f"learning diverged at epoch {epoch} of {type(self).__name__}: the "
                                  f"MAP state could not be computed ({exc}); {self._divergence_fix()}") from None
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
        res = solve_map(self.model_.with_weights(w), self.settings_, self._y_map, self._state_map)
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

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """Names of the constructor's hyperparameters, sorted (as scikit-learn lists them)."""
        return sorted(k for k in inspect.signature(cls.__init__).parameters if k != "self")

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's hyperparameters (the scikit-learn estimator contract).

        Parameters
        ----------
        deep : also list ``name__sub`` for a hyperparameter that is itself an estimator (has
            ``get_params``); no learner has one today, so both forms are equal.

        Returns
        -------
        dict
            Hyperparameter name to value; ``type(self)(**learner.get_params())`` is an unfitted
            copy (what ``sklearn.base.clone`` builds).
        """
        out = {}
        for key in self._get_param_names():
            value = getattr(self, key)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{key}__{k}", v) for k, v in value.get_params().items())
            out[key] = value
        return out

    def set_params(self, **params):
        """Set hyperparameters by name (the scikit-learn estimator contract); returns ``self``.

        Values are checked by ``fit``, as the constructor's are. ``name__sub`` sets ``sub`` of a
        hyperparameter that is itself an estimator.

        Raises
        ------
        SettingsError
            For a name that is not a hyperparameter of this learner; the message lists the valid
            ones.
        """
        valid = self._get_param_names()
        nested: dict[str, dict] = {}
        for key, value in params.items():
            name, sep, sub = key.partition("__")
            if name not in valid or (sep and not hasattr(getattr(self, name), "set_params")):
                raise SettingsError(f"{type(self).__name__} has no hyperparameter {key!r}; "
                                    f"valid ones: {', '.join(valid)}")
            if sep:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items()
                         if not isinstance(v, np.ndarray))
        return f"{type(self).__name__}({args})"


def _atom_name(model: HLMRF, j: int) -> str:
    try:
        return model.index.atom_name(j)
    except (IndexError, ValueError):  # a model built from rows has no atom names
        return f"variable {j}"


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


__all__ = ["EpochRecord", "Learner", "check_number", "condition", "rule_counts", "rule_weights_of",
           "soft_rules", "solve_map", "truth_vector", "unit_energy_by_rule"]


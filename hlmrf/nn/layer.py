"""MAP inference of a PSL program as a differentiable torch layer.

:class:`PSLLayer` grounds the program once (:func:`~hlmrf.nn.template.ground_template`): the
values ``x`` of chosen observed atoms are inputs, and they only move each row's constant,
``c(x) = c0 - B x``. A forward pass stacks one copy of the template per batch row with its own
constants, solves the batch with the batched torch ADMM
(:func:`hlmrf.inference.torch_admm.solve_batch`, warm-started from the previous batch) and returns
the MAP values of the targets. The backward pass differentiates the KKT conditions at that
solution (:func:`hlmrf.learning.maploss.map_adjoint`: one sparse adjoint solve for the whole
block-diagonal batch), giving ``dL/dx = -B^T dL/dc`` and, when the rule weights are parameters,
``dL/dw``. It does not unroll the ADMM iterations: the gradient is exact at the solution whatever
the number of iterations, no iterate history is kept, and warm starts are free.

Where ``y*`` is not differentiable a one-sided choice is made and documented here once:

* a variable within ``tol`` of 0 or 1 stays at its bound (its derivative is 0);
* a linear hinge within ``tol`` of its kink, and an ``LEQ`` constraint within ``tol`` of equality,
  are held at equality (as if active; their multipliers absorb the change);
* a squared hinge counts as active (curvature ``2 w a a^T``) where ``d >= 0``; at ``d = 0`` its
  first derivative is 0 either way, only the curvature is one-sided;
* flat directions (variables or combinations no squared term or active constraint pins down, a
  MAP state that is not unique) are regularised by ``reg`` times the largest curvature, so the
  gradient along them is large and meaningless: square the rules, or add a weak squared prior.

The adjoint solve runs in float64 on the CPU (scipy); on CUDA the solution and the incoming
gradient are copied over for it. The MAP state ignores the weights' scale, so the solver sees them
divided by the largest; the gradient is taken at the weights as given.
"""
from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Mapping

import numpy as np

from hlmrf.errors import DataError, HlmrfWarning, SettingsError, require
from hlmrf.inference.result import Status
from hlmrf.inference.settings import AdmmSettings
from hlmrf.learning.maploss import map_adjoint
from hlmrf.model.batch import ModelBatch
from hlmrf.nn.template import Template, ground_template

torch = require("torch", "torch")
nn = torch.nn

__all__ = ["PSLLayer", "default_settings"]

#: Squared hinges count as active from ``d >= 0`` (the adjoint's threshold is ``d > this``).
_SQUARED_KINK = -np.finfo(np.float64).tiny


def default_settings(dtype) -> AdmmSettings:
    """The solver settings a layer uses unless given some: tighter than the inference default
    (the gradient is only as good as the active set read off the solution), and within what
    float32 can reach in float32."""
    if dtype == torch.float32:
        return AdmmSettings(eps_abs=1e-5, eps_rel=1e-4, gap_rel=1e-4, constraint_tol=1e-4)
    return AdmmSettings(eps_abs=1e-7, eps_rel=1e-6)


class _MapSolve(torch.autograd.Function):
    """``y*(x, w)``: forward by the batched ADMM, backward by the adjoint of the KKT system."""

    @staticmethod
    def forward(ctx, x, weights, layer, y0):
        C, w_rows, Y = layer._solve(x, weights, y0)
        ctx.layer, ctx.C, ctx.w_rows, ctx.Y, ctx.dt = layer, C, w_rows, Y, x.dtype
        return torch.as_tensor(Y, dtype=x.dtype).to(x.device)

    @staticmethod
    def backward(ctx, grad_y):
        layer, C, w_rows, Y = ctx.layer, ctx.C, ctx.w_rows, ctx.Y
        G = grad_y.detach().to("cpu", torch.float64).numpy().reshape(Y.shape)
        Bn = Y.shape[0]
        stacked = layer._stack(Bn).model
        model = replace(stacked, c=C.ravel(), w=np.tile(w_rows, Bn))
        adj = map_adjoint(model, Y.ravel(), G.ravel(), layer.tol_for(ctx.dt), layer.reg, squared_tol=_SQUARED_KINK)
        m = layer.template.model.m
        dC, dW = adj.c.reshape(Bn, m), adj.w.reshape(Bn, m)
        dx = dw = None
        if ctx.needs_input_grad[0]:
            dx = -np.asarray(layer.template.B.T @ dC.T).T
            dx = torch.as_tensor(dx, dtype=grad_y.dtype).to(grad_y.device)
        if ctx.needs_input_grad[1]:
            rule = layer.template.model.rule
            per_rule = np.bincount(rule, weights=dW.sum(axis=0) * layer._ratio, minlength=layer.n_rules)
            dw = torch.as_tensor(per_rule[:layer.n_rules], dtype=grad_y.dtype).to(grad_y.device)
        return dx, dw, None, None


class PSLLayer(nn.Module):
    """MAP inference of a PSL program as a ``torch.nn.Module``: input atoms' values in, target
    values out, differentiable.

    Parameters
    ----------
    program, store : the rules and a template of facts: the targets, the observations that stay
        fixed, and the input atoms (observed atoms whose values come from tensors; their values in
        ``store`` are ignored). One template is one example; a batch solves one copy per row.
    inputs : ``{predicate: atoms}`` (argument tuples, or ``None`` for every observed atom of the
        predicate in ``store``) or a list of predicate names; the order of the atoms is the order
        of ``x``'s columns (see :attr:`input_atoms`).
    learn_weights : make the rule weights a parameter, :attr:`log_weights` (weights are
        ``exp(log_weights)``, so they stay positive; hard rules have none).
    settings : :class:`~hlmrf.inference.settings.AdmmSettings` of the solves (default:
        :func:`default_settings` for the input's dtype).
    warm_start : start each solve from the previous batch's solution (row by row when the batch
        size is the same, else from its mean).
    tol : how close to a bound, a kink or a constraint counts as on it when reading the active
        set (default ``1e-5`` in float64, ``1e-4`` in float32).
    reg : regularisation of the KKT matrix, relative to its largest curvature.

    Attributes
    ----------
    template : the :class:`~hlmrf.nn.template.Template` (ground model over the targets and the
        input matrix ``B``).
    input_atoms, target_atoms : ``(predicate, args)`` per column of ``x`` and of ``y``.
    last_results : the solver's :class:`~hlmrf.inference.result.Result` per row of the last batch.
    """

    def __init__(self, program, store, inputs, *, learn_weights: bool = False,
                 settings: AdmmSettings | None = None, warm_start: bool = True,
                 tol: float | None = None, reg: float = 1e-9):
        template = program if isinstance(program, Template) else ground_template(program, store, inputs)
        super().__init__()
        self.template = template
        self.settings = settings
        self.warm_start = warm_start
        self._tol = tol
        self.reg = float(reg)
        model = template.model
        self.n_rules = len(template.rule_weights)
        w0 = template.rule_weights
        soft_rows = model.kind <= 1
        base = w0[model.rule] if model.m else np.zeros(0)
        # Each row's weight is its rule's weight times this ratio (1 for ground PSL rules).
        self._ratio = np.where(soft_rows & (base > 0), model.w / np.where(base > 0, base, 1.0), 0.0)
        if learn_weights:
            if (w0[template.soft_rules] <= 0).any():
                raise SettingsError("learn_weights needs a positive weight on every soft rule "
                                    "(weights are learned as exp(log_weights))")
            self.log_weights = nn.Parameter(torch.as_tensor(np.log(np.where(template.soft_rules, w0, 1.0))))
        else:
            self.log_weights = None
            self.register_buffer("_weights", torch.as_tensor(w0.copy()), persistent=False)
        self._stacks: dict[int, ModelBatch] = {}
        self._last_y: np.ndarray | None = None
        self.last_results: list = []

    @classmethod
    def from_template(cls, template: Template, **kwargs) -> "PSLLayer":
        """A layer over an existing :class:`~hlmrf.nn.template.Template` (for example
        :func:`~hlmrf.nn.template.template_from_model` of a hand-made model); keyword arguments as
        the constructor's."""
        return cls(template, None, None, **kwargs)

    # -- description --------------------------------------------------------------------------
    @property
    def input_atoms(self) -> tuple:
        return self.template.input_atoms

    @property
    def target_atoms(self) -> tuple:
        return self.template.target_atoms

    @property
    def n_inputs(self) -> int:
        return self.template.n_inputs

    @property
    def n_targets(self) -> int:
        return self.template.model.n

    @property
    def weights(self):
        """The rule weights (0 for hard rules), a tensor."""
        if self.log_weights is None:
            return self._weights
        soft = torch.as_tensor(self.template.soft_rules, device=self.log_weights.device)
        return torch.where(soft, self.log_weights.exp(), torch.zeros_like(self.log_weights))

    def tol_for(self, dtype) -> float:
        """The active-set tolerance used for solutions in ``dtype``."""
        if self._tol is not None:
            return self._tol
        return 1e-4 if dtype == torch.float32 else 1e-5

    def inputs_from(self, values: Mapping[str, "torch.Tensor"]) -> "torch.Tensor":
        """``x`` from one tensor per input predicate, ``(batch, atoms)`` in the order its atoms
        have in :attr:`input_atoms`; every input predicate must be given."""
        cols = {}
        for name, t in values.items():
            j = self.template.columns(name, "input")
            if len(j) == 0:
                known = sorted({p for p, _ in self.input_atoms})
                raise DataError(f"{name} is not an input predicate of this layer (inputs: {', '.join(known)})")
            t = torch.as_tensor(t)
            if t.ndim != 2 or t.shape[1] != len(j):
                raise DataError(f"values of {name} must have shape (batch, {len(j)}), got {tuple(t.shape)}")
            cols[name.upper()] = (j, t)
        missing = sorted({p for p, _ in self.input_atoms if p.upper() not in cols})
        if missing:
            raise DataError(f"no values given for the input predicate(s) {', '.join(missing)}")
        first = next(iter(cols.values()))[1]
        sizes = {t.shape[0] for _, t in cols.values()}
        if len(sizes) > 1:
            raise DataError(f"the input predicates' values have different batch sizes {sorted(sizes)}")
        x = first.new_zeros((first.shape[0], self.n_inputs))
        for j, t in cols.values():
            x = x.index_copy(1, torch.as_tensor(j, device=t.device), t.to(x.dtype))
        return x

    def split(self, y: "torch.Tensor") -> dict[str, "torch.Tensor"]:
        """``{predicate: values}`` of a ``(batch, targets)`` output, columns in the order of the
        predicate's atoms in :attr:`target_atoms`."""
        names = dict.fromkeys(p for p, _ in self.target_atoms)
        return {p: y[..., torch.as_tensor(self.template.columns(p), device=y.device)] for p in names}

    # -- forward ------------------------------------------------------------------------------
    def forward(self, x, y0=None):
        """The MAP values of the targets, ``(batch, targets)`` (``(targets,)`` for an unbatched
        ``x``), for input values ``x``: ``(batch, inputs)`` in [0, 1], or a mapping as
        :meth:`inputs_from` takes; ``y0`` optionally warm-starts the solve (same shape as the
        output)."""
        if isinstance(x, Mapping):
            x = self.inputs_from(x)
        x = self._check(x)
        single = x.ndim == 1
        xb = x.unsqueeze(0) if single else x
        weights = self.weights
        if weights.device != xb.device or weights.dtype != xb.dtype:
            weights = weights.to(device=xb.device, dtype=xb.dtype)
        if y0 is not None:
            y0 = np.clip(torch.as_tensor(y0).detach().to("cpu", torch.float64).numpy()
                         .reshape(xb.shape[0], self.n_targets), 0.0, 1.0)
        y = _MapSolve.apply(xb, weights, self, y0)
        return y[0] if single else y

    def energy(self, y, x) -> "torch.Tensor":
        """Each example's energy ``sum_i w_i f(d_i)^p_i`` at targets ``y`` and inputs ``x``
        (``(batch,)``), differentiable in ``y``, ``x`` and the weights: for energy-based losses,
        e.g. NeuPSL's, where the MAP state of a model with the labels observed is a training
        target."""
        if isinstance(x, Mapping):
            x = self.inputs_from(x)
        x = self._check(x)
        yb, xb = (y.unsqueeze(0), x.unsqueeze(0)) if x.ndim == 1 else (y, x)
        A, Bm, c0 = self._dense(xb)
        d = yb @ A.T + xb @ Bm.T - c0
        model = self.template.model
        kind = torch.as_tensor(model.kind, device=xb.device)
        p2 = torch.as_tensor(model.p == 2, device=xb.device)
        h = torch.where(kind == 1, torch.relu(d), d)
        f = torch.where(p2, h * h, h)
        ratio = torch.as_tensor(self._ratio, dtype=xb.dtype, device=xb.device)
        w = self.weights.to(device=xb.device, dtype=xb.dtype)[torch.as_tensor(model.rule, device=xb.device).long()] * ratio
        e = (f * w).sum(dim=1)
        return e[0] if x.ndim == 1 else e

    # -- internals ----------------------------------------------------------------------------
    def _dense(self, like):
        key = (like.device, like.dtype)
        cache = getattr(self, "_dense_cache", None)
        if cache is None or cache[0] != key:
            tpl = self.template

            def T(a):
                return torch.as_tensor(np.asarray(a), dtype=like.dtype).to(like.device)
            self._dense_cache = (key, (T(tpl.model.A.toarray()), T(tpl.B.toarray()), T(tpl.model.c)))
        return self._dense_cache[1]

    def _check(self, x):
        if not torch.is_tensor(x):
            raise DataError(f"inputs must be a torch tensor (batch, {self.n_inputs}), got {type(x).__name__}")
        if x.dtype not in (torch.float32, torch.float64):
            raise DataError(f"inputs must be float32 or float64, got {x.dtype}")
        if x.ndim not in (1, 2) or x.shape[-1] != self.n_inputs:
            raise DataError(f"inputs must have shape (batch, {self.n_inputs}) or ({self.n_inputs},): "
                            f"one column per input atom ({self._atoms_hint()}), got {tuple(x.shape)}")
        bad = ~torch.isfinite(x) | (x < -1e-6) | (x > 1 + 1e-6)
        if bool(bad.any()):
            where = bad.nonzero()[0].tolist()
            j = where[-1]
            pred, args = self.input_atoms[j]
            row = f"row {where[0]}, " if x.ndim == 2 else ""
            raise DataError(f"input values must lie in [0, 1]: {row}column {j} ({pred}({', '.join(args)})) "
                            f"is {float(x[tuple(where)])}; squash them (sigmoid, softmax) first")
        return x.clamp(0.0, 1.0)

    def _atoms_hint(self) -> str:
        shown = ", ".join(f"{p}({', '.join(a)})" for p, a in self.input_atoms[:3])
        return shown + (", ..." if self.n_inputs > 3 else "")

    def _stack(self, Bn: int) -> ModelBatch:
        if Bn not in self._stacks:
            if len(self._stacks) > 8:
                self._stacks.clear()
            self._stacks[Bn] = ModelBatch.from_models([self.template.model] * Bn)
        return self._stacks[Bn]

    def _solve(self, x, weights, y0):
        tpl = self.template
        Bn = x.shape[0]
        X = x.detach().to("cpu", torch.float64).numpy()
        C = tpl.constants(X)
        w_rule = weights.detach().to("cpu", torch.float64).numpy()
        if (w_rule < 0).any():
            raise SettingsError("rule weights must be >= 0: a negative weight makes MAP inference non-convex")
        w_rows = w_rule[tpl.model.rule] * self._ratio if tpl.model.m else np.zeros(0)
        wmax = float(w_rows.max()) if w_rows.size and w_rows.max() > 0 else 1.0
        stack = self._stack(Bn)
        solved = ModelBatch.from_blocks(replace(stack.model, c=C.ravel(), w=np.tile(w_rows / wmax, Bn)),
                                        stack.var_batch, Bn)
        if y0 is None and self.warm_start and self._last_y is not None:
            last = self._last_y
            y0 = last if last.shape[0] == Bn else np.broadcast_to(last.mean(axis=0), (Bn, self.n_targets))
        starts = None if y0 is None else list(np.asarray(y0, np.float64))
        settings = self.settings or default_settings(x.dtype)
        from hlmrf.inference.torch_admm import solve_batch

        dtype = "float32" if x.dtype == torch.float32 else "float64"
        results = solve_batch(solved, settings, device=str(x.device), dtype=dtype, y0=starts)
        self.last_results = results
        bad = [b for b, r in enumerate(results) if r.status not in (Status.CONVERGED, Status.OPTIMAL)]
        if bad:
            r = results[bad[0]]
            warnings.warn(f"PSLLayer: {len(bad)} of {Bn} solves stopped without a certificate "
                          f"(row {bad[0]}: {r.status.value} after {r.iterations} iterations, gap "
                          f"{r.energy - r.lower_bound:.3g}); the gradient is taken at that state",
                          HlmrfWarning, stacklevel=4)
        Y = np.stack([r.y for r in results]) if results else np.zeros((0, self.n_targets))
        if self.warm_start:
            self._last_y = Y
        return C, w_rows, Y

    def extra_repr(self) -> str:
        return (f"inputs={self.n_inputs}, targets={self.n_targets}, rows={self.template.model.m}, "
                f"learn_weights={self.log_weights is not None}")


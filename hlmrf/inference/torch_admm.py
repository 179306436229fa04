"""Consensus ADMM in torch, for one model or many solved together, on any torch device.

The same algorithm as :mod:`hlmrf.inference.admm` (local copies ``x``, scaled duals ``u``,
consensus ``z`` clipped to [0, 1], over-relaxation ``alpha``, residual-balancing ``rho``, the
reference engine's stopping rule), re-stated on tensors so a batch of models (a
:class:`~hlmrf.model.batch.ModelBatch`: block-diagonal, no padding) runs as one set of flat
tensor operations: segment sums are ``index_add_`` over a copy -> term, copy -> variable or
copy -> model index. Every model keeps its own ``rho`` and its own stopping rule, so a model
solved in a batch takes the same iterates as solved alone; a model that has converged is recorded
and, once such models hold a share of the working set, they are compacted out of it so they stop
costing work. Deliberately not here: grounding, weight normalisation (use ``model.normalized()``),
and anything that imports torch at ``import hlmrf`` time (this module is imported on demand).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from hlmrf.errors import SettingsError, require
from hlmrf.inference.result import Result, Status
from hlmrf.inference.settings import AdmmSettings
from hlmrf.model.batch import ModelBatch
from hlmrf.model.hlmrf import HLMRF
from hlmrf.model.terms import Kind, term_energy, term_violation

torch = require("torch", "torch")

__all__ = ["solve_torch", "solve_batch"]

_DTYPES = {"float64": torch.float64, "float32": torch.float32, "double": torch.float64,
           "float": torch.float32}


def _dtype(dtype) -> "torch.dtype":
    if isinstance(dtype, torch.dtype):
        if dtype in (torch.float32, torch.float64):
            return dtype
    elif str(dtype) in _DTYPES:
        return _DTYPES[str(dtype)]
    raise SettingsError(f"dtype {dtype!r} is not supported; use 'float64' or 'float32'")


@dataclass
class _Work:
    """The working set: the rows, copies and variables of the models not yet converged.

    Copy-level tensors have length ``L``, term-level ``m``, variable-level ``n`` (variables with
    at least one copy; the others never move), model-level ``B``.
    """

    a: "torch.Tensor"  # (L,) coefficient of each copy
    var: "torch.Tensor"  # (L,) working variable of each copy
    term: "torch.Tensor"  # (L,) working term of each copy
    cmodel: "torch.Tensor"  # (L,) working model of each copy
    u: "torch.Tensor"  # (L,) scaled dual
    zv: "torch.Tensor"  # (L,) z[var]
    c: "torch.Tensor"  # (m,)
    w: "torch.Tensor"  # (m,)
    w2: "torch.Tensor"  # (m,) 2w on squared soft terms, else 0
    w2aa: "torch.Tensor"  # (m,) 2w|a|^2 on squared soft terms, else 0
    inv_aa: "torch.Tensor"  # (m,) 1 / |a|^2
    sq: "torch.Tensor"  # (m,) bool: squared soft term
    hard: "torch.Tensor"  # (m,) bool: LEQ or EQ
    capped: "torch.Tensor"  # (m,) bool: linear hinge (its step is capped at the hinge)
    one_sided: "torch.Tensor"  # (m,) bool: HINGE or LEQ (no step when d <= 0)
    leq: "torch.Tensor"  # (m,) bool
    tmodel: "torch.Tensor"  # (m,)
    z: "torch.Tensor"  # (n,)
    deg: "torch.Tensor"  # (n,) copies per variable
    inv_deg: "torch.Tensor"  # (n,)
    vmodel: "torch.Tensor"  # (n,)
    gvar: "torch.Tensor"  # (n,) index of each working variable in the stacked model
    rho: "torch.Tensor"  # (B,)
    gid: "torch.Tensor"  # (B,) index of each working model in the batch
    sqrtL: "torch.Tensor"  # (B,) sqrt(copies per model)
    Lb: "torch.Tensor"  # (B,) copies per model
    has_hard: "torch.Tensor"  # (B,) bool
    done: "torch.Tensor"  # (B,) bool: recorded, waiting to be compacted out
    hcopy: "torch.Tensor"  # (Lh,) copies of hard terms
    hterm: "torch.Tensor"  # (Lh,) 0.. index of the hard term of each hard copy
    hrows: "torch.Tensor"  # (mh,) working term of each hard term

    @property
    def B(self) -> int:
        return self.rho.shape[0]


def _build(batch: ModelBatch, z0: np.ndarray, settings: AdmmSettings, dev, dt) -> tuple[_Work, np.ndarray]:
    """Lay the stacked model out as working tensors; also return which models have copies."""
    mod = batch.model
    A = mod.A
    counts = np.diff(A.indptr)
    term = np.repeat(np.arange(mod.m, dtype=np.int64), counts)
    var_g = A.indices.astype(np.int64)
    deg_g = np.bincount(var_g, minlength=mod.n)
    # Variables without a copy never move: leave them out of the working set.
    keep_var = np.flatnonzero(deg_g > 0)
    new_var = np.full(mod.n, -1, np.int64)
    new_var[keep_var] = np.arange(len(keep_var))
    a = A.data.astype(np.float64)
    aa = np.bincount(term, weights=a * a, minlength=mod.m)
    kind, p, w = mod.kind.astype(np.int64), mod.p.astype(np.int64), mod.w.astype(np.float64)
    sq = (kind <= Kind.HINGE) & (p == 2)
    hard = kind >= Kind.LEQ
    tmodel = batch.row_batch
    cmodel = tmodel[term]
    Lb = np.bincount(cmodel, minlength=len(batch)).astype(np.float64)
    has_hard = np.bincount(tmodel[hard], minlength=len(batch)) > 0
    hrows = np.flatnonzero(hard)
    hcopy = np.flatnonzero(hard[term])
    hterm_map = np.full(mod.m, -1, np.int64)
    hterm_map[hrows] = np.arange(len(hrows))

    def T(x, dtype=dt):
        return torch.as_tensor(np.ascontiguousarray(x)).to(device=dev, dtype=dtype)

    i64, bl = torch.int64, torch.bool
    var = T(new_var[var_g], i64)
    z = T(z0[keep_var])
    deg = T(deg_g[keep_var])
    work = _Work(
        a=T(a), var=var, term=T(term, i64), cmodel=T(cmodel, i64),
        u=torch.zeros(len(a), device=dev, dtype=dt), zv=z[var],
        c=T(mod.c), w=T(w), w2=T(np.where(sq, 2.0 * w, 0.0)), w2aa=T(np.where(sq, 2.0 * w * aa, 0.0)),
        inv_aa=T(1.0 / aa), sq=T(sq, bl), hard=T(hard, bl), capped=T((kind == Kind.HINGE) & (p == 1), bl),
        one_sided=T((kind == Kind.HINGE) | (kind == Kind.LEQ), bl), leq=T(kind == Kind.LEQ, bl),
        tmodel=T(tmodel, i64), z=z, deg=deg, inv_deg=1.0 / deg, vmodel=T(batch.var_batch[keep_var], i64),
        gvar=T(keep_var, i64), rho=torch.full((len(batch),), float(settings.rho), device=dev, dtype=dt),
        gid=torch.arange(len(batch), device=dev), sqrtL=T(np.sqrt(Lb)), Lb=T(Lb),
        has_hard=T(has_hard, bl), done=torch.zeros(len(batch), device=dev, dtype=bl),
        hcopy=T(hcopy, i64), hterm=T(hterm_map[term[hcopy]], i64), hrows=T(hrows, i64))
    return work, Lb > 0


def _compact(W: _Work) -> _Work:
    """Drop the models marked done (and their terms, copies, variables) from the working set.

    Boolean-mask selection keeps the order, so every remaining model's copies stay in the same
    relative order and its sums are taken in the same order as before.
    """
    keep = ~W.done
    kc, kt, kv = keep[W.cmodel], keep[W.tmodel], keep[W.vmodel]

    def renumber(mask):
        return torch.cumsum(mask.to(torch.int64), 0) - 1

    nv, nt, nm = renumber(kv), renumber(kt), renumber(keep)
    khc = kc[W.hcopy]
    kht = kt[W.hrows]
    return _Work(
        a=W.a[kc], var=nv[W.var[kc]], term=nt[W.term[kc]], cmodel=nm[W.cmodel[kc]], u=W.u[kc],
        zv=W.zv[kc], c=W.c[kt], w=W.w[kt], w2=W.w2[kt], w2aa=W.w2aa[kt], inv_aa=W.inv_aa[kt],
        sq=W.sq[kt], hard=W.hard[kt], capped=W.capped[kt], one_sided=W.one_sided[kt], leq=W.leq[kt],
        tmodel=nm[W.tmodel[kt]], z=W.z[kv], deg=W.deg[kv], inv_deg=W.inv_deg[kv],
        vmodel=nm[W.vmodel[kv]], gvar=W.gvar[kv], rho=W.rho[keep], gid=W.gid[keep],
        sqrtL=W.sqrtL[keep], Lb=W.Lb[keep], has_hard=W.has_hard[keep], done=W.done[keep],
        hcopy=renumber(kc)[W.hcopy[khc]], hterm=renumber(kht)[W.hterm[khc]], hrows=nt[W.hrows[kht]])


def _prox_t(W: _Work, d, rho_t):
    """The scalar ``t`` of ``x = v - t a`` for every term: :func:`hlmrf.model.terms.prox_step`
    re-stated on tensors (see the table in :mod:`hlmrf.model.terms`), all kinds at once.

    A linear hinge's step ``w/rho`` is kept while ``d - (w/rho)|a|^2 >= 0``, i.e. it is
    ``min(w/rho, d/|a|^2)``; a hard row's step is ``d/|a|^2``; one-sided rows (HINGE, LEQ) take no
    step when ``d <= 0``.
    """
    t_proj = d * W.inv_aa
    t = W.w / rho_t
    t = torch.where(W.capped, torch.minimum(t, t_proj), t)
    t = torch.where(W.hard, t_proj, t)
    t = torch.where(W.sq, W.w2 * d / (rho_t + W.w2aa), t)
    return torch.where(W.one_sided & (d <= 0.0), torch.zeros((), dtype=d.dtype, device=d.device), t)


def _segsum(index, src, size):
    return torch.zeros(size, dtype=src.dtype, device=src.device).index_add_(0, index, src)


def _violation(W: _Work):
    """Largest hard-constraint violation at ``z`` per working model (0 without hard rows)."""
    out = torch.zeros(W.B, dtype=W.z.dtype, device=W.z.device)
    if W.hrows.numel() == 0:
        return out
    hd = _segsum(W.hterm, W.a[W.hcopy] * W.z[W.var[W.hcopy]], W.hrows.numel()) - W.c[W.hrows]
    viol = torch.where(W.leq[W.hrows], hd.clamp(min=0.0), hd.abs())
    return out.scatter_reduce_(0, W.tmodel[W.hrows], viol, reduce="amax", include_self=True)


def _run(batch: ModelBatch, settings: AdmmSettings, z0: np.ndarray, device, dtype,
         callback: Callable | None, compact_share: float) -> list[Result]:
    t0 = time.perf_counter()
    st = settings
    dev = torch.device(device)
    dt = _dtype(dtype)
    B = len(batch)
    W, active = _build(batch, z0, st, dev, dt)
    # Output records, indexed by model (and by stacked variable for the values).
    Y = torch.as_tensor(z0).to(device=dev, dtype=dt).clone()
    it_out = torch.zeros(B, dtype=torch.int64, device=dev)
    r_out = torch.zeros(B, dtype=dt, device=dev)
    s_out = torch.zeros(B, dtype=dt, device=dev)
    rho_out = torch.full((B,), float(st.rho), dtype=dt, device=dev)
    conv_out = torch.zeros(B, dtype=torch.bool, device=dev)
    # Models without rows are solved by their start, as in the numpy solver.
    conv_out[torch.as_tensor(~active, device=dev)] = True
    if not active.any():
        W = None
    elif not active.all():
        W.done = torch.as_tensor(~active, device=dev)
        W = _compact(W)
    alpha = float(st.alpha)
    r = s = rho_t = None
    it = 0
    while W is not None and it < st.max_iter:
        it += 1
        if rho_t is None:  # rho per term, refreshed only when rho or the working set changes
            rho_t = W.rho[W.tmodel]
        v = W.zv - W.u
        d = _segsum(W.term, W.a * v, W.c.shape[0]) - W.c
        t = _prox_t(W, d, rho_t)
        x = v - t[W.term] * W.a
        xh = torch.lerp(W.zv, x, alpha) if alpha != 1.0 else x
        z_old = W.z
        W.z = (_segsum(W.var, xh + W.u, z_old.shape[0]) * W.inv_deg).clamp_(0.0, 1.0)
        zv_new = W.z[W.var]
        W.u += xh - zv_new
        check = it % st.check_every == 0 or it == st.max_iter
        adapt = st.adaptive_rho and it % st.adapt_every == 0
        if check or adapt:
            r = _segsum(W.cmodel, (x - zv_new).square(), W.B).sqrt()
            s = W.rho * _segsum(W.vmodel, W.deg * (W.z - z_old).square(), W.B).sqrt()
        if check:
            xn = _segsum(W.cmodel, x.square(), W.B).sqrt()
            zn = _segsum(W.cmodel, zv_new.square(), W.B).sqrt()
            un = _segsum(W.cmodel, W.u.square(), W.B).sqrt()
            eps_pri = W.sqrtL * st.eps_abs + st.eps_rel * torch.maximum(xn, zn)
            eps_dual = W.sqrtL * st.eps_abs + st.eps_rel * W.rho * un
            if callback is not None:
                callback(it, float(r[0]), float(s[0]))
            conv = (r < eps_pri) & (s < eps_dual) & ~W.done
            if bool((conv & W.has_hard).any()):
                conv &= ~W.has_hard | (_violation(W) <= st.constraint_tol)
            if bool(conv.any()):
                _record(W, conv, it, r, s, Y, it_out, r_out, s_out, rho_out, conv_out, True)
                W.done |= conv
                if bool(W.done.all()):
                    W = None
                    break
                dead = float(W.Lb[W.done].sum())
                if dead >= compact_share * float(W.Lb.sum()):
                    keep = ~W.done
                    r, s, zv_new = r[keep], s[keep], zv_new[keep[W.cmodel]]
                    W = _compact(W)
                    rho_t = None
        if adapt:
            ratio = r / s
            change = (r > 0) & (s > 0) & ((ratio > 10.0) | (ratio < 0.1))
            if bool(change.any()):
                scale = torch.where(change, ratio.sqrt().clamp(0.1, 10.0), torch.ones_like(ratio))
                W.rho = W.rho * scale
                W.u /= scale[W.cmodel]
                rho_t = None
        W.zv = zv_new
    if W is not None:
        _record(W, ~W.done, it, r, s, Y, it_out, r_out, s_out, rho_out, conv_out, False)
    y = Y.to("cpu", torch.float64).numpy()
    return _results(batch, y, it_out.cpu().numpy(), r_out.cpu().double().numpy(),
                    s_out.cpu().double().numpy(), rho_out.cpu().double().numpy(),
                    conv_out.cpu().numpy(), time.perf_counter() - t0, f"torch/{dev.type}/{str(dt)[6:]}")


def _record(W, mask, it, r, s, Y, it_out, r_out, s_out, rho_out, conv_out, converged):
    gid = W.gid[mask]
    it_out[gid] = it
    if r is not None:
        r_out[gid] = r[mask]
        s_out[gid] = s[mask]
    rho_out[gid] = W.rho[mask]
    conv_out[gid] = converged
    vm = mask[W.vmodel]
    Y[W.gvar[vm]] = W.z[vm]


def _results(batch, y, its, r, s, rho, conv, seconds, name) -> list[Result]:
    """Energies and violations for all models at once on the stacked model, then one Result each."""
    mod = batch.model
    B = len(batch)
    d = mod.distance(y)
    energy = np.bincount(batch.row_batch, weights=term_energy(d, mod.w, mod.p, mod.kind), minlength=B)
    viol_rows = term_violation(d, mod.kind)
    viol = np.zeros(B)
    nonempty = np.flatnonzero(np.diff(batch.row_ptr) > 0)
    if len(nonempty):
        viol[nonempty] = np.maximum.reduceat(viol_rows, batch.row_ptr[nonempty])
    ys = batch.split(y)
    return [Result(ys[b], Status.CONVERGED if conv[b] else Status.ITERATION_LIMIT, int(its[b]),
                   float(r[b]), float(s[b]), float(energy[b]), float(viol[b]), seconds, name,
                   rho=float(rho[b]), extra={"batch_size": B}) for b in range(B)]


def solve_batch(models: Sequence[HLMRF] | ModelBatch, settings: AdmmSettings | None = None,
                device="cpu", dtype="float64", y0: Sequence[np.ndarray | None] | None = None,
                *, compact_share: float = 0.25) -> list[Result]:
    """Solve many models together (one block-diagonal batch) by consensus ADMM in torch.

    Parameters
    ----------
    models : the models, or a :class:`~hlmrf.model.batch.ModelBatch` of them.
    settings : :class:`AdmmSettings`, shared by all models; each model still keeps its own
        ``rho`` and stops by its own residuals.
    device : any torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
    dtype : ``"float64"`` or ``"float32"``.
    y0 : optional warm starts, one per model (``None`` entries start at zeros).
    compact_share : converged models are dropped from the working set once they hold this share
        of its local copies (0 compacts at every check that finds one; 1 never compacts them out).

    Returns
    -------
    One :class:`Result` per model, in order; ``seconds`` is the whole batch's wall time and
    ``extra["batch_size"]`` the number of models solved together.
    """
    st = settings or AdmmSettings()
    batch = models if isinstance(models, ModelBatch) else ModelBatch.from_models(models)
    if y0 is None:
        z0 = np.zeros(int(batch.var_ptr[-1]))
    else:
        if len(y0) != len(batch):
            raise SettingsError(f"y0 has {len(y0)} warm starts for {len(batch)} models; give one per model")
        z0 = batch.stack([np.zeros(m.n) if y is None else np.asarray(y, np.float64).reshape(-1)
                          for m, y in zip(batch.models, y0)])
    np.clip(z0, 0.0, 1.0, out=z0)
    if not 0.0 <= compact_share <= 1.0:
        raise SettingsError(f"compact_share must lie in [0, 1], got {compact_share}")
    return _run(batch, st, z0, device, dtype, None, compact_share)


def solve_torch(model: HLMRF, settings: AdmmSettings | None = None, y0: np.ndarray | None = None,
                device="cpu", dtype="float64",
                callback: Callable[[int, float, float], None] | None = None) -> Result:
    """Find the MAP state of one model by consensus ADMM in torch.

    The same iterates as :func:`hlmrf.inference.admm.solve_admm` (up to floating-point order), on
    any torch device; ``callback(iteration, primal_residual, dual_residual)`` is called at every
    stopping-rule check.
    """
    st = settings or AdmmSettings()
    z0 = np.zeros(model.n) if y0 is None else np.clip(np.asarray(y0, np.float64).reshape(-1), 0.0, 1.0)
    if z0.shape != (model.n,):
        raise SettingsError(f"y0 has shape {z0.shape}; the model has {model.n} variables")
    return _run(ModelBatch.from_models([model]), st, z0, device, dtype, callback, 1.0)[0]

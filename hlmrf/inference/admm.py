"""MAP inference by consensus ADMM (Bach et al., JMLR 2017), vectorised over potentials in numpy.

Each potential keeps local copies ``x`` of its variables and a scaled multiplier ``u``; an
iteration updates every term in closed form (:func:`hlmrf.model.terms.prox_step`, on per-row
coefficients read from :data:`hlmrf.model.terms.TABLE`), averages the copies into the consensus ``z``
(clipped to [0, 1]) and updates ``u``. It stops on the reference engine's primal/dual residual
rule. On top of the reference algorithm: over-relaxation (``alpha``), residual-balancing
adaptation of ``rho``, and a certified duality gap (:func:`hlmrf.model.terms.dual_bound`) that must
also be small before stopping: the reference's rule alone stops linear-hinge models up to ~0.5%
above their optimum. Deterministic start (``z = 0`` unless warm-started). No torch here (see
:mod:`hlmrf.inference.torch_admm`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from hlmrf.errors import SolverError
from hlmrf.inference.result import Result, Status
from hlmrf.inference.settings import AdmmSettings
from hlmrf.model.hlmrf import HLMRF
from hlmrf.inference.polish import WORK_PER_COPY_ITERATION, WORK_PER_ITERATION, Certificate, improve, project_dual
from hlmrf.model.terms import TABLE, Coefficients, Kind, coefficients, dual_bound, prox_bounds, prox_step


@dataclass
class _Layout:
    """The model's rows reordered so each (kind, exponent) group is a contiguous slice."""

    perm: np.ndarray
    A: object  # the permuted CSR matrix
    p: np.ndarray
    a: np.ndarray  # (L,) coefficient of each local copy
    var: np.ndarray  # (L,) variable of each local copy
    starts: np.ndarray  # (m,) first copy of each term
    counts: np.ndarray  # (m,) copies per term
    c: np.ndarray
    w: np.ndarray
    aa: np.ndarray
    deg: np.ndarray  # (n,) copies per variable
    groups: list  # (kind, p, row_start, row_end)
    row: np.ndarray  # (L,) term of each local copy (segment sums by bincount, not reduceat)
    co: Coefficients  # each row's entry of the kind table


def layout(model: HLMRF) -> _Layout:
    key = model.kind.astype(np.int64) * 4 + model.p.astype(np.int64)
    perm = np.argsort(key, kind="stable")
    A = model.A[perm]
    A.sort_indices()
    counts = np.diff(A.indptr)
    a = A.data.astype(np.float64)
    groups = []
    sk = key[perm]
    bounds = np.flatnonzero(np.diff(sk)) + 1
    for s, e in zip(np.r_[0, bounds], np.r_[bounds, len(sk)]):
        if e > s:
            groups.append((int(model.kind[perm[s]]), int(model.p[perm[s]]), int(s), int(e)))
    aa = np.add.reduceat(a * a, A.indptr[:-1]) if len(a) else np.zeros(0)
    w = model.w[perm].astype(np.float64)
    return _Layout(perm, A, model.p[perm], a, A.indices.astype(np.int64), A.indptr[:-1].astype(np.int64), counts,
                   model.c[perm].astype(np.float64), w, aa,
                   np.bincount(A.indices, minlength=model.n), groups,
                   np.repeat(np.arange(len(counts)), counts), coefficients(model.kind[perm], model.p[perm], w, aa))


def solve_admm(model: HLMRF, settings: AdmmSettings | None = None, y0: np.ndarray | None = None,
               callback: Callable[[int, float, float], None] | None = None,
               state: dict | None = None) -> Result:
    """Find the MAP state of ``model`` by consensus ADMM.

    Parameters
    ----------
    settings : :class:`AdmmSettings`; the defaults follow the reference engine's tolerances.
    y0 : warm start of the values (defaults to zeros).
    state : a full warm start, ``previous_result.extra["state"]`` (the scaled duals and rho) from
        a model with the same rows and sparsity (e.g. the same ground model re-weighted during
        learning); it is ignored when the shapes do not match. Pass ``y0`` with it.
    callback : called as ``callback(iteration, primal_residual, dual_residual)`` at every
        stopping-rule check (the CLI draws its progress display with it).

    Notes
    -----
    Weights are used as given: normalise with ``model.normalized()`` first for the reference
    engine's convention (``hlmrf.infer`` does).
    """
    st = settings or AdmmSettings()
    t0 = time.perf_counter()
    n, m = model.n, model.m
    z = np.zeros(n) if y0 is None else np.clip(np.asarray(y0, dtype=np.float64), 0.0, 1.0).copy()
    if m == 0:
        return Result(z, Status.CONVERGED, 0, 0.0, 0.0, 0.0, 0.0, time.perf_counter() - t0, "admm",
                      lower_bound=0.0)
    lay = layout(model)
    a, var, row = lay.a, lay.var, lay.row
    L = len(a)
    has_copy = lay.deg > 0
    inv_deg = np.where(has_copy, 1.0 / np.maximum(lay.deg, 1), 0.0)
    hard = any(k >= Kind.LEQ for k, _, _, _ in lay.groups)
    rho = float(st.rho)
    alpha = float(st.alpha)
    u = np.zeros(L)
    adapt_interval = st.adapt_every
    next_adapt = adapt_interval
    if state is not None and np.shape(state.get("u")) == (L,):
        u = np.array(state["u"], dtype=np.float64)
        rho = float(state["rho"])
    t = np.zeros(m)
    rho_t = rho
    K1 = D = None  # the prox step's rho-dependent coefficients
    sqrtL = np.sqrt(L)
    status = Status.ITERATION_LIMIT
    r_norm = s_norm = float("inf")
    it = 0
    fused = _fused_kernel(st, lay, n, alpha)
    zv = z[var] if fused is None else None
    log: dict = {"polish_seconds": 0.0, "attempts": 0, "used": False, "next_projection": 0}
    for it in range(1, st.max_iter + 1):
        check = it % st.check_every == 0 or it == st.max_iter
        adapt = st.adaptive_rho and it >= next_adapt
        if K1 is None:
            K1, D = prox_bounds(lay.co, lay.w, rho)
        rho_t = rho  # theta = rho_t * t is dual-feasible; rho may adapt below
        if fused is not None:  # the same iteration in one compiled pass (hlmrf.inference.fused)
            z, norms = fused.step(z, u, t, K1, D, complete=check or adapt)
            zv_new = None
            if check or adapt:
                r_norm, s_norm = math.sqrt(norms[0]), rho * math.sqrt(norms[1])
                x_norm, zv_norm, u_norm = (math.sqrt(v) for v in norms[2:])
        else:
            v = zv - u
            d = np.bincount(row, weights=a * v, minlength=m) - lay.c
            prox_step(lay.co, d, K1, D, out=t)
            x = v - np.take(t, row) * a
            xh = alpha * x + (1.0 - alpha) * zv if alpha != 1.0 else x
            z_old = z
            z = np.bincount(var, weights=xh + u, minlength=n) * inv_deg
            np.clip(z, 0.0, 1.0, out=z)
            z = np.where(has_copy, z, z_old)
            zv_new = z[var]
            u += xh - zv_new
            if check or adapt:
                r_norm = _norm(x - zv_new)
                dz = z - z_old
                s_norm = rho * math.sqrt(float(np.einsum("i,i,i->", lay.deg, dz, dz)))
                x_norm, zv_norm, u_norm = _norm(x), _norm(zv_new), _norm(u)
        if check and not (math.isfinite(r_norm) and math.isfinite(s_norm)):
            raise _diverged(model, it)
        if check:
            eps_pri = sqrtL * st.eps_abs + st.eps_rel * max(x_norm, zv_norm)
            eps_dual = sqrtL * st.eps_abs + st.eps_rel * rho * u_norm
            if callback is not None:
                callback(it, r_norm, s_norm)
            if r_norm < eps_pri and s_norm < eps_dual:
                cert = _certificate(lay, z, rho_t * t, hard)
                if cert.holds(st.gap_rel, st.gap_abs, st.constraint_tol):
                    status = Status.CONVERGED
                    zv = zv_new
                    break
                z_best, cert = _improve(model, lay, z, rho_t * t, cert, st, log, it)
                if cert.holds(st.gap_rel, st.gap_abs, st.constraint_tol):
                    status = Status.CONVERGED
                    z = z_best
                    zv = zv_new
                    break
        if adapt:
            next_adapt = it + adapt_interval
            ratio = r_norm / s_norm if r_norm > 0 and s_norm > 0 else 1.0
            if ratio > 10.0 or ratio < 0.1:
                scale = float(np.clip(np.sqrt(ratio), 0.1, 10.0))
                rho *= scale
                u /= scale
                K1 = None
                # Back off geometrically: rho settles after finitely many changes, which keeps
                # ADMM's convergence guarantee (a rho that keeps moving can stall it).
                adapt_interval *= 2
                next_adapt = it + adapt_interval
        zv = zv_new
    theta = rho_t * t
    if status != Status.CONVERGED:
        cert = _certificate(lay, z, theta, hard)
        if it > 0:
            z, cert = _improve(model, lay, z, theta, cert, st, log, it, final=True)
        if cert.holds(st.gap_rel, st.gap_abs, st.constraint_tol):
            status = Status.CONVERGED
    energy = model.energy(z)
    violation = model.violation(z)
    bound = cert.lower_bound
    extra = {"lower_bound": bound, "state": {"u": u, "rho": rho}, "polished": log["used"],
             "polish_attempts": log["attempts"], "polish_seconds": log["polish_seconds"],
             "polish_skipped": log.get("skipped")}
    if not cert.convex:
        extra["certificate"] = "none: negative weights make the energy non-convex (a local solution)"
    return Result(z, status, it, r_norm, s_norm, energy, violation, time.perf_counter() - t0, "admm",
                  rho=rho, extra=extra, lower_bound=bound)


FUSED_MIN_COPIES = 1_000_000
"""``kernel="auto"`` uses the fused kernel only above this many local copies: loading the compiled
code from numba's disk cache costs ~0.4 s per process (~2 s to compile it the first time), which
the ~4 ns it saves per copy and iteration (benchmarks/bench_admm_kernel.py) repays only on models
of about a million copies and up."""


def _fused_kernel(st: AdmmSettings, lay: _Layout, n: int, alpha: float):
    """The compiled iteration body for ``st.kernel``, or None for the numpy one."""
    if st.kernel == "numpy" or (st.kernel == "auto" and len(lay.a) <= FUSED_MIN_COPIES):
        return None
    if st.kernel == "auto":
        import importlib.util

        if importlib.util.find_spec("numba") is None:
            return None
    from hlmrf.errors import require

    require("numba", "fast")  # kernel="numba" without numba: MissingDependencyError naming hlmrf[fast]
    from hlmrf.inference.fused import FusedKernel

    return FusedKernel(lay, n, alpha)


def _diverged(model: HLMRF, it: int) -> SolverError:
    soft = model.kind <= Kind.HINGE
    if (model.w[soft] < 0).any():
        rules = sorted(set(model.index.rule_texts[int(r)] for r in model.rule[soft & (model.w < 0)]
                           if int(r) < len(model.index.rule_texts)))[:3]
        return SolverError(
            f"ADMM diverged at iteration {it} (non-finite values): the model has negative weights "
            f"({'; '.join(rules) or 'some rows'}), which make the energy non-convex and a squared "
            "term's prox step unbounded. Give every rule a weight >= 0 (learn with "
            "nonnegative=True)")
    return SolverError(f"ADMM diverged at iteration {it} (non-finite values) on a model with finite, "
                       "non-negative weights; this is a bug: please report it with the model")


def _certificate(lay: _Layout, z: np.ndarray, theta: np.ndarray, hard: bool) -> Certificate:
    """The certificate of ``z`` with ADMM's multipliers ``theta`` (layout row order)."""
    if (lay.w < 0).any():  # negative weights: non-convex, no bound (see Certificate.convex)
        return Certificate(_energy(lay, z), float("nan"), _violation(lay, z) if hard else 0.0, convex=False)
    bound = dual_bound(theta, lay.A, lay.c, lay.w, lay.co.sq)
    return Certificate(_energy(lay, z), bound, _violation(lay, z) if hard else 0.0)


def _energy(lay: _Layout, z: np.ndarray) -> float:
    d = lay.A @ z - lay.c
    energy = 0.0
    for kind, p, s, e in lay.groups:  # summed per group, as the rows are laid out
        km = TABLE[kind, p]
        if km.power:
            h = d[s:e] if km.lb == -np.inf else np.maximum(d[s:e], km.lb)
            energy += _dot(lay.w[s:e], h if km.power == 1 else h * h)
    return energy


def _improve(model: HLMRF, lay: _Layout, z: np.ndarray, theta: np.ndarray, cert: Certificate,
             st: AdmmSettings, log: dict, it: int, final: bool = False):
    """:func:`hlmrf.inference.polish.improve`, paced.

    Pacing is by work, not wall time (so a run is reproducible): a polish is tried only when its
    estimated cost fits in the work ADMM has done so far less that of the earlier attempts, so
    polishing at most doubles a run it cannot help; and, however cheap, at most once per quarter
    of the iterations so far.
    """
    if not st.polish or not cert.convex:  # polishing assumes a convex problem
        return z, cert
    theta_m = np.empty_like(theta)
    theta_m[lay.perm] = theta
    do_polish = final or it >= log.get("next_polish", 0)
    project = final or it >= log["next_projection"]
    if not (do_polish or project):
        return z, cert
    if project:
        log["next_projection"] = 2 * it
    if do_polish:
        log["next_polish"] = it + max(st.check_every, it // 4)
    start = time.perf_counter()
    budget = (WORK_PER_ITERATION + WORK_PER_COPY_ITERATION * len(lay.a)) * it - log.get("work", 0.0) \
        if do_polish else -1.0
    hard = cert.violation > 0 or any(k >= Kind.LEQ for k, _, _, _ in lay.groups)

    def certify(y, theta_model):  # the layout's certificate: no model-sized temporaries per kind
        if theta_model is None:
            return Certificate(_energy(lay, y), cert.lower_bound, _violation(lay, y) if hard else 0.0)
        return _certificate(lay, y, project_dual(model, theta_model)[lay.perm], hard)

    out = improve(model, z, theta_m, cert, st, budget=budget, project=project, log=log, certify=certify)
    log["polish_seconds"] += time.perf_counter() - start
    return out


def _norm(x: np.ndarray) -> float:
    # einsum, not np.linalg.norm/np.dot: those call a multithreaded BLAS whose thread wake-ups
    # cost ~15 ms per call on a loaded 2-core machine, more than a whole iteration.
    return math.sqrt(float(np.einsum("i,i->", x, x)))


def _dot(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.einsum("i,i->", x, y))


def _violation(lay: _Layout, z: np.ndarray) -> float:
    d = np.bincount(lay.row, weights=lay.a * z[lay.var], minlength=len(lay.c)) - lay.c
    worst = 0.0
    for kind, p, s, e in lay.groups:
        km = TABLE[kind, p]
        if km.violation == 1:
            worst = max(worst, float(np.max(d[s:e], initial=0.0)))
        elif km.violation == 2:
            worst = max(worst, float(np.max(np.abs(d[s:e]), initial=0.0)))
    return worst

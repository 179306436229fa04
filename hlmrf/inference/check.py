"""Cross-check a model against a general-purpose convex solver through cvxpy.

The same energy and constraints, written as a cvxpy problem: OSQP (or Clarabel) for models with
squared terms, HiGHS (or Clarabel) for linear ones. cvxpy is imported only here, when asked for.
Use it to verify ADMM on small and medium models; it is not meant to be fast.
"""
from __future__ import annotations

import time

import numpy as np

from hlmrf.errors import MissingDependencyError, SolverError, require
from hlmrf.inference.result import Result, Status
from hlmrf.model.hlmrf import HLMRF
from hlmrf.model.terms import TABLE, Kind


def solve_cvxpy(model: HLMRF, solver: str | None = None, eps: float = 1e-9) -> Result:
    """Solve ``model`` exactly with cvxpy.

    Parameters
    ----------
    solver : a cvxpy solver name; default OSQP (squared terms present) or HIGHS (all linear),
        falling back to CLARABEL when that one is not installed.
    eps : solver accuracy.
    """
    cp = require("cvxpy", "check")
    t0 = time.perf_counter()
    n = model.n
    y = cp.Variable(n)
    terms = []
    cons = [y >= 0, y <= 1]
    for (kind, p), km in TABLE.items():  # the energy and constraints of each kind, as the table has them
        sel = np.flatnonzero((model.kind == kind) & (model.p == p))
        if len(sel) == 0:
            continue
        d = model.A[sel] @ y - model.c[sel]
        if km.power:
            h = d if km.lb == -np.inf else cp.pos(d)  # max(d, 0): the table's lb is 0 or -inf
            terms.append(model.w[sel] @ (h if km.power == 1 else cp.square(h)))
        elif km.violation == 1:
            cons.append(d <= 0)
        else:
            cons.append(d == 0)
    objective = cp.Minimize(cp.sum(cp.hstack(terms)) if terms else cp.Constant(0))
    problem = cp.Problem(objective, cons)
    squared = bool(((model.p == 2) & (model.kind <= Kind.HINGE)).any())
    installed = set(cp.installed_solvers())
    if solver is None:
        prefs = ["OSQP", "CLARABEL"] if squared else ["HIGHS", "CLARABEL"]
        solver = next((s for s in prefs if s in installed), None)
        if solver is None:
            raise MissingDependencyError(f"none of {prefs} is installed for cvxpy; "
                                         'install them with: pip install "hlmrf[check]"')
    opts = {}
    if solver == "OSQP":
        opts = dict(eps_abs=eps, eps_rel=eps, max_iter=200_000, polishing=True)
    elif solver == "CLARABEL":
        opts = dict(tol_gap_abs=eps, tol_gap_rel=eps, tol_feas=eps)
    try:
        problem.solve(solver=solver, **opts)
    except cp.error.SolverError as exc:
        raise SolverError(f"cvxpy/{solver} failed: {exc}") from None
    seconds = time.perf_counter() - t0
    if problem.status in ("infeasible", "infeasible_inaccurate"):
        return Result(np.full(n, np.nan), Status.INFEASIBLE, 0, np.nan, np.nan, np.inf, np.inf,
                      seconds, f"cvxpy/{solver}")
    if y.value is None:
        raise SolverError(f"cvxpy/{solver} returned no solution (status {problem.status})")
    yv = np.clip(np.asarray(y.value, dtype=np.float64), 0.0, 1.0)
    return Result(yv, Status.OPTIMAL, int(problem.solver_stats.num_iters or 0), 0.0, 0.0,
                  model.energy(yv), model.violation(yv), seconds, f"cvxpy/{solver}")

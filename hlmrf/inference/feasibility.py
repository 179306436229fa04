"""Decide whether a model's hard constraints can hold at all, and say which ones fail.

When ADMM ends without meeting the hard constraints, that is either slow convergence or an
infeasible model; a small LP (HiGHS through scipy) over the hard rows alone tells them apart.
"""
from __future__ import annotations

import numpy as np

from hlmrf.model.hlmrf import HLMRF
from hlmrf.model.terms import Kind


def hard_constraints_feasible(model: HLMRF) -> bool:
    """True when some ``y`` in [0, 1]^n satisfies every hard row (within 1e-7)."""
    leq = np.flatnonzero(model.kind == Kind.LEQ)
    eq = np.flatnonzero(model.kind == Kind.EQ)
    if len(leq) + len(eq) == 0:
        return True
    import scipy.optimize as so  # here, not at module level: it costs ~0.5 s of every CLI start

    res = so.linprog(np.zeros(model.n),
                     A_ub=model.A[leq] if len(leq) else None, b_ub=model.c[leq] if len(leq) else None,
                     A_eq=model.A[eq] if len(eq) else None, b_eq=model.c[eq] if len(eq) else None,
                     bounds=(0, 1), method="highs")
    return res.status != 2

"""The projection onto the active hard constraints (``hlmrf.inference.polish.project_hard``)
against a dense least-norm reference, with equations stated twice (a symmetry constraint ground
for both orders of its arguments), which ``_distinct_equations`` keeps once."""
from __future__ import annotations

import numpy as np

from hlmrf.inference.polish import _distinct_equations, project_hard
from hlmrf.model.hlmrf import HLMRF
from hlmrf.model.terms import Kind


def _symmetry_model(pairs, n):
    rows = []
    for i, j in pairs:  # K(i, j) = K(j, i), ground for both orders, as PSL grounds it
        rows.append(({i: 1.0, j: -1.0}, 0.0, 0.0, 1, int(Kind.EQ), 0))
        rows.append(({j: 1.0, i: -1.0}, 0.0, 0.0, 1, int(Kind.EQ), 0))
    return HLMRF.from_rows(rows, n)


def test_equations_stated_twice_are_kept_once():
    m = _symmetry_model([(0, 1), (2, 3)], 4)
    AH, rhs = _distinct_equations(m.A, m.c, np.arange(4.0))
    assert AH.shape[0] == 2 and list(rhs) == [0.0, 2.0]
    # rows that differ are all kept
    other = HLMRF.from_rows([({0: 1.0, 1: -1.0}, 0.0, 0.0, 1, int(Kind.EQ), 0),
                             ({0: 1.0, 1: 1.0}, 1.0, 0.0, 1, int(Kind.EQ), 0)], 2)
    assert _distinct_equations(other.A, other.c, np.zeros(2))[0].shape[0] == 2


def test_equations_are_compared_within_each_count_of_entries(monkeypatch):
    # A symmetry constraint whose partner atom is observed grounds to a row of one entry; rows of
    # one and two entries mixed must still have their repeats dropped, so that the Gram matrix of
    # disjoint constraints is diagonal and the projection needs no factorisation.
    import scipy.sparse.linalg

    one = [({4: 1.0}, 0.3, 0.0, 1, int(Kind.EQ), 0), ({5: 1.0}, 0.7, 0.0, 1, int(Kind.EQ), 0)]
    sym = [({i: 1.0, j: -1.0}, 0.0, 0.0, 1, int(Kind.EQ), 0) for i, j in [(0, 1), (1, 0), (2, 3), (3, 2)]]
    m = HLMRF.from_rows(sym[:2] + one[:1] + sym[2:] + one[1:], 6)  # rows of 2, 2, 1, 2, 2, 1 entries
    AH, rhs = _distinct_equations(m.A, m.c, np.arange(6.0))
    assert AH.shape[0] == 4 and list(rhs) == [0.0, 2.0, 3.0, 5.0]
    assert (AH @ AH.T).nnz == 4  # diagonal

    def no_factorisation(*args, **kwargs):
        raise AssertionError("splu called on disjoint constraints")

    monkeypatch.setattr(scipy.sparse.linalg, "splu", no_factorisation)
    y = np.array([0.2, 0.4, 0.5, 0.7, 0.9, 0.1])
    got = project_hard(m, y, rounds=1)
    A = m.A.toarray()
    np.testing.assert_allclose(got, y + np.linalg.pinv(A) @ (m.c - A @ y), rtol=0, atol=1e-10)


def test_projection_is_the_least_norm_correction():
    rng = np.random.default_rng(0)
    n = 12
    pairs = [(0, 1), (2, 3), (4, 5), (6, 7)]
    m = _symmetry_model(pairs, n)
    y = rng.uniform(0.2, 0.8, n)  # inside the box: no clipping in the reference
    got = project_hard(m, y, rounds=1)
    A = m.A.toarray()
    ref = y + np.linalg.pinv(A) @ (m.c - A @ y)  # the least-norm correction onto A y = c
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10)
    for i, j in pairs:
        assert abs(got[i] - got[j]) < 1e-10


def _improve_at(feasible_energy, early=True):
    """``admm._improve`` at iteration 10 with the scheduled projection far away (1000) and
    polishing off, on a symmetry model whose state breaks its constraints; returns the state.
    ``early``: whether an early attempt is left since the last scheduled one."""
    from hlmrf.inference.admm import _improve, _NumpyKernel
    from hlmrf.inference.polish import Certificate
    from hlmrf.inference.settings import AdmmSettings

    m = _symmetry_model([(0, 1), (2, 3)], 4)
    z = np.array([0.2, 0.4, 0.6, 0.6])
    kern = _NumpyKernel(m, 1.0)
    cert = Certificate(energy=0.0, lower_bound=-1e-9, violation=0.2)  # the gap holds, not the rows
    log = {"next_projection": 1000, "next_polish": 1000, "attempts": 0, "polish_seconds": 0.0,
           "early": early}
    if feasible_energy is not None:
        log["feasible_energy"] = feasible_energy
    y, out = _improve(m, kern, z, np.zeros(m.m), 1.0, cert, AdmmSettings(), log, 10)
    return y, out, log


def test_projection_is_due_early_when_the_last_feasible_energy_would_pass():
    # no feasible state known yet: the schedule decides, and iteration 10 is not due
    y, out, _ = _improve_at(None)
    assert out.violation == 0.2 and y[0] == 0.2
    # the last feasible state's energy is far above the bound: still not due
    y, out, _ = _improve_at(5.0)
    assert out.violation == 0.2
    # within the gap tolerance of the bound: projected now, and the new energy is remembered;
    # no further early attempt until the next scheduled one
    y, out, log = _improve_at(1e-8)
    assert out.violation < 1e-12 and abs(y[0] - y[1]) < 1e-12
    assert log["feasible_energy"] == out.energy and log["next_projection"] == int(1.25 * 10)
    assert log["early"] is False
    # the early attempt after the last scheduled one was already used: the schedule decides
    y, out, _ = _improve_at(1e-8, early=False)
    assert out.violation == 0.2

"""The batched numpy ADMM (hlmrf.inference.batch_numpy) against independent references: each model
solved alone by solve_admm (polish off: the same iterations and states), cvxpy optima (polish on:
certified answers), and the batched torch solver where torch is installed."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hlmrf.errors import SettingsError
from hlmrf.inference.admm import solve_admm
from hlmrf.inference.batch_numpy import solve_batch_numpy
from hlmrf.inference.result import Status
from hlmrf.inference.settings import AdmmSettings
from hlmrf.model.batch import ModelBatch
from hlmrf.model.hlmrf import HLMRF
from hlmrf.testing.random_models import clevr_like_model, random_model

ROOT = Path(__file__).resolve().parents[2]


def _mixed(seed: int) -> list[HLMRF]:
    """CLEVR-like and random models: squared, linear, mixed, with and without constraints, and
    models without rows or without variables."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(6):
        out.append(clevr_like_model(rng, mentions=int(rng.integers(1, 4)), objects=int(rng.integers(2, 8)),
                                    n_pots=int(rng.integers(5, 60)), squared_share=[0.0, 0.5, 1.0][k % 3]))
    for k in range(12):
        out.append(random_model(rng, int(rng.integers(2, 14)), int(rng.integers(1, 30)),
                                squared_share=[0.0, 0.5, 1.0][k % 3], constraints=int(rng.integers(0, 4))))
    out.insert(3, random_model(rng, 4, 0))  # variables, no rows
    out.insert(9, HLMRF.from_rows([], 0))  # nothing at all
    return out


SETTINGS = [AdmmSettings(polish=False), AdmmSettings(polish=False, rho=0.1, alpha=1.0),
            AdmmSettings(polish=False, adaptive_rho=False, check_every=3)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("st", SETTINGS, ids=["default", "rho0.1-alpha1", "fixed-rho"])
def test_same_iterates_as_solve_admm_model_by_model(seed, st):
    models = _mixed(seed)
    got = solve_batch_numpy(models, st)
    assert len(got) == len(models)
    for m, r in zip(models, got):
        ref = solve_admm(m, st)
        assert r.iterations == ref.iterations
        assert r.status == ref.status
        np.testing.assert_allclose(r.y, ref.y, rtol=0, atol=1e-12)
        if m.m:  # (solve_admm reports no rho for a model without rows)
            assert r.rho == pytest.approx(ref.rho, rel=1e-9)  # r/s are summed in another order
        assert r.energy == pytest.approx(ref.energy, rel=1e-12, abs=1e-12)
        assert r.violation == pytest.approx(ref.violation, abs=1e-12)
        if ref.status == Status.CONVERGED and m.m:
            assert r.lower_bound == pytest.approx(ref.lower_bound, rel=1e-9, abs=1e-12)


def test_warm_starts_follow_solve_admm():
    models = _mixed(3)
    rng = np.random.default_rng(4)
    y0 = [None if k % 3 == 0 else rng.random(m.n) * 1.4 - 0.2 for k, m in enumerate(models)]  # clipped
    st = AdmmSettings(polish=False)
    got = solve_batch_numpy(models, st, y0=y0)
    for m, z, r in zip(models, y0, got):
        ref = solve_admm(m, st, y0=z)
        assert r.iterations == ref.iterations
        np.testing.assert_allclose(r.y, ref.y, rtol=0, atol=1e-12)


def test_iteration_limit_is_per_model():
    models = _mixed(5)
    st = AdmmSettings(polish=False, max_iter=40)
    got = solve_batch_numpy(models, st)
    for m, r in zip(models, got):
        ref = solve_admm(m, st)
        assert r.iterations == ref.iterations <= 40
        np.testing.assert_allclose(r.y, ref.y, rtol=0, atol=1e-12)
        if r.status == Status.CONVERGED:
            assert ref.status == Status.CONVERGED


@pytest.mark.parametrize("compact_share", [0.0, 0.25, 1.0])
def test_compaction_does_not_change_answers(compact_share):
    models = _mixed(6)
    st = AdmmSettings(polish=False)
    ref = solve_batch_numpy(models, st, compact_share=1.0)
    got = solve_batch_numpy(ModelBatch.from_models(models), st, compact_share=compact_share)
    for a, b in zip(got, ref):
        assert a.iterations == b.iterations
        np.testing.assert_array_equal(a.y, b.y)


@pytest.mark.parametrize("seed", [0, 7])
def test_polished_answers_are_certified_cvxpy_optima(seed):
    pytest.importorskip("cvxpy")
    from hlmrf.inference.check import solve_cvxpy

    models = _mixed(seed)
    st = AdmmSettings()
    for m, r in zip(models, solve_batch_numpy(models, st)):
        assert r.status == Status.CONVERGED
        assert r.gap <= st.gap_rel * abs(r.energy) + st.gap_abs + 1e-12
        assert r.violation <= st.constraint_tol
        if m.m:
            opt = solve_cvxpy(m)
            assert r.energy <= opt.energy + 1e-4 * max(1.0, abs(opt.energy))


def test_agrees_with_torch_solve_batch():
    pytest.importorskip("torch")
    from hlmrf.inference.torch_admm import solve_batch

    models = _mixed(8) + _mixed(9)
    st = AdmmSettings(polish=False)
    got = solve_batch_numpy(models, st)
    ref = solve_batch(models, st, device="cpu", dtype="float64")
    for a, b in zip(got, ref):
        assert a.iterations == b.iterations
        assert a.status == b.status
        np.testing.assert_allclose(a.y, b.y, rtol=0, atol=1e-9)


def test_errors_name_the_problem():
    models = _mixed(0)[:3]
    with pytest.raises(SettingsError, match="one per model"):
        solve_batch_numpy(models, y0=[None])
    with pytest.raises(SettingsError, match="variables"):
        solve_batch_numpy(models, y0=[np.zeros(m.n + 1) for m in models])
    with pytest.raises(SettingsError, match="compact_share"):
        solve_batch_numpy(models, compact_share=2.0)
    assert solve_batch_numpy([]) == []


def test_does_not_import_torch():
    code = ("import sys, numpy as np; from hlmrf.inference.batch_numpy import solve_batch_numpy; "
            "from hlmrf.testing.random_models import clevr_like_model; "
            "solve_batch_numpy([clevr_like_model(np.random.default_rng(0))]); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)

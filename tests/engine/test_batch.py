"""ModelBatch stacking and splitting, and the batched torch solver's own behaviour (warm starts,
compaction, chunking, errors, optional-dependency hygiene). The answers themselves are checked
against independent references in test_solver_contract.py."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from hlmrf.testing.random_models import clevr_like_model, random_model

from hlmrf.errors import MissingDependencyError, SettingsError  # noqa: E402
from hlmrf.inference.settings import AdmmSettings  # noqa: E402
from hlmrf.model.batch import ModelBatch  # noqa: E402
from hlmrf.model.hlmrf import HLMRF  # noqa: E402
from hlmrf.model.terms import Kind  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _models(seed=0, count=5):
    rng = np.random.default_rng(seed)
    models = [random_model(rng, int(rng.integers(3, 12)), int(rng.integers(2, 20)),
                           squared_share=0.5, constraints=int(rng.integers(0, 3))) for _ in range(count)]
    return models + [clevr_like_model(rng, mentions=2, objects=4, n_pots=20)]


# --- ModelBatch --------------------------------------------------------------------------------

def test_stack_is_block_diagonal_with_assignment_vectors():
    models = _models()
    b = ModelBatch.from_models(models)
    assert len(b) == b.num_models == len(models) and b.models == tuple(models)
    np.testing.assert_array_equal(b.var_ptr, np.r_[0, np.cumsum([m.n for m in models])])
    np.testing.assert_array_equal(b.row_ptr, np.r_[0, np.cumsum([m.m for m in models])])
    np.testing.assert_array_equal(b.var_batch, np.repeat(np.arange(len(models)), [m.n for m in models]))
    np.testing.assert_array_equal(b.row_batch, np.repeat(np.arange(len(models)), [m.m for m in models]))
    expected = sp.block_diag([m.A for m in models], format="csr")
    assert (b.model.A != expected).nnz == 0
    for field in ("c", "w", "p", "kind"):
        np.testing.assert_array_equal(getattr(b.model, field), np.concatenate([getattr(m, field) for m in models]))


def test_energy_violation_and_rules_split_back_per_model():
    models = _models(1)
    b = ModelBatch.from_models(models)
    rng = np.random.default_rng(2)
    ys = [rng.random(m.n) for m in models]
    y = b.stack(ys)
    assert b.model.energy(y) == pytest.approx(sum(m.energy(v) for m, v in zip(models, ys)))
    assert b.model.violation(y) == pytest.approx(max(m.violation(v) for m, v in zip(models, ys)))
    by_rule = b.model.energy_by_rule(y)
    for k, (m, v) in enumerate(zip(models, ys)):
        np.testing.assert_allclose(by_rule[b.rule_ptr[k]:b.rule_ptr[k + 1]], m.energy_by_rule(v))
    for got, want in zip(b.split(y), ys):
        np.testing.assert_array_equal(got, want)
    d = b.model.distance(y)
    for got, m, v in zip(b.split_rows(d), models, ys):
        np.testing.assert_allclose(got, m.distance(v))


def test_empty_models_and_empty_batch():
    empty = HLMRF.from_rows([], 3)
    one = HLMRF.from_rows([({0: 1.0}, 0.5, 1.0, 2, Kind.LINEAR, 0)], 1)
    b = ModelBatch.from_models([empty, one, empty])
    assert b.model.n == 7 and b.model.m == 1
    np.testing.assert_array_equal(b.row_batch, [1])
    assert [len(v) for v in b.split(np.zeros(7))] == [3, 1, 3]
    nothing = ModelBatch.from_models([])
    assert nothing.model.n == 0 and nothing.split(np.zeros(0)) == []


def test_split_and_stack_check_lengths():
    b = ModelBatch.from_models(_models())
    with pytest.raises(ValueError, match="expected"):
        b.split(np.zeros(b.model.n + 1))
    with pytest.raises(ValueError, match="one per model"):
        b.stack([np.zeros(1)])


# --- the batched solver ---------------------------------------------------------------------------

torch_admm = pytest.importorskip("hlmrf.inference.torch_admm")


def test_compaction_and_chunking_do_not_change_answers():
    models = _models(3, 12)
    base = torch_admm.solve_batch(models, compact_share=1.0)
    for kwargs in ({"compact_share": 0.0}, {"compact_share": 0.5, "max_copies": 40}, {"max_copies": 1},
                   {"max_copies": None}):
        other = torch_admm.solve_batch(models, **kwargs)
        for r0, r1 in zip(base, other):
            np.testing.assert_array_equal(r0.y, r1.y)
            assert r0.iterations == r1.iterations and r0.status == r1.status
    assert len({r.iterations for r in base}) > 1  # models stop on their own


def test_warm_starts_follow_the_numpy_solver():
    """A warm start moves the start of z (the duals still start at 0, as in numpy's ``y0``).

    The torch solver does not polish, so it follows the numpy solver with polishing off."""
    from hlmrf.inference.admm import solve_admm
    from hlmrf.inference.settings import AdmmSettings

    models = _models(4, 6)
    plain = AdmmSettings(polish=False)
    cold = torch_admm.solve_batch(models, plain)
    rng = np.random.default_rng(0)
    starts = [None] + [rng.random(m.n) * 1.4 - 0.2 for m in models[1:]]  # clipped to [0, 1]
    warm = torch_admm.solve_batch(models, plain, y0=starts)
    for m, y0, r0, r1 in zip(models, starts, cold, warm):
        ref = solve_admm(m, plain, y0=y0)
        np.testing.assert_allclose(r1.y, ref.y, atol=1e-9)
        assert r1.iterations == ref.iterations and r1.ok
        assert abs(r1.energy - r0.energy) <= 1e-3 * max(1.0, abs(r0.energy))
    np.testing.assert_array_equal(warm[0].y, cold[0].y)


def test_single_model_solver_and_dispatch():
    from hlmrf.inference import solve

    model = _models(5, 1)[0]
    seen = []
    res = torch_admm.solve_torch(model, callback=lambda it, r, s: seen.append((it, r, s)))
    assert res.ok and seen and seen[-1][0] == res.iterations
    assert res.solver == "torch/cpu/float64" and res.extra["lower_bound"] <= res.energy + 1e-9
    again = solve(model, solver="torch", dtype="float32")
    assert again.solver == "torch/cpu/float32" and again.y.dtype == np.float64
    np.testing.assert_allclose(again.y, res.y, atol=1e-3)


def test_iteration_limit_is_reported_per_model():
    models = _models(6, 4)
    res = torch_admm.solve_batch(models, AdmmSettings(max_iter=3, polish=False))
    assert all(r.iterations == 3 and r.status.value == "iteration_limit" for r in res if models[0].m)
    # Polishing at the limit may certify a model; then, and only then, it is CONVERGED.
    st = AdmmSettings(max_iter=3)
    for r in torch_admm.solve_batch(models, st):
        assert r.iterations == 3
        certified = r.gap <= st.gap_rel * abs(r.energy) + st.gap_abs and r.violation <= st.constraint_tol
        assert (r.status.value == "converged") == certified


def test_models_joining_later_keep_their_own_schedule():
    """With a small working set, models join as others leave; each still gets its own iteration
    limit, check and rho schedule (same answers as one by one, limit hit or not)."""
    empty = HLMRF.from_rows([], 2)
    models = _models(9, 8)
    models = models[:3] + [empty] + models[3:]
    st = AdmmSettings(max_iter=60, check_every=5, adapt_every=10)
    batched = torch_admm.solve_batch(models, st, max_copies=60)
    for m, r in zip(models, batched):
        alone = torch_admm.solve_torch(m, st)
        np.testing.assert_array_equal(r.y, alone.y)
        assert (r.iterations, r.status, r.rho) == (alone.iterations, alone.status, alone.rho)
    assert {r.status.value for r in batched} == {"converged", "iteration_limit"}


def test_models_without_rows_keep_their_start():
    empty = HLMRF.from_rows([], 2)
    res = torch_admm.solve_batch([empty, _models(7, 1)[0]], y0=[np.array([0.2, 1.5]), None])
    np.testing.assert_array_equal(res[0].y, [0.2, 1.0])
    assert res[0].ok and res[0].iterations == 0 and res[1].ok


def test_bad_arguments_are_diagnosed():
    models = _models(8, 2)
    with pytest.raises(SettingsError, match="one per model"):
        torch_admm.solve_batch(models, y0=[None])
    with pytest.raises(SettingsError, match="variables"):
        torch_admm.solve_batch(models, y0=[np.zeros(models[0].n + 1)] + [None] * (len(models) - 1))
    with pytest.raises(SettingsError, match="float64"):
        torch_admm.solve_batch(models, dtype="float16")
    with pytest.raises(SettingsError, match="compact_share"):
        torch_admm.solve_batch(models, compact_share=2.0)
    with pytest.raises(SettingsError, match="max_copies"):
        torch_admm.solve_batch(models, max_copies=0)
    with pytest.raises(SettingsError, match="variables"):
        torch_admm.solve_torch(models[0], y0=np.zeros(models[0].n + 2))


# --- optional dependency hygiene ------------------------------------------------------------------

def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_import_hlmrf_does_not_import_torch():
    out = _python("import hlmrf, hlmrf.inference, hlmrf.model.batch, sys; assert 'torch' not in sys.modules")
    assert out.returncode == 0, out.stderr


def test_missing_torch_names_the_extra():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from hlmrf.errors import MissingDependencyError\n"
            "try:\n    import hlmrf.inference.torch_admm\nexcept MissingDependencyError as e:\n"
            "    assert isinstance(e, ImportError); print(e)\nelse:\n    raise SystemExit('no error')")
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert 'pip install "hlmrf[torch]"' in out.stdout
    assert MissingDependencyError  # the class the message comes from


def test_a_chunk_of_only_empty_models_does_not_end_the_run():
    """With a tiny working set, a chunk holding only an empty model used to end the loop: the
    models after it came back unsolved (found while splitting the solver's driver loop)."""
    rng = np.random.default_rng(0)
    models = [random_model(rng, 10, 20), HLMRF.from_rows([], 3), random_model(rng, 10, 20)]
    plain = AdmmSettings(polish=False)
    alone = torch_admm.solve_batch(models, plain)
    chunked = torch_admm.solve_batch(models, plain, max_copies=1)
    for r0, r1 in zip(alone, chunked):
        assert (r1.iterations, r1.status) == (r0.iterations, r0.status)
        np.testing.assert_array_equal(r1.y, r0.y)
    assert chunked[2].status.value == "converged" and chunked[2].iterations > 0

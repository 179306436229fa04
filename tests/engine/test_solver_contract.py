"""One contract for every MAP solver: numpy ADMM (numpy and numba kernels), torch ADMM (CPU float64/float32, CUDA when
present) and cvxpy, on the same models, checked against independent references.

References: closed-form optima of hand-built models (one per term kind), cvxpy optima of seeded
random models and of the bundled examples. Every solver must return values in [0, 1], satisfy the
hard constraints within ``VIOLATION_TOL``, and never stop above the reference energy by more than
its stated relative tolerance. The float64 torch solver must also stay on the numpy solver's
values (``TORCH_VS_NUMPY``), and solving a batch must give what solving one by one gives.

Tolerances (looser on float32 and on GPU, where sums are taken in a different order):

=================  ==============  ================  ==========
solver             closed form     energy (rel)      batch vs 1-by-1
=================  ==============  ================  ==========
numpy, torch f64   1e-4            1e-3              1e-12 (CPU)
torch f32          1e-3            2e-3              1e-12 (CPU)
cuda f64 / f32     1e-4 / 2e-3     1e-3 / 3e-3       1e-4 / 1e-3
cvxpy              1e-4            1e-6              n/a
=================  ==============  ================  ==========
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from hlmrf.testing.random_models import clevr_like_model, random_model

from hlmrf.inference.admm import solve_admm  # noqa: E402
from hlmrf.inference.settings import AdmmSettings  # noqa: E402
from hlmrf.model.hlmrf import HLMRF  # noqa: E402
from hlmrf.model.terms import Kind  # noqa: E402

torch = pytest.importorskip("torch")
from hlmrf.inference.torch_admm import solve_batch, solve_torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
VIOLATION_TOL = 1e-4
TORCH_VS_NUMPY = 1e-4
HAS_CUDA = torch.cuda.is_available()
L, H, LEQ, EQ = Kind.LINEAR, Kind.HINGE, Kind.LEQ, Kind.EQ

# Tight enough that the closed-form checks test the solver, not its default stopping slack.
TIGHT64 = AdmmSettings(eps_abs=1e-7, eps_rel=1e-6, gap_rel=1e-6, max_iter=50_000)
TIGHT32 = AdmmSettings(eps_abs=1e-5, eps_rel=1e-5, gap_rel=1e-5, max_iter=20_000)


# --- models with closed-form optima: rows are (coefs, c, w, p, kind, rule), d = a.y - c ---------

def _m(rows, n):
    return HLMRF.from_rows(rows, n)


CLOSED_FORM = {
    # w y0 - w y1: y0 -> 0, y1 -> 1.
    "linear": (_m([({0: 1.0}, 0.0, 1.0, 1, L, 0), ({1: -1.0}, 0.0, 1.0, 1, L, 0)], 2),
               [0.0, 1.0], -1.0),
    # max(0, 0.7 - y0) + 0.2 y0: the hinge's slope wins until y0 = 0.7.
    "hinge": (_m([({0: -1.0}, -0.7, 1.0, 1, H, 0), ({0: 1.0}, 0.0, 0.2, 1, L, 1)], 1), [0.7], 0.14),
    # (y0 - 0.3)^2 + 3 (y0 - 0.9)^2: y0 = (0.3 + 2.7) / 4.
    "squared_linear": (_m([({0: 1.0}, 0.3, 1.0, 2, L, 0), ({0: 1.0}, 0.9, 3.0, 2, L, 1)], 1),
                       [0.75], 0.27),
    # 2 max(0, 0.8 - y0)^2 + 0.5 max(0, y0 - 0.2)^2: 4 (0.8 - y) = y - 0.2.
    "squared_hinge": (_m([({0: -1.0}, -0.8, 2.0, 2, H, 0), ({0: 1.0}, 0.2, 0.5, 2, H, 1)], 1),
                      [0.68], 0.144),
    # -y0 - 0.5 y1 subject to y0 + y1 <= 1.2: fill y0 first.
    "leq_linear": (_m([({0: -1.0}, 0.0, 1.0, 1, L, 0), ({1: -1.0}, 0.0, 0.5, 1, L, 0),
                       ({0: 1.0, 1: 1.0}, 1.2, 0.0, 1, LEQ, 1)], 2), [1.0, 0.2], -1.1),
    # (y0 - 1)^2 + (y1 - 1)^2 subject to y0 + y1 <= 1.
    "leq_squared": (_m([({0: 1.0}, 1.0, 1.0, 2, L, 0), ({1: 1.0}, 1.0, 1.0, 2, L, 0),
                        ({0: 1.0, 1: 1.0}, 1.0, 0.0, 1, LEQ, 1)], 2), [0.5, 0.5], 0.5),
    # (y0 - 0.9)^2 + (y1 - 0.5)^2 subject to y0 + y1 = 1: multiplier 0.4.
    "eq_squared": (_m([({0: 1.0}, 0.9, 1.0, 2, L, 0), ({1: 1.0}, 0.5, 1.0, 2, L, 0),
                       ({0: 1.0, 1: 1.0}, 1.0, 0.0, 1, EQ, 1)], 2), [0.7, 0.3], 0.08),
    # (y0 - 0.9)^2 + (y1 - 0.1)^2 subject to y0 + y1 = 0.6: the box stops y1 at 0.
    "eq_box": (_m([({0: 1.0}, 0.9, 1.0, 2, L, 0), ({1: 1.0}, 0.1, 1.0, 2, L, 0),
                   ({0: 1.0, 1: 1.0}, 0.6, 0.0, 1, EQ, 1)], 2), [0.6, 0.0], 0.1),
    # A PSL-like chain: 2 max(0, 1 - y0) + max(0, y0 - y1) + 0.5 y1: y0 = y1 = 1.
    "hinge_chain": (_m([({0: -1.0}, -1.0, 2.0, 1, H, 0), ({0: 1.0, 1: -1.0}, 0.0, 1.0, 1, H, 1),
                        ({1: 1.0}, 0.0, 0.5, 1, L, 2)], 2), [1.0, 1.0], 0.5),
}


def _random_models():
    rng = np.random.default_rng(20240601)
    out = {}
    for share in (0.0, 0.5, 1.0):
        out[f"random_sq{share}"] = random_model(rng, 15, 40, squared_share=share, constraints=3)
    out["random_hinge_only"] = random_model(rng, 12, 30, kinds=("hinge",), squared_share=0.0, constraints=2)
    out["random_linear_only"] = random_model(rng, 10, 25, kinds=("linear",), squared_share=0.5)
    out["clevr_like"] = clevr_like_model(rng, mentions=3, objects=6, n_pots=60)
    return out


def _example(name):
    from hlmrf.data.loader import load_facts
    from hlmrf.grounding import ground
    from hlmrf.language import parse_rules

    folder = ROOT / "examples" / name
    program = parse_rules((folder / "rules.psl").read_text(), str(folder / "rules.psl"))
    arities = {k: a for k, (_, a, _) in program.predicates().items()}
    return ground(program, load_facts(folder / "facts", arities)).normalized()


@functools.lru_cache(maxsize=None)
def all_models() -> dict:
    models = {k: v[0] for k, v in CLOSED_FORM.items()}
    models.update(_random_models())
    for name in ("smokers", "simple-acquaintances"):
        models[name] = _example(name)
    return models


MODEL_NAMES = list(CLOSED_FORM) + list(_random_models()) + ["smokers", "simple-acquaintances"]


@functools.lru_cache(maxsize=None)
def reference(name: str) -> tuple[np.ndarray | None, float]:
    """(closed-form values or None, optimum energy): closed form, else cvxpy."""
    if name in CLOSED_FORM:
        _, y, energy = CLOSED_FORM[name]
        return np.asarray(y), energy
    pytest.importorskip("cvxpy")
    from hlmrf.inference.check import solve_cvxpy

    res = solve_cvxpy(all_models()[name])
    assert res.ok, res.status
    return None, res.energy


# --- the solvers under contract -------------------------------------------------------------------

@dataclass(frozen=True)
class Solver:
    name: str
    value_tol: float  # distance to a closed-form optimum
    energy_rel: float  # how far above the reference energy (relative) it may stop
    batch_tol: float | None  # batch vs one-by-one (None: no batch path)
    needs_cuda: bool = False

    def solve(self, model):
        if self.name == "admm":
            return solve_admm(model, TIGHT64)
        if self.name == "admm-numba":  # the fused compiled iteration (hlmrf.inference.fused)
            pytest.importorskip("numba", reason="the numba kernel needs numba (pip install 'hlmrf[fast]')")
            return solve_admm(model, replace(TIGHT64, kernel="numba"))
        if self.name == "cvxpy":
            pytest.importorskip("cvxpy")
            from hlmrf.inference.check import solve_cvxpy

            return solve_cvxpy(model)
        _, device, dtype = self.name.split("-")
        return solve_torch(model, TIGHT64 if dtype == "float64" else TIGHT32, device=device, dtype=dtype)


SOLVERS = [
    Solver("admm", 1e-4, 1e-3, None),
    Solver("torch-cpu-float64", 1e-4, 1e-3, 1e-12),
    Solver("torch-cpu-float32", 1e-3, 2e-3, 1e-12),
    Solver("torch-cuda-float64", 1e-4, 1e-3, 1e-4, needs_cuda=True),
    Solver("torch-cuda-float32", 2e-3, 3e-3, 1e-3, needs_cuda=True),
    Solver("cvxpy", 1e-4, 1e-6, None),
    Solver("admm-numba", 1e-4, 1e-3, None),  # last: the tests above index SOLVERS by position
]


def _params(solvers):
    return [pytest.param(s, id=s.name, marks=[pytest.mark.cuda] if s.needs_cuda else [])
            for s in solvers]


def _skip_without_cuda(solver):
    if solver.needs_cuda and not HAS_CUDA:
        pytest.skip("needs a CUDA device")


@functools.lru_cache(maxsize=None)
def _solve(solver: Solver, name: str):
    return solver.solve(all_models()[name])


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("solver", _params(SOLVERS))
def test_solver_meets_the_contract(solver, name):
    _skip_without_cuda(solver)
    model = all_models()[name]
    y_ref, e_ref = reference(name)
    res = _solve(solver, name)
    assert res.ok, f"{solver.name} on {name}: {res.status} after {res.iterations} iterations"
    assert res.y.shape == (model.n,) and res.y.dtype == np.float64
    assert np.all(res.y >= 0.0) and np.all(res.y <= 1.0)
    assert res.violation <= VIOLATION_TOL
    assert res.energy == pytest.approx(model.energy(res.y), rel=1e-9, abs=1e-9)
    assert res.energy <= e_ref + solver.energy_rel * abs(e_ref) + 1e-6, (res.energy, e_ref)
    if y_ref is not None:
        np.testing.assert_allclose(res.y, y_ref, atol=solver.value_tol)
        assert res.energy == pytest.approx(e_ref, abs=max(10 * solver.value_tol, 1e-6))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_torch_float64_stays_on_the_numpy_solvers_values(name):
    numpy_res = _solve(SOLVERS[0], name)
    torch_res = _solve(SOLVERS[1], name)
    np.testing.assert_allclose(torch_res.y, numpy_res.y, atol=TORCH_VS_NUMPY, rtol=0)
    assert torch_res.status == numpy_res.status


@pytest.mark.parametrize("solver", _params([s for s in SOLVERS if s.batch_tol is not None]))
def test_batch_equals_one_by_one(solver):
    _skip_without_cuda(solver)
    _, device, dtype = solver.name.split("-")
    st = TIGHT64 if dtype == "float64" else TIGHT32
    models = [all_models()[n] for n in MODEL_NAMES]
    batched = solve_batch(models, st, device=device, dtype=dtype)
    for name, model, res in zip(MODEL_NAMES, models, batched):
        alone = _solve(solver, name)
        np.testing.assert_allclose(res.y, alone.y, atol=solver.batch_tol, rtol=0, err_msg=name)
        assert res.status == alone.status
        if device == "cpu":
            assert res.iterations == alone.iterations, name
        assert res.extra["batch_size"] == len(models)


def test_default_settings_stop_within_the_energy_tolerance():
    """At the default (reference engine's) tolerances, plus the certified gap, every solver still
    stops within 1e-3 of the optimum on the random models and examples."""
    names = [n for n in MODEL_NAMES if n not in CLOSED_FORM]
    models = [all_models()[n] for n in names]
    for res_np, res_t, name in zip([solve_admm(m) for m in models], solve_batch(models), names):
        _, e_ref = reference(name)
        for res in (res_np, res_t):
            assert res.ok and res.violation <= VIOLATION_TOL, (name, res.status)
            assert res.energy <= e_ref + 1e-3 * abs(e_ref) + 1e-6, (name, res.energy, e_ref)

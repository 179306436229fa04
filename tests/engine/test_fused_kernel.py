"""The fused numba iteration (``AdmmSettings(kernel="numba")``) against the numpy one it replaces.

The numpy loop body of :func:`hlmrf.inference.admm.solve_admm` is the reference: both kernels run
the same iterations from the same start, so their iterates (values ``y``, scaled duals ``u``, rho)
must agree to rounding after any number of iterations (only summation orders differ), and full
solves must stop at the same iteration with the same status.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from dataclasses import replace

import numpy as np
import pytest

from hlmrf.errors import MissingDependencyError, SettingsError
from hlmrf.inference import admm
from hlmrf.inference.admm import solve_admm
from hlmrf.inference.settings import AdmmSettings
from hlmrf.model.hlmrf import HLMRF
from hlmrf.model.terms import Kind
from hlmrf.testing.psl_corpus import NAMES, corpus_model
from hlmrf.testing.random_models import random_model

numba = pytest.importorskip("numba", reason="the fused kernel needs numba (pip install 'hlmrf[fast]')")

NO_STOP = AdmmSettings(eps_abs=0.0, eps_rel=0.0, polish=False)  # run exactly max_iter iterations


def _random(seed: int, constraints: int = 0, kinds=("linear", "hinge"), squared_share: float = 0.5):
    return random_model(np.random.default_rng(seed), 40, 120, kinds=kinds, constraints=constraints,
                        squared_share=squared_share)


def _arities(empty_row: bool):
    """Rows of 1 to 5 copies in a random order (the kernel writes out 1, 2 and 3 and loops over
    the rest), hinges and squared hinges, a few equality rows, and optionally a row with no copies
    (a constant term), which the completing pass's row tracking must step over."""
    rng = np.random.default_rng(11)
    n, rows = 30, []
    for r in range(150):
        k = int(rng.integers(1, 6))
        cols = rng.choice(n, size=k, replace=False)
        coefs = {int(j): float(rng.choice([-1.0, 1.0, 0.5, -2.0])) for j in cols}
        kind = Kind.EQ if r % 25 == 0 else Kind.HINGE
        rows.append((coefs, float(rng.uniform(-0.5, 1.0)), float(rng.uniform(0.1, 2.0)),
                     int(rng.choice([1, 2])), int(kind), 0))
        if empty_row and r in (0, 70, 149):
            rows.append(({}, -0.3, 1.0, 1, int(Kind.HINGE), 0))
    return HLMRF.from_rows(rows, n)


def _heavy_last_row():
    """Three rows, the last with 98 copies: the chunk bounds by work are [0, 3, 3, 3], so two
    chunks are empty and start at m (the completing pass must not read a row past the end)."""
    rows = [({0: 1.0}, 0.5, 1.0, 1, int(Kind.HINGE), 0), ({1: -1.0}, 0.2, 1.0, 1, int(Kind.HINGE), 0),
            ({j: (1.0 if j % 2 else -1.0) for j in range(2, 100)}, 0.3, 1.0, 2, int(Kind.HINGE), 0)]
    return HLMRF.from_rows(rows, 100)


MODELS = {
    "heavy-last-row": _heavy_last_row,
    "arities-1-to-5": lambda: _arities(False),
    "arities-and-empty-rows": lambda: _arities(True),
    "hinge-linear": lambda: _random(0),
    "hinge-only-linear-p": lambda: _random(1, kinds=("hinge",), squared_share=0.0),
    "squared": lambda: _random(2, squared_share=1.0),
    "constrained": lambda: _random(3, constraints=6),
    **{f"corpus-{name}": (lambda name=name: corpus_model(name)) for name in NAMES[:6]},
}


def _pair(model, settings):
    a = solve_admm(model, replace(settings, kernel="numpy"))
    b = solve_admm(model, replace(settings, kernel="numba"))
    return a, b


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("alpha", [1.0, 1.6])
def test_iterates_equal_the_numpy_kernels(name, alpha):
    model = MODELS[name]()
    for iters in (1, 7, 60):  # 7: mid-way between checks, so the pending dual update is completed
        a, b = _pair(model, replace(NO_STOP, max_iter=iters, alpha=alpha))
        assert a.iterations == b.iterations == iters
        np.testing.assert_allclose(b.y, a.y, rtol=0, atol=1e-12, err_msg=f"{name} after {iters}")
        np.testing.assert_allclose(b.extra["state"]["u"], a.extra["state"]["u"], rtol=0, atol=1e-11)
        assert b.rho == pytest.approx(a.rho, rel=1e-12)
        assert b.primal_residual == pytest.approx(a.primal_residual, rel=1e-9, abs=1e-12)
        assert b.dual_residual == pytest.approx(a.dual_residual, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_full_solves_stop_alike(name):
    model = MODELS[name]()
    a, b = _pair(model, AdmmSettings())
    assert (b.status, b.iterations) == (a.status, a.iterations)
    np.testing.assert_allclose(b.y, a.y, rtol=0, atol=1e-9)
    assert b.energy == pytest.approx(a.energy, rel=1e-9, abs=1e-12)


def test_warm_state_is_used_alike():
    model = _random(4, constraints=3)
    first = solve_admm(model, replace(NO_STOP, max_iter=30))
    warm = dict(y0=first.y, state=first.extra["state"])
    a = solve_admm(model, replace(NO_STOP, max_iter=12, kernel="numpy"), **{k: (v if k == "y0" else
                   {"u": v["u"].copy(), "rho": v["rho"]}) for k, v in warm.items()})
    b = solve_admm(model, replace(NO_STOP, max_iter=12, kernel="numba"), **{k: (v if k == "y0" else
                   {"u": v["u"].copy(), "rho": v["rho"]}) for k, v in warm.items()})
    np.testing.assert_allclose(b.y, a.y, rtol=0, atol=1e-12)


def test_kernel_setting_is_validated():
    with pytest.raises(SettingsError, match="kernel"):
        AdmmSettings(kernel="cuda")
    assert AdmmSettings.from_mapping({"kernel": "numba"}).kernel == "numba"


def test_threads_setting_is_validated_and_leaves_numba_as_it_was():
    with pytest.raises(SettingsError, match="threads"):
        AdmmSettings(threads=-1)
    assert AdmmSettings.from_options(["threads=2"]).threads == 2
    model = _random(3, constraints=3)
    before = numba.get_num_threads()
    one = solve_admm(model, AdmmSettings(kernel="numba", threads=1))
    assert numba.get_num_threads() == before  # restored after the solve
    every = solve_admm(model, AdmmSettings(kernel="numba"))
    assert one.iterations == every.iterations and one.status == every.status
    np.testing.assert_array_equal(one.y, every.y)  # fixed chunks: the same bits on any thread count


def test_missing_numba_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # what an environment without numba imports
    with pytest.raises(MissingDependencyError, match=r"hlmrf\[fast\]"):
        solve_admm(_random(0), AdmmSettings(kernel="numba"))
    monkeypatch.setattr(admm, "FUSED_MIN_COPIES", 0)  # auto would choose numba: falls back to numpy
    assert solve_admm(_random(0), AdmmSettings(kernel="auto", max_iter=3)).iterations == 3


def test_auto_chooses_by_size(monkeypatch):
    monkeypatch.setattr(admm, "FUSED_MIN_COPIES", 0)
    assert solve_admm(_random(0), AdmmSettings(kernel="auto", max_iter=3)).extra["kernel"] == "FusedKernel"
    monkeypatch.setattr(admm, "FUSED_MIN_COPIES", 10**9)
    assert solve_admm(_random(0), AdmmSettings(kernel="auto", max_iter=3)).extra["kernel"] == "_NumpyKernel"


def test_import_hlmrf_does_not_import_numba():
    code = "import sys, hlmrf, hlmrf.inference.admm; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_certificate_pass_equals_the_numpy_certificate(name):
    """Energy, violation and the Lagrangian bound (raw and projected multipliers) from the fused
    certificate pass against the numpy kernel's (terms.dual_bound, terms.project_dual)."""
    from hlmrf.inference.fused import FusedKernel

    model = MODELS[name]()
    rng = np.random.default_rng(7)
    z = rng.uniform(0, 1, model.n)
    t = rng.normal(0, 1.5, model.m)
    ref, fused = admm._NumpyKernel(model, 1.0), FusedKernel(model, 1.0)
    for project in (False, True):
        want = ref.certificate(z, t, 0.7, project=project)
        got = fused.certificate(z, t, 0.7, project=project)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    e, v, b = fused.certificate(z)
    assert (e, v) == pytest.approx(ref.certificate(z)[:2], rel=1e-12, abs=1e-12) and np.isnan(b)
    assert e == pytest.approx(model.energy(z), rel=1e-12, abs=1e-12)
    assert v == pytest.approx(model.violation(z), rel=1e-12, abs=1e-12)


def test_fused_kernel_reads_the_kind_table(monkeypatch):
    """terms.TABLE patched (linear hinge read as linear): the fused kernel's energy and prox follow."""
    from hlmrf.inference.fused import FusedKernel
    from hlmrf.model.terms import TABLE, Kind

    model = MODELS["hinge-linear"]()
    h1 = (model.kind == Kind.HINGE) & (model.p == 1)
    assert h1.any()
    as_linear = model.__class__(model.A, model.c, model.w, model.p,
                                np.where(h1, Kind.LINEAR, model.kind).astype(np.int8), model.rule, model.index)
    z = np.random.default_rng(3).uniform(0, 1, model.n)
    monkeypatch.setitem(TABLE, (Kind.HINGE, 1), TABLE[Kind.LINEAR, 1])
    assert FusedKernel(model, 1.0).certificate(z)[0] == pytest.approx(as_linear.energy(z), rel=1e-12)
    settings = replace(NO_STOP, max_iter=9, kernel="numba")
    np.testing.assert_allclose(solve_admm(model, settings).y, solve_admm(as_linear, settings).y, rtol=0, atol=1e-14)


def test_int64_indices_give_the_same_iterates():
    """Models past 2^31 copies carry int64 CSR indices; the kernel views them as unsigned, as it
    does int32 ones, and must iterate alike (compiled once per index type)."""
    from dataclasses import replace as dc_replace

    model = _arities(True)
    A = model.A.copy()
    A.indices, A.indptr = A.indices.astype(np.int64), A.indptr.astype(np.int64)
    wide = dc_replace(model, A=A)
    assert wide.A.indices.dtype == np.int64
    a = solve_admm(model, replace(NO_STOP, max_iter=7, kernel="numba"))
    b = solve_admm(wide, replace(NO_STOP, max_iter=7, kernel="numba"))
    np.testing.assert_array_equal(b.y, a.y)
    np.testing.assert_array_equal(b.extra["state"]["u"], a.extra["state"]["u"])


def test_no_pass_reads_past_the_arrays(tmp_path):
    """The passes under numba's bounds checking (a fresh cache, so they are compiled with it), on
    models with empty chunks, rows without copies and every arity: an index past an array is an
    IndexError there, where the normal build would read whatever lies beyond."""
    code = (
        "import importlib.util\n"
        "spec = importlib.util.spec_from_file_location('fused_tests', %r)\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "MODELS = mod.MODELS\n"
        "from hlmrf.inference.admm import solve_admm\n"
        "from hlmrf.inference.settings import AdmmSettings\n"
        "for name in ('heavy-last-row', 'arities-and-empty-rows', 'constrained'):\n"
        "    solve_admm(MODELS[name](), AdmmSettings(kernel='numba', max_iter=40))\n"
        "print('ok')\n" % str(Path(__file__)))
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]



@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_linking_comes_first_and_hands_llvm_s_pages_back():
    """In a fresh process: constructing the kernel links every pass for the model's types (a
    whole solve with hard rows adds no signature: the link's argument
    types were the real calls') and leaves little of LLVM's code resident; the solve after it
    equals the numpy kernel's."""
    code = (
        "import numpy as np\n"
        "from dataclasses import replace\n"
        "from hlmrf.inference import admm, fused\n"
        "from hlmrf.inference.settings import AdmmSettings\n"
        "from hlmrf.testing.random_models import random_model\n"
        "def llvm_kib():\n"
        "    tot, hit = 0, False\n"
        "    for line in open('/proc/self/smaps'):\n"
        "        h = line.split()\n"
        "        if len(h) >= 5 and '-' in h[0] and not h[0].endswith(':'):\n"
        "            hit = 'libllvmlite' in line\n"
        "        elif hit and h[0] == 'Rss:':\n"
        "            tot += int(h[1])\n"
        "    return tot\n"
        "model = random_model(np.random.default_rng(5), 40, 120, constraints=4)\n"
        "fused.FusedKernel(model, 1.5)\n"
        "after_link = llvm_kib()\n"
        "passes = (fused._term_pass, fused._var_pass, fused._finish_pass, fused._certificate_pass)\n"
        "linked = [len(p.signatures) for p in passes]\n"
        "st = AdmmSettings(kernel='numba', max_iter=300, polish=False)\n"
        "a = admm.solve_admm(model, st)\n"
        "b = admm.solve_admm(model, replace(st, kernel='numpy'))\n"
        "assert [len(p.signatures) for p in passes] == linked == [1, 1, 1, 1], linked\n"
        "np.testing.assert_allclose(a.y, b.y, atol=1e-9)\n"
        "print('ok', after_link)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    word, kib = out.stdout.split()
    assert word == "ok" and int(kib) < 16 * 1024  # some 65 MiB without the release

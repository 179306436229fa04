"""Distributed consensus ADMM on 2 local processes (gloo) equals the single-process solve.

The reference is :func:`hlmrf.inference.admm.solve_admm` in this process; two worker processes
(``worker.py``) solve the same models with the same settings, each iterating on half the rows and
all-reducing the numerators, norms and certificate sums. Values, the workers' concatenated duals,
iterations, status, energy and the certified bound must agree to rounding (sums are taken in a
different order), with polishing on and off and for both kernels.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hlmrf.distributed import row_ranges
from hlmrf.inference.admm import solve_admm

from .cases import CASES, MODELS, SETTINGS

pytest.importorskip("torch", reason="the distributed solver needs torch")

HERE = Path(__file__).parent
CASE_IDS = [f"{m}|{s}" for m, s in CASES]


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    if "numba" in "".join(SETTINGS) and __import__("importlib").util.find_spec("numba") is None:
        pytest.skip("the cases use the numba kernel too (pip install 'hlmrf[fast]')")
    tmp = tmp_path_factory.mktemp("dist")
    init = tmp / "init"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(HERE / "worker.py"), str(r), "2", str(init),
                               str(tmp / f"rank{r}.npz")], env=env, stderr=subprocess.PIPE, text=True)
             for r in range(2)]
    errs = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("the distributed workers did not finish in 240 s")
        errs.append(err)
    for p, err in zip(procs, errs):
        assert p.returncode == 0, err[-3000:]
    return [dict(np.load(tmp / f"rank{r}.npz")) for r in range(2)]


@pytest.mark.parametrize("case", CASE_IDS)
def test_two_workers_equal_one_process(two_workers, case):
    name, key = case.split("|")
    model, st = MODELS[name](), SETTINGS[key]
    ref = solve_admm(model, st)
    r0, r1 = two_workers
    for w in (r0, r1):  # every worker returns the whole answer
        assert str(w[case + "|status"]) == ref.status.value
        it, energy, bound, violation, r_norm, s_norm, rho, polished = w[case + "|info"]
        assert int(it) == ref.iterations
        np.testing.assert_allclose(w[case + "|y"], ref.y, rtol=0, atol=1e-9)
        assert energy == pytest.approx(ref.energy, rel=1e-9, abs=1e-12)
        assert bound == pytest.approx(ref.lower_bound, rel=1e-9, abs=1e-10)
        assert violation == pytest.approx(ref.violation, abs=1e-12)
        assert r_norm == pytest.approx(ref.primal_residual, rel=1e-7, abs=1e-12)
        assert s_norm == pytest.approx(ref.dual_residual, rel=1e-7, abs=1e-12)
        assert rho == pytest.approx(ref.rho, rel=1e-12)
        assert bool(polished) == ref.extra["polished"]
    # the reduced numerators are the same bits on both workers, so is every iterate
    np.testing.assert_array_equal(r0[case + "|y"], r1[case + "|y"])
    # each worker's duals are its rows' copies, in order: together the single solve's
    np.testing.assert_allclose(np.r_[r0[case + "|u"], r1[case + "|u"]], ref.extra["state"]["u"],
                               rtol=0, atol=1e-9)


def test_the_workers_reduce_numerators_not_the_model(two_workers):
    calls, floats = two_workers[0]["calls"]
    assert calls > 0
    # per reduction, on average, about one float per variable (numerators) or a few norms
    biggest_n = max(MODELS[m]().n for m in MODELS)
    assert floats / calls < 2 * biggest_n


def test_row_ranges_balance_copies_and_cover_the_rows():
    model = MODELS["corpus-citeseer"]()
    for parts in (1, 2, 3, 7):
        ranges = row_ranges(model.A.indptr, parts)
        assert [r.start for r in ranges[1:]] == [r.stop for r in ranges[:-1]]
        assert ranges[0].start == 0 and ranges[-1].stop == model.m
        work = [int(model.A.indptr[r.stop] - model.A.indptr[r.start]) + r.stop - r.start for r in ranges]
        assert max(work) - min(work) <= 2 * int(np.diff(model.A.indptr).max()) + 2
    one_row = row_ranges(np.array([0, 2]), 3)  # fewer rows than parts: some parts are empty
    assert sum(r.stop - r.start for r in one_row) == 1 and one_row[-1].stop == 1
    with pytest.raises(ValueError):
        row_ranges(model.A.indptr, 0)


def test_import_hlmrf_and_its_partitioning_do_not_import_torch():
    code = ("import sys, hlmrf, hlmrf.distributed, hlmrf.inference.admm; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)

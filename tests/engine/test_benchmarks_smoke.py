"""Smoke tests of the benchmark scripts (issue 2): the generator grounds, the random models are
what their docstring says, and both scripts run end to end at tiny sizes. The reference PSL run
needs pslpython and a JDK and is marked slow."""
from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"


def _load(module_name: str, path: Path, register: bool = False):
    spec = importlib.util.spec_from_file_location(module_name, path)
    mod = importlib.util.module_from_spec(spec)
    if register:  # before running it: its dataclasses look their module up there
        sys.modules[module_name] = mod
    spec.loader.exec_module(mod)
    return mod


def _module(name: str):
    # A benchmark run as a script finds its siblings (``_common``, ``gen_acquaintances``) on
    # sys.path by itself; loaded from a file here, it finds them registered in sys.modules.
    for sibling in ("_common", "gen_acquaintances"):
        if sibling not in sys.modules:
            _load(sibling, BENCH / f"{sibling}.py", register=True)
    return _load(f"bench_{name}", BENCH / f"{name}.py")


def test_generator_rules_match_the_bundled_example():
    gen = _module("gen_acquaintances")
    assert gen.RULES == (ROOT / "examples/simple-acquaintances/rules.psl").read_text()


def test_generator_is_deterministic_and_grounds(tmp_path):
    from hlmrf.api import load_facts, load_rules
    from hlmrf.grounding import ground

    gen = _module("gen_acquaintances")
    a, b = gen.generate(10, seed=3), gen.generate(10, seed=3)
    assert a == b and a != gen.generate(10, seed=4)
    pairs = len(a["knows_obs.txt"]) + len(a["knows_targets.txt"])
    assert pairs == 10 * 9 and len(a["knows_truth.txt"]) == len(a["knows_targets.txt"])
    out = gen.write_model(tmp_path / "acq10", 10, seed=3)
    program = load_rules(out / "rules.psl")
    model = ground(program, load_facts(out / "facts", program))
    assert model.n == len(a["knows_targets.txt"]) and model.m > model.n
    assert len(model.potentials_per_rule()) == 6


def test_random_models_have_2_to_4_distinct_variables_per_potential():
    bench = _module("bench_random")
    model = bench.random_hlmrf(400, squared=False, seed=1)
    counts = np.diff(model.A.indptr)
    assert model.m == 400 and model.n == 200
    assert counts.min() >= 2 and counts.max() <= 4
    for i in range(model.m):  # distinct columns inside each row
        cols = model.A.indices[model.A.indptr[i]:model.A.indptr[i + 1]]
        assert len(set(cols.tolist())) == len(cols)
    assert np.isclose(model.w.max(), 1.0)
    again = bench.random_hlmrf(400, squared=False, seed=1)
    assert np.array_equal(again.c, model.c)


@pytest.mark.parametrize("squared", [False, True])
def test_random_model_admm_matches_exact_solver(squared):
    pytest.importorskip("clarabel" if squared else "scipy")
    from hlmrf.inference.admm import solve_admm

    bench = _module("bench_random")
    model = bench.random_hlmrf(300, squared=squared, seed=2)
    y_ref, _ = (bench.solve_clarabel if squared else bench.solve_highs)(model, 60.0)
    e_ref = model.energy(y_ref)
    assert e_ref > 0  # the generator's models are frustrated, not trivially satisfiable
    res = solve_admm(model)
    assert res.energy >= e_ref - 1e-6 * e_ref
    assert (res.energy - e_ref) / e_ref < 2e-3


def test_bench_random_runs(capsys, tmp_path):
    bench = _module("bench_random")
    bench.main(["--sizes", "300", "--no-reference", "--workdir", str(tmp_path),
                "--variant", "plain:alpha=1,adaptive_rho=false"])
    out = capsys.readouterr().out
    assert "| 300 | 150 | linear | default |" in out and "| plain |" in out


def test_reference_log_parser():
    bench = _module("bench_acquaintances")
    log = """\
5594 [main] INFO  org.linqs.psl.runtime.Runtime  - PSL Runtime Version 2.4.0-aad67da-dirty
5762 [main] DEBUG org.linqs.psl.runtime.Runtime  - Data loading start
5996 [main] DEBUG org.linqs.psl.runtime.Runtime  - Data loading complete
7486 [main] INFO  org.linqs.psl.application.inference.InferenceApplication  - Grounding out model.
8320 [main] INFO  org.linqs.psl.application.inference.InferenceApplication  - Grounding complete.
8320 [main] DEBUG org.linqs.psl.application.inference.InferenceApplication  - Generated 4532 terms.
8321 [main] INFO  org.linqs.psl.application.inference.InferenceApplication  - Beginning inference.
8875 [main] INFO  org.linqs.psl.reasoner.Reasoner  - Final Objective: 343.92224, Violated Constraints: 0, Total Optimization Time: 546, Total Number of Iterations: 101
8875 [main] INFO  org.linqs.psl.application.inference.InferenceApplication  - Inference complete.
"""
    info = bench.parse_reference_log(log)
    assert info["ground_rules"] == 4532 and info["iterations"] == 101
    assert info["ground_s"] == pytest.approx(0.834) and info["infer_s"] == pytest.approx(0.554)
    assert info["load_s"] == pytest.approx(0.234) and info["objective"] == pytest.approx(343.92224)


def test_bench_acquaintances_runs_hlmrf(capsys, tmp_path):
    bench = _module("bench_acquaintances")
    bench.main(["--sizes", "10", "--no-reference", "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "Reference not run: disabled by --no-reference" in out
    assert "\n| 10 |" in out


@pytest.mark.slow
def test_bench_acquaintances_against_reference(capsys, tmp_path):
    pytest.importorskip("pslpython")
    if shutil.which("java") is None:
        pytest.skip("no JDK")
    bench = _module("bench_acquaintances")
    bench.main(["--sizes", "10", "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| 10 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == cells[2]  # the same number of ground rules as the reference
    assert abs(float(cells[5])) < 1e-2  # energies within 1% under the same objective


def test_bench_scale_runs_both_backends(capsys, tmp_path):
    pytest.importorskip("duckdb")
    bench = _module("bench_scale")
    bench.main(["--sizes", "10", "--workdir", str(tmp_path), "--memory-limit", "200MB"])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| 10 |")]
    assert [r.split("|")[2].strip() for r in rows] == ["numpy", "duckdb"]
    for r in rows:
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert cells[11] == "0" and "converged" in cells[6]  # exit status 0, certified
    assert rows[0].split("|")[3] == rows[1].split("|")[3]  # the same number of ground rules


def test_bench_scale_ground_only(capsys, tmp_path):
    pytest.importorskip("duckdb")
    bench = _module("bench_scale")
    bench.main(["--sizes", "10", "--workdir", str(tmp_path), "--ground-only", "--memory-limit", "200MB"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 10 |")]
    assert len(rows) == 2 and len({r.split("|")[3] for r in rows}) == 1  # same ground rules
    assert all(r.split("|")[9].strip() == "0" for r in rows)  # exit status 0

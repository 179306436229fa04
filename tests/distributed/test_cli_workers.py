"""``hlmrf-infer --workers 2`` (local worker processes) writes what the single-process run writes.

Both runs solve the bundled simple-acquaintances example; the reference is the one-process run of
the same command (its values match the reference engine's, tests/engine/test_cli_infer.py).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="--workers needs torch")

EXAMPLE = Path(__file__).parents[2] / "examples" / "simple-acquaintances"


def _infer(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hlmrf.cli.infer", str(EXAMPLE / "rules.psl"),
                           str(EXAMPLE / "facts"), *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def _values(folder: Path) -> tuple[list, np.ndarray]:
    rows = [line.split("\t") for line in (folder / "KNOWS.txt").read_text().splitlines()]
    return [r[:2] for r in rows], np.array([float(r[2]) for r in rows])


def test_two_workers_write_the_single_process_answer(tmp_path):
    one, two = _infer("-o", str(tmp_path / "one")), _infer("-o", str(tmp_path / "two"), "--workers", "2")
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    keys1, v1 = _values(tmp_path / "one")
    keys2, v2 = _values(tmp_path / "two")
    assert keys1 == keys2
    np.testing.assert_allclose(v2, v1, rtol=0, atol=1e-9)
    assert two.stdout.count("wrote 1 file(s)") == 1  # worker 0 alone prints and writes
    assert "on 2 workers" in two.stdout
    lines = lambda out: [ln for ln in out.splitlines() if "accuracy" in ln or "iterations" in ln]  # noqa: E731
    assert [ln.split(" in ")[0] for ln in lines(two.stdout)] == \
        [ln.replace("admm ", "admm on 2 workers ").split(" in ")[0] for ln in lines(one.stdout)]


def test_split_workers_write_the_single_process_answer(tmp_path):
    # each worker grounds half of the rules' groundings; the example's hard symmetry constraint is
    # met by the projection onto the hard rows gathered from both
    one = _infer("-o", str(tmp_path / "one"))
    split = _infer("-o", str(tmp_path / "split"), "--workers", "2", "--split-grounding")
    assert one.returncode == 0 and split.returncode == 0, split.stderr
    keys1, v1 = _values(tmp_path / "one")
    keys2, v2 = _values(tmp_path / "split")
    assert keys1 == keys2
    np.testing.assert_allclose(v2, v1, rtol=0, atol=1e-6)
    assert "ground rules (split over 2 workers)" in split.stdout
    # the per-rule counts and energies are the whole model's (summed over the shares)
    rules = lambda out: [ln.split()[:4] + [f"{float(ln.split()[5]):.3f}"] for ln in out.splitlines()  # noqa: E731
                         if ln.lstrip().startswith("rule ")]
    assert rules(split.stdout) == rules(one.stdout) and len(rules(one.stdout)) == 6
    total = lambda out: next(ln for ln in out.splitlines() if ln.startswith("grounding:")).split()[1]  # noqa: E731
    assert total(split.stdout) == total(one.stdout)


def test_split_workers_with_duckdb_write_the_single_process_answer(tmp_path):
    pytest.importorskip("duckdb", reason="--backend duckdb needs duckdb (pip install 'hlmrf[duckdb]')")
    one = _infer("-o", str(tmp_path / "one"))
    split = _infer("-o", str(tmp_path / "split"), "--workers", "2", "--split-grounding", "--backend", "duckdb",
                   "--duckdb-threads", "1")
    assert split.returncode == 0, split.stderr
    np.testing.assert_allclose(_values(tmp_path / "split")[1], _values(tmp_path / "one")[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("args, message", [
    (["--split-grounding"], "--split-grounding shares the model among several workers"),
    (["--workers", "2", "--split-grounding", "--ground-rules", "g.txt"], "drop one of the two"),
    (["--workers", "2", "--split-grounding", "--check"], "drop one of the two"),
    (["--workers", "2", "--solver", "cvxpy"], "--solver cvxpy does not run on several workers"),
    (["--workers", "2", "--backend", "duckdb", "--database", "g.db"], "cannot share one file"),
    (["--workers", "0"], "expected a number of workers >= 1"),
    (["--workers", "two"], "expected a number of workers >= 1"),
])
def test_bad_worker_options_write_nothing(tmp_path, args, message):
    res = _infer("-o", str(tmp_path / "out"), *args, cwd=tmp_path)
    assert res.returncode == 2
    assert message in res.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "g.db").exists()


def test_a_bad_input_is_reported_once(tmp_path):
    res = subprocess.run([sys.executable, "-m", "hlmrf.cli.infer", str(EXAMPLE / "rules.psl"),
                          str(tmp_path / "missing"), "-o", str(tmp_path / "out"), "--workers", "2"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.count("is neither a facts directory nor a .data file") == 1
    assert not (tmp_path / "out").exists()


def test_split_workers_report_infeasible_hard_constraints_as_one_process_does(tmp_path):
    """The conflicting hard rows of an atom land on different workers; each worker checks the
    gathered hard rows, so all report the same clean error (exit 3), never a traceback. ADMM stops
    at its infeasibility check (iteration 1,000; admm.INFEASIBILITY_CHECK_AFTER), on the gathered
    hard rows too: before it, the split run took 27 s for all 25,000 iterations."""
    facts = tmp_path / "facts"
    facts.mkdir()
    (tmp_path / "rules.psl").write_text("Friends(A, B) -> Knows(A, B) .\nLived(A, B) -> !Knows(A, B) .\n"
                                        "1: !Knows(A, B) ^2\n")
    (facts / "friends_obs.txt").write_text("a\tb\nc\td\ne\tf\n")
    (facts / "lived_obs.txt").write_text("e\tf\nc\td\na\tb\n")
    (facts / "knows_targets.txt").write_text("a\tb\nc\td\ne\tf\n")
    run = lambda *a: subprocess.run([sys.executable, "-m", "hlmrf.cli.infer", str(tmp_path / "rules.psl"),  # noqa: E731
                                     str(facts), "-q", *a], capture_output=True, text=True, timeout=120)
    one = run("-o", str(tmp_path / "one"))
    split = run("-o", str(tmp_path / "split"), "--workers", "2", "--split-grounding")
    assert one.returncode == split.returncode == 3, split.stderr
    for res in (one, split):
        assert "the hard constraints cannot all hold at once" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "one").exists() and not (tmp_path / "split").exists()

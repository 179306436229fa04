"""hlmrf-infer end to end: outputs, summary, metrics, and bad input giving one-line causes."""
import subprocess
import sys

import pytest

from hlmrf.cli.infer import main


def test_acquaintances_end_to_end(examples, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main([str(examples / "simple-acquaintances" / "rules.psl"),
               str(examples / "simple-acquaintances" / "facts"), "--output", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "grounding: 4,532 ground rules" in text
    assert "converged" in text
    assert "Knows: n=118 accuracy 0.915254  f1 0.933333" in text and "auroc 0.982456" in text
    lines = (out / "KNOWS.txt").read_text().splitlines()
    assert len(lines) == 118
    expected = {tuple(l.split("\t")[:2]): float(l.split("\t")[2]) for l in
                (examples / "simple-acquaintances" / "expected" / "KNOWS.txt").read_text().splitlines()}
    for line in lines:
        a, b, v = line.split("\t")
        assert abs(float(v) - expected[(a, b)]) < 0.01
    assert sorted(p.name for p in out.iterdir()) == [".hlmrf-manifest", "KNOWS.txt"]  # no leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "out"]


def test_check_and_ground_rules(examples, tmp_path, capsys):
    pytest.importorskip("cvxpy")
    gr = tmp_path / "ground.txt"
    rc = main([str(examples / "smokers" / "rules.psl"), str(examples / "smokers" / "facts"),
               "-o", str(tmp_path / "o"), "--check", "--ground-rules", str(gr)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "relative energy gap" in text and "largest value difference" in text
    assert len(gr.read_text().splitlines()) == 21
    assert {p.name for p in (tmp_path / "o").iterdir()} == {"CANCER.txt", "SMOKES.txt", ".hlmrf-manifest"}


def test_settings_option_and_unknown_option(examples, tmp_path, capsys):
    rules, facts = str(examples / "smokers" / "rules.psl"), str(examples / "smokers" / "facts")
    assert main([rules, facts, "-o", str(tmp_path / "a"), "-D", "max_iter=3", "-q"]) == 0
    assert capsys.readouterr().out == ""
    assert main([rules, facts, "-o", str(tmp_path / "b"), "-D", "rhoo=2"]) == 2
    err = capsys.readouterr().err
    assert "unknown ADMM option(s) rhoo" in err and "valid ADMM options are" in err
    assert not (tmp_path / "b").exists()


def test_syntax_error_exit_code_and_no_output(tmp_path, capsys, examples):
    rules = tmp_path / "bad.psl"
    rules.write_text("1: Smokes(X) -> Cancer(X) ^2\n0.5: Smokes(X) & -> Cancer(X)\n")
    out = tmp_path / "out"
    assert main([str(rules), str(examples / "smokers" / "facts"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{rules}:2:18: expected an atom" in err and "^^" in err
    assert not out.exists()


def test_bad_fact_value_names_file_and_line(tmp_path, capsys, examples):
    facts = tmp_path / "facts"
    facts.mkdir()
    for f in (examples / "smokers" / "facts").iterdir():
        (facts / f.name).write_text(f.read_text())
    (facts / "smokes_obs.txt").write_text("Anna\nEdward\t1.7\n")
    assert main([str(examples / "smokers" / "rules.psl"), str(facts), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{facts / 'smokes_obs.txt'}:2: value 1.7 is outside [0, 1]" in err
    assert not (tmp_path / "o").exists()


def test_infeasible_hard_constraints_are_named(tmp_path, capsys):
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "a_targets.txt").write_text("x\n")
    (tmp_path / "f" / "b_targets.txt").write_text("x\n")
    rules = tmp_path / "r.psl"
    rules.write_text("A(X) + B(X) >= 1.5 .\nA(X) + B(X) <= 1 .\n1: A(X)\n")
    assert main([str(rules), str(tmp_path / "f"), "-o", str(tmp_path / "o")]) == 3
    err = capsys.readouterr().err
    assert "cannot all hold" in err and "A(x) + B(x)" in err
    assert not (tmp_path / "o").exists()


def test_console_script_runs(examples, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hlmrf.cli.infer", str(examples / "smokers" / "rules.psl"),
                           str(examples / "smokers" / "facts"), "-o", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "CANCER" in proc.stdout


def test_result_line_reports_the_certified_gap(examples, tmp_path, capsys):
    import re

    rc = main([str(examples / "smokers" / "rules.psl"), str(examples / "smokers" / "facts"),
               "-o", str(tmp_path / "o")])
    assert rc == 0
    text = capsys.readouterr().out
    m = re.search(r"admm converged after \d+ iterations .*energy ([0-9.]+), certified gap <= "
                  r"([0-9.e+-]+) \(([0-9.e+-]+) relative\)", text)
    assert m, text
    energy, gap = float(m.group(1)), float(m.group(2))
    assert 0 <= gap <= 1e-4 * energy + 1e-7


def test_iteration_limit_is_a_warning_with_the_gap(examples, tmp_path, capsys):
    rc = main([str(examples / "simple-acquaintances" / "rules.psl"),
               str(examples / "simple-acquaintances" / "facts"), "-o", str(tmp_path / "o"),
               "-D", "max_iter=3", "-D", "polish=false"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "iteration_limit after 3 iterations" in text and "certified gap <= " in text
    assert "warning: the iteration limit was reached before the optimality certificate held" in text

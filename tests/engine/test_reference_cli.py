"""The reference engine's command-line spellings, ``python -m hlmrf``, ``--version`` and the
full-precision outputs, run against the bundled examples.

Every alias is checked against the plain spelling: the same inputs must give the same output
files, so the aliases cannot drift from the commands they stand for. The acquaintances numbers
are the reference PSL 2.4 results quoted in the README.
"""
import json
import subprocess
import sys

import numpy as np
import pytest

from hlmrf.cli import infer as infer_cli
from hlmrf.cli import learn as learn_cli
from hlmrf.cli.reference import (ADMM_OPTIONS, CLI_OPTIONS, EVALUATORS, IGNORED_OPTIONS,
                                 LEARN_OPTIONS, version_text)
from hlmrf.data.writer import format_values

ACQ = "simple-acquaintances"


@pytest.fixture
def acq(examples, tmp_path):
    """The acquaintances example as a rule file, a .data file and a config with a learn split."""
    facts = examples / ACQ / "facts"
    data = tmp_path / "acq.data"
    data.write_text("\n".join([
        "predicates:", "  Knows/2: open", "  Likes/2: closed", "  Lived/2: closed",
        "observations:", *(f"  {p}: {facts / (p.lower() + '_obs.txt')}" for p in ("Knows", "Likes", "Lived")),
        "targets:", f"  Knows: {facts / 'knows_targets.txt'}",
        "truth:", f"  Knows: {facts / 'knows_truth.txt'}", ""]))
    config = tmp_path / "acq.json"
    obs = {f"{p}/2": {"observations": [str(facts / (p.lower() + "_obs.txt"))]} for p in ("Likes", "Lived")}
    knows = {"observations": [str(facts / "knows_obs.txt")],
             "targets": {"learn": [str(facts / "knows_targets.txt")],
                         "infer": [str(facts / "knows_targets.txt")]},
             "truth": {"learn": [str(facts / "knows_truth.txt")], "infer": [str(facts / "knows_truth.txt")]}}
    config.write_text(json.dumps({"rules": str(examples / ACQ / "rules.psl"),
                                  "options": {"admmreasoner.maxiterations": 25000},
                                  "predicates": {"Knows/2": knows, **obs}}))
    return {"rules": str(examples / ACQ / "rules.psl"), "facts": str(facts), "data": str(data),
            "config": str(config)}


def _infer(argv, capsys):
    rc = infer_cli.main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_model_data_and_config_aliases_give_the_plain_answer(acq, tmp_path, capsys):
    runs = {"plain": [acq["rules"], acq["facts"]],
            "model/data": ["--model", acq["rules"], "--data", acq["data"]],
            "model/folder": ["--model", acq["rules"], "--data", acq["facts"]],
            "config": ["--config", acq["config"]]}
    outputs = {}
    for label, argv in runs.items():
        out = tmp_path / label.replace("/", "-")
        rc, text, err = _infer(argv + ["--output", str(out)], capsys)
        assert rc == 0, err
        assert "grounding: 4,532 ground rules" in text
        assert "Knows: n=118 accuracy 0.915254  f1 0.933333" in text and "auroc 0.982456" in text
        outputs[label] = (out / "KNOWS.txt").read_text()
    assert len(set(outputs.values())) == 1


def test_mixing_two_ways_of_naming_inputs_is_refused(acq, tmp_path, capsys):
    rc, _, err = _infer([acq["rules"], acq["facts"], "--config", acq["config"], "-o",
                         str(tmp_path / "o")], capsys)
    assert rc == 2 and "give one of them" in err
    rc, _, err = _infer(["--model", acq["rules"], "-o", str(tmp_path / "o")], capsys)
    assert rc == 2 and "--model and --data go together" in err
    rc, _, err = _infer(["-o", str(tmp_path / "o")], capsys)
    assert rc == 2 and "no inputs" in err
    assert not (tmp_path / "o").exists()


def test_garbage_behind_the_reference_spellings_is_a_located_error(acq, tmp_path, capsys):
    """--config and --model/--data reach the same checked readers as the plain spelling: a folder,
    bad bytes or wrongly typed JSON give one located line, exit 2, and no output folder."""
    folder = tmp_path / "dir.json"
    folder.mkdir()
    bad_bytes = tmp_path / "bad.json"
    bad_bytes.write_bytes(b'{"rules": ["1: A(X) -> B(X)"], \xff\xfe}')
    wrong_type = tmp_path / "typed.json"
    wrong_type.write_text(json.dumps({"rules": "1: A(X)", "predicates": ["A/1"]}))
    bad_data = tmp_path / "bad.data"
    bad_data.write_bytes(b"predicates:\n  Knows/2: \x00open\n")
    cases = [["--config", str(folder)], ["--config", str(bad_bytes)], ["--config", str(wrong_type)],
             ["--model", acq["rules"], "--data", str(bad_data)],
             ["--model", acq["rules"], "--data", str(tmp_path / "missing.data")]]
    for argv in cases:
        out = tmp_path / "o"
        rc, _, err = _infer(argv + ["-o", str(out)], capsys)
        assert rc == 2, (argv, err)
        line = err.strip().splitlines()[0]
        assert line.startswith("hlmrf-infer: error: ") and str(tmp_path) in line, (argv, err)
        assert "Traceback" not in err and not out.exists(), argv


def test_eval_selects_the_reference_evaluators_metrics(acq, tmp_path, capsys):
    rc, text, _ = _infer([acq["rules"], acq["facts"], "-o", str(tmp_path / "o"), "--eval",
                          "DiscreteEvaluator", "org.linqs.psl.evaluation.statistics.RankingEvaluator"],
                         capsys)
    assert rc == 0
    line = next(l for l in text.splitlines() if l.strip().startswith("Knows: n=118"))
    assert "accuracy 0.915254" in line and "f1 0.933333" in line and "auroc 0.982456" in line
    assert "precision" in line and "recall" in line and "auprc" in line and "mae" not in line
    rc, text, _ = _infer([acq["rules"], acq["facts"], "-o", str(tmp_path / "p"), "--eval",
                          "ContinuousEvaluator", "CategoricalEvaluator"], capsys)
    line = next(l for l in text.splitlines() if l.strip().startswith("Knows: n=118"))
    assert rc == 0 and "mae" in line and "mse" in line and "categorical_accuracy" in line
    assert "accuracy 0.9" not in line.replace("categorical_accuracy", "")
    rc, _, err = _infer([acq["rules"], acq["facts"], "-o", str(tmp_path / "q"), "--eval",
                         "F1Evaluator"], capsys)
    assert rc == 2 and "not an evaluator hlmrf knows" in err and "DiscreteEvaluator" in err
    assert not (tmp_path / "q").exists()


def test_reference_option_names_map_onto_ours(examples, tmp_path, capsys):
    rules, facts = str(examples / "smokers" / "rules.psl"), str(examples / "smokers" / "facts")
    ours = [rules, facts, "-o", str(tmp_path / "a"), "-D", "max_iter=7", "-D", "eps_abs=1e-6",
            "-D", "eps_rel=1e-4", "-D", "rho=2", "-D", "normalize_weights=false", "-D", "threads=1"]
    theirs = [rules, facts, "-o", str(tmp_path / "b"), "-D", "admmreasoner.maxiterations=7",
              "-D", "admmreasoner.epsilonabs=1e-6", "-D", "ADMMReasoner.EpsilonRel=1e-4",
              "-D", "admmreasoner.stepsize=2", "-D", "inference.normalize=false",
              "-D", "parallel.numthreads=1"]
    a, b = _infer(ours, capsys), _infer(theirs, capsys)
    assert a[0] == b[0] == 0
    assert "after 7 iterations" in a[1] and "after 7 iterations" in b[1]
    for name in ("CANCER.txt", "SMOKES.txt"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    rc, text, _ = _infer([rules, facts, "-o", str(tmp_path / "c"), "-D",
                          "discreteevaluator.threshold=0.9"], capsys)
    assert rc == 0 and "threshold 0.9" in text
    from hlmrf.cli.reference import translate_options

    assert translate_options(["Parallel.NumThreads=3"]).admm == ["threads=3"]


def test_reference_options_we_ignore_warn_and_unknown_ones_fail(examples, tmp_path, capsys):
    rules, facts = str(examples / "smokers" / "rules.psl"), str(examples / "smokers" / "facts")
    rc, _, err = _infer([rules, facts, "-o", str(tmp_path / "a"), "-q", "-D",
                         "admmreasoner.computeperiod=10"], capsys)
    assert rc == 0
    assert "warning: ignoring -D admmreasoner.computeperiod" in err and "reference_engine.md" in err
    rc, _, err = _infer([rules, facts, "-o", str(tmp_path / "b"), "-D", "admmreasoner.maxiteration=5"],
                        capsys)
    assert rc == 2 and "unknown reference option(s) admmreasoner.maxiteration" in err
    assert "admmreasoner.maxiterations" in err and not (tmp_path / "b").exists()


def test_groundrules_alias_to_a_file_and_to_stdout(examples, tmp_path, capsys):
    rules, facts = str(examples / "smokers" / "rules.psl"), str(examples / "smokers" / "facts")
    rc, _, _ = _infer([rules, facts, "-o", str(tmp_path / "o"), "--groundrules",
                       str(tmp_path / "g.txt")], capsys)
    assert rc == 0 and len((tmp_path / "g.txt").read_text().splitlines()) == 21
    rc, text, _ = _infer([rules, facts, "-o", str(tmp_path / "p"), "-q", "--groundrules"], capsys)
    assert rc == 0 and text == (tmp_path / "g.txt").read_text()


def test_learn_reads_infers_inputs_and_output_spellings(acq, tmp_path, capsys):
    outputs = []
    for i, argv in enumerate(([acq["rules"], acq["facts"], "--output"],
                              [acq["rules"], acq["data"], "-o"],
                              ["--model", acq["rules"], "--data", acq["data"], "--out"],
                              [acq["config"], "--output"],
                              ["--config", acq["config"], "--output"])):
        out = tmp_path / f"learned{i}.psl"
        rc = learn_cli.main(argv + [str(out), "--epochs", "2", "-q"])
        err = capsys.readouterr().err
        assert rc == 0, err
        outputs.append(out.read_text())
    assert len(set(outputs)) == 1
    rc = learn_cli.main([acq["rules"], acq["facts"], "--epochs", "1"])
    assert rc == 2 and "--output FILE" in capsys.readouterr().err


def test_learn_takes_voted_perceptron_names(acq, tmp_path, capsys):
    a, b = tmp_path / "a.psl", tmp_path / "b.psl"
    assert learn_cli.main([acq["rules"], acq["facts"], "-o", str(a), "--epochs", "3",
                           "--step-size", "0.5", "-q"]) == 0
    assert learn_cli.main([acq["rules"], acq["facts"], "-o", str(b), "-q",
                           "-D", "votedperceptron.numsteps=3", "-D", "votedperceptron.stepsize=0.5"]) == 0
    assert a.read_text() == b.read_text()
    capsys.readouterr()
    assert learn_cli.main([acq["rules"], acq["facts"], "-o", str(tmp_path / "c.psl"), "--eval",
                           "DiscreteEvaluator"]) == 2
    assert "hlmrf-infer --eval" in capsys.readouterr().err


def test_every_honoured_and_ignored_option_is_in_the_docs_table(examples):
    text = (examples.parent / "docs" / "reference_engine.md").read_text()
    for name in [*ADMM_OPTIONS, *CLI_OPTIONS, *LEARN_OPTIONS, *IGNORED_OPTIONS, *EVALUATORS]:
        assert f"`{name}`" in text, name


@pytest.mark.parametrize("values", [
    [1 / 3, 2 / 3, 0.1, 1e-5, 1 - 1e-12, 0.0, 1.0, 5e-324, -0.0],
    list(np.random.default_rng(0).random(200)),
    list(np.random.default_rng(1).random(50).astype(np.float32)),
])
def test_written_values_read_back_exactly(values):
    values = np.asarray(values)
    args = np.arange(len(values)).reshape(-1, 1)
    names = [f"c{i}" for i in range(len(values))]
    lines = format_values(names, args, values).splitlines()
    back = [float(line.split("\t")[1]) for line in lines]
    assert back == [float(v) for v in values]
    assert all(not line.endswith("-0.0") for line in lines)


def test_written_file_holds_the_solvers_values_exactly(examples, tmp_path):
    import hlmrf

    program = hlmrf.load_rules(examples / "smokers" / "rules.psl")
    run = hlmrf.infer(program, hlmrf.load_facts(examples / "smokers" / "facts", program))
    run.write(tmp_path / "o")
    values = run.values("Cancer")
    read = {tuple(l.split("\t")[:-1]): float(l.split("\t")[-1])
            for l in (tmp_path / "o" / "CANCER.txt").read_text().splitlines()}
    assert read == values


def test_python_m_hlmrf_lists_and_dispatches(examples, tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "hlmrf", *a], capture_output=True,
                                    text=True, cwd=tmp_path, timeout=120)
    got = run("--help")
    assert got.returncode == 0 and "infer" in got.stdout and "learn" in got.stdout
    assert run().returncode == 2
    bad = run("nope")
    assert bad.returncode == 2 and "unknown command 'nope'" in bad.stderr
    got = run("infer", str(examples / "smokers" / "rules.psl"), str(examples / "smokers" / "facts"),
              "-o", str(tmp_path / "o"), "-q")
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "o" / "CANCER.txt").exists()
    assert "--method" in run("learn", "--help").stdout


@pytest.mark.parametrize("command", ["hlmrf-infer", "hlmrf-learn", "vqa-masks",
                                     "vqa-sort-of-clevr", "vqa-train", "python -m hlmrf"])
def test_version_on_every_command(command, tmp_path):
    import shutil

    argv = command.split()
    if argv[0] == "python":
        argv[0] = sys.executable
    elif shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} is not installed as a script (pip install -e .)")
    got = subprocess.run(argv + ["--version"], capture_output=True, text=True, cwd=tmp_path,
                         timeout=120)
    assert got.returncode == 0 and got.stdout.strip() == version_text()
    assert version_text().startswith("hlmrf ") and version_text().split()[1][0].isdigit()

"""vqa-report: t-intervals and paired tests against closed forms and scipy, grouping by settings,
the Markdown and JSON numbers, the figures, and the CLI end to end and on each bad input."""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from vqa_adapters.cli.report import main
from vqa_adapters.distill.report import (aggregate, compare, group_runs, load_runs,
                                         report_json, report_markdown, UnfinishedRunWarning)
from vqa_adapters.distill.stats import mean_ci, paired_test

PNG = b"\x89PNG\r\n\x1a\n"
TYPES = ("shape", "horizontal", "vertical", "nearest", "farthest", "count")
SEEDS = (1, 2, 3)
# Test accuracy per (pi, seed): baseline does not depend on pi, the student does.
BASE = {1: 0.700, 2: 0.720, 3: 0.690}
STUDENT = {0.3: {1: 0.729, 2: 0.755, 3: 0.719}, 0.7: {1: 0.740, 2: 0.750, 3: 0.730}}


def _settings(seed, pi):
    return {"experiment": "baseline+teacher+student", "role": None, "seed": seed,
            "num_threads": 1, "deterministic": True,
            "data": {"kind": "sort_of_clevr", "root": "/data/soc"},
            "model": {"preset": "small"}, "teacher_model": None,
            "train": {"epochs": 3, "lr": 0.001},
            "distill": {"mode": "kd", "pi": pi, "schedule": "constant", "soft_loss": "kl",
                        "temperature": 2.0, "attention_supervision": False}}


def _row(model, acc, epoch):
    return {"model": model, "accuracy": acc, "relational": acc - 0.1, "non_relational": acc + 0.1,
            "n": 5000, "per_type": {t: (acc if t != "count" else None) for t in TYPES},
            "epoch": epoch, "val_accuracy": acc + 0.01}


def _write_run(folder, seed, pi, *, label=None, finished=True):
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"settings": _settings(seed, pi),
                                                 "label": label}))
    lines = ["stage,network,epoch,lr,pi,train_loss,accuracy,relational,non_relational,"
             + ",".join(f"acc_type_{t}" for t in range(6)) + ",seconds"]
    for stage, net, top in (("baseline", "baseline", BASE[seed]), ("teacher", "teacher", 0.95),
                            ("student", "student", STUDENT[pi][seed]),
                            ("student", "teacher", 0.99)):
        for e in (1, 2, 3):
            acc = top - 0.05 * (3 - e)
            lines.append(f"{stage},{net},{e},0.001,{pi},0.5,{acc},{acc},{acc},"
                         + ",".join([str(acc)] * 5 + [""]) + ",1.0")
    (folder / "metrics.csv").write_text("\n".join(lines) + "\n")
    if finished:
        rows = [_row("baseline", BASE[seed], 3), _row("teacher", 0.95, 2),
                _row("student", STUDENT[pi][seed], 3)]
        (folder / "summary.json").write_text(json.dumps(rows))
    return folder


@pytest.fixture
def runs(tmp_path):
    return [_write_run(tmp_path / f"pi{pi}-s{s}", s, pi) for pi in STUDENT for s in SEEDS]


# ---- stats ----------------------------------------------------------------------------------
def test_mean_ci_of_one_two_three_is_the_closed_form():
    ci = mean_ci([1, 2, 3])
    assert ci.mean == 2 and ci.n == 3 and ci.values == (1.0, 2.0, 3.0)
    assert ci.half_width == pytest.approx(4.302653 * 1 / math.sqrt(3), rel=1e-6)
    assert (ci.low, ci.high) == pytest.approx((2 - ci.half_width, 2 + ci.half_width))
    half90 = mean_ci([1, 2, 3], level=0.90).half_width
    assert half90 == pytest.approx(2.919986 / math.sqrt(3), rel=1e-6)


def test_mean_ci_drops_nans_and_has_no_interval_for_one_value():
    ci = mean_ci([0.5, float("nan"), None])
    assert ci.n == 1 and ci.mean == 0.5 and math.isnan(ci.half_width)
    empty = mean_ci([])
    assert empty.n == 0 and math.isnan(empty.mean)
    x = [0.71, 0.74, 0.69, 0.73]
    lo, hi = sps.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=sps.sem(x))
    ci = mean_ci(x)
    assert (ci.low, ci.high) == pytest.approx((lo, hi), rel=1e-12)


def test_paired_test_matches_scipy_ttest_rel():
    a, b = [0.70, 0.72, 0.69, 0.75], [0.73, 0.76, 0.70, 0.77]
    res, ref = paired_test(a, b), sps.ttest_rel(b, a)
    assert res.t == pytest.approx(ref.statistic, rel=1e-10)
    assert res.p == pytest.approx(ref.pvalue, rel=1e-10)
    d = np.subtract(b, a)
    assert res.mean_diff == pytest.approx(d.mean())
    assert res.half_width == pytest.approx(sps.t.ppf(0.975, 3) * d.std(ddof=1) / 2)
    assert res.n == 4 and res.diffs == pytest.approx(tuple(d))


def test_paired_test_edge_cases_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = paired_test([1, 2, 3], [2, 3, 4])
        zero = paired_test([1, 2, 3], [1, 2, 3])
        one = paired_test([1], [2])
        nan = paired_test([1, float("nan"), 3], [2, 5, 5])
    assert same.t == math.inf and same.p == 0 and same.half_width == 0 and same.mean_diff == 1
    assert math.isnan(zero.t) and zero.p == 1
    assert one.n == 1 and math.isnan(one.t) and math.isnan(one.p) and one.mean_diff == 1
    assert nan.n == 2 and nan.diffs == (1.0, 2.0)
    with pytest.raises(ValueError, match="same number"):
        paired_test([1, 2], [1])
    with pytest.raises(ValueError, match="level"):
        mean_ci([1, 2], level=95)


# ---- grouping, statistics, writers ----------------------------------------------------------
def test_three_seeds_by_two_pi_values_make_two_groups_named_by_pi(runs):
    groups = group_runs(load_runs(runs))
    assert [g.name for g in groups] == ["distill.pi=0.3", "distill.pi=0.7"]
    assert [g.seeds for g in groups] == [[1, 2, 3], [1, 2, 3]]
    assert groups[0].differing == {"distill.pi": 0.3}
    one = group_runs(load_runs(runs[:3]))
    assert [g.name for g in one] == ["run"]


def test_a_shared_label_names_the_group(tmp_path):
    folders = [_write_run(tmp_path / f"s{s}", s, 0.3, label="kd pi .3") for s in SEEDS]
    assert [g.name for g in group_runs(load_runs(folders))] == ["kd pi .3"]


def test_aggregate_means_and_the_student_baseline_test_match_scipy(runs):
    stats = aggregate(group_runs(load_runs(runs)))
    g = stats[0]
    base, stu = [BASE[s] for s in SEEDS], [STUDENT[0.3][s] for s in SEEDS]
    assert g.models["student"].stats["accuracy"].mean == pytest.approx(np.mean(stu))
    assert g.models["baseline"].stats["relational"].mean == pytest.approx(np.mean(base) - 0.1)
    assert g.models["teacher"].epochs == (2, 2, 2)
    assert g.models["baseline"].stats["count"].n == 0  # null per-type values are dropped
    test = g.student_vs_baseline.test
    ref = sps.ttest_rel(stu, base)
    assert test.t == pytest.approx(ref.statistic) and test.p == pytest.approx(ref.pvalue)
    assert g.student_vs_baseline.seeds == (1, 2, 3)


def test_markdown_shows_means_tests_and_per_seed_rows(runs):
    stats = aggregate(group_runs(load_runs(runs)))
    md = report_markdown(stats)
    stu = np.mean([STUDENT[0.3][s] for s in SEEDS])
    half = mean_ci([STUDENT[0.3][s] for s in SEEDS]).half_width
    assert f"| student | {100 * stu:.1f} ± {100 * half:.1f} |" in md
    # student - baseline at pi=0.3: diffs +2.9, +3.5, +2.9 points
    ref = sps.ttest_rel([STUDENT[0.3][s] for s in SEEDS], [BASE[s] for s in SEEDS])
    assert "student - baseline: +3.1 points, 95% CI [" in md
    assert f"t={ref.statistic:.2f}, p={ref.pvalue:.3g}, n=3 seeds; per seed (1, 2, 3): " \
           "+2.9, +3.5, +2.9" in md
    assert "| distill.pi=0.7 | 2 | student | 75.0 | 3 |" in md
    doc = json.loads(report_json(stats))
    assert doc["groups"][0]["models"]["student"]["accuracy"]["mean"] == pytest.approx(stu)
    assert doc["groups"][0]["models"]["baseline"]["count"]["mean"] is None


def test_compare_pairs_groups_by_seed(runs):
    groups = group_runs(load_runs(runs[:3] + runs[4:]))  # pi=0.7 lacks seed 1
    c = compare(groups[0], "student", groups[1], "student")
    assert c.seeds == (2, 3)
    assert c.test.diffs == pytest.approx((0.750 - 0.755, 0.730 - 0.719))


def test_curves_and_sweep_are_pngs(runs):
    from vqa_adapters.distill.report import curves_png, sweep_png

    groups = group_runs(load_runs(runs))
    assert curves_png(groups[0]).startswith(PNG)
    assert sweep_png(groups, "distill.pi").startswith(PNG)


# ---- the CLI --------------------------------------------------------------------------------
def test_cli_writes_the_report(runs, tmp_path, capsys):
    unfinished = _write_run(tmp_path / "unfinished", 3, 0.3, finished=False)
    out = tmp_path / "report"
    code = main([*map(str, runs), str(unfinished), "--out", str(out), "--sweep", "distill.pi",
                 "--compare", "distill.pi=0.3:student", "distill.pi=0.7:student"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    names = {p.name for p in out.iterdir()}
    assert {"report.md", "report.json", "curves_distill.pi_0.3.png", "curves_distill.pi_0.7.png",
            "sweep.png"} <= names
    for png in ("sweep.png", "curves_distill.pi_0.3.png"):
        assert (out / png).read_bytes().startswith(PNG)
    assert captured.out == (out / "report.md").read_text()
    assert "- student (distill.pi=0.7) - student (distill.pi=0.3): +0.6 points" in captured.out
    assert f"warning: {unfinished}: no summary.json" in captured.err
    assert len(json.loads((out / "report.json").read_text())["comparisons"]) == 1


def test_unfinished_run_is_a_warning_or_with_strict_an_error(runs, tmp_path, capsys):
    unfinished = _write_run(tmp_path / "unfinished", 3, 0.3, finished=False)
    with pytest.warns(UnfinishedRunWarning):
        assert len(load_runs([*runs, unfinished])) == 6
    assert main([str(unfinished), *map(str, runs), "--out", str(tmp_path / "r"),
                 "--strict"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(unfinished) in err and "summary.json" in err


def _bad_json(tmp_path):
    run = _write_run(tmp_path / "bad", 1, 0.3)
    (run / "summary.json").write_text('[\n  {"model": "baseline",}\n]')
    return [str(run)], "summary.json:2: malformed JSON"


def _not_a_folder(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    return [str(f)], "file.txt: not a folder"


def _no_run_json(tmp_path):
    (tmp_path / "empty").mkdir()
    return [str(tmp_path / "empty")], "empty: no run.json"


def _missing(tmp_path):
    return [str(tmp_path / "nope")], "nope: no such folder"


@pytest.mark.parametrize("case", [_bad_json, _not_a_folder, _no_run_json, _missing])
def test_bad_run_folders_exit_2_naming_the_file(case, tmp_path, capsys):
    paths, message = case(tmp_path)
    assert main([*paths, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vqa-report: error: ") and err.count("\n") == 1
    assert message in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("extra, message", [
    (["--sweep", "distill.mode"], "'distill.mode' is not numeric"),
    (["--sweep", "train.lr"], "does not vary"),
    (["--sweep", "pi"], "did you mean distill.pi"),
    (["--compare", "pi=0.3:student", "distill.pi=0.7:student"],
     "unknown group 'pi=0.3'; known groups: 'distill.pi=0.3', 'distill.pi=0.7'"),
    (["--compare", "distill.pi=0.3:studnet", "distill.pi=0.7:student"],
     "no model 'studnet'"),
])
def test_bad_options_exit_2(extra, message, runs, tmp_path, capsys):
    assert main([*map(str, runs), "--out", str(tmp_path / "r"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "r").exists()


def test_question_types_come_from_the_summaries(tmp_path):
    """CLEVR runs name their own question types; the table shows those, not Sort-of-CLEVR's."""
    from vqa_adapters.distill.report import aggregate, group_runs, load_runs, report_markdown

    for seed, acc in ((0, 0.5), (1, 0.6)):
        d = tmp_path / f"clevr_s{seed}"
        d.mkdir()
        (d / "run.json").write_text(json.dumps({"settings": {"seed": seed, "data": {"kind": "clevr"}},
                                                "label": "clevr"}))
        row = {"model": "baseline", "accuracy": acc, "relational": None, "non_relational": None,
               "n": 10, "per_type": {"exist": acc, "count": acc / 2}, "epoch": 1,
               "val_accuracy": acc}
        (d / "summary.json").write_text(json.dumps([row]))
        (d / "metrics.csv").write_text("stage,network,epoch,accuracy\nbaseline,baseline,1,0.5\n")
    stats = aggregate(group_runs(load_runs([tmp_path / "clevr_s0", tmp_path / "clevr_s1"])))
    assert list(stats[0].models["baseline"].stats) == [
        "accuracy", "relational", "non_relational", "exist", "count"]
    md = report_markdown(stats, [])
    assert "| exist | count |" in md and "horizontal" not in md
    assert "27.5" in md  # count: mean of 25 and 30

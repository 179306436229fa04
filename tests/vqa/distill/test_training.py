"""Training end to end on tiny synthetic data: learning, exact resume, CLI files, settings errors."""
from __future__ import annotations

import csv
import json

import pytest

torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")

from hlmrf.errors import SettingsError  # noqa: E402
from vqa_adapters.cli.train import main  # noqa: E402
from vqa_adapters.distill.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from vqa_adapters.distill.data import synthetic_dataset  # noqa: E402
from vqa_adapters.distill.settings import load_settings, settings_from_dict  # noqa: E402
from vqa_adapters.distill.trainer import evaluate, make_loader, train_epoch  # noqa: E402
from vqa_adapters.models import ModelConfig, QuestionConfig, build_model  # noqa: E402

TINY_MODEL = {"preset": "small", "conv_channels": [4, 4], "g_units": [8], "f_units": [8],
              "n_answers": 4, "question": {"out_dim": 4}}


def _config(tmp_path, name="run.yaml", **over) -> str:
    cfg = {"experiment": "baseline+teacher+student", "seed": 3, "num_threads": 1,
           "data": {"kind": "synthetic", "synthetic_train": 12, "synthetic_eval": 6,
                    "synthetic_questions": 2},
           "model": TINY_MODEL,
           "train": {"epochs": 2, "batch_size": 8, "lr": 0.01},
           "distill": {"pi": 0.5}}
    for k, v in over.items():
        cfg[k] = {**cfg[k], **v} if isinstance(v, dict) and k in cfg else v
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg) if name.endswith(".yaml") else json.dumps(cfg))
    return str(path)


def test_rn_learns_the_separable_synthetic_task():
    torch.manual_seed(0)
    train = synthetic_dataset(512, questions_per_image=3, image_size=16, seed=1)
    test = synthetic_dataset(64, questions_per_image=3, image_size=16, seed=2)
    cfg = ModelConfig(kind="rn", conv_channels=(16, 16), g_units=(32, 32), f_units=(32,),
                      n_answers=4, question=QuestionConfig(out_dim=16))
    net = build_model(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    before = evaluate(net, make_loader(test, batch_size=256, shuffle=False)).accuracy
    for epoch in range(10):
        train_epoch(net, opt, make_loader(train, batch_size=32, shuffle=True, seed=epoch))
    after = evaluate(net, make_loader(test, batch_size=256, shuffle=False))
    assert before < 0.5
    assert after.accuracy >= 0.9, after


def _assert_same_checkpoints(a_dir, b_dir, stages):
    for stage in stages:
        a = load_checkpoint(a_dir / stage / "checkpoint.pt")
        b = load_checkpoint(b_dir / stage / "checkpoint.pt")
        assert a["epoch"] == b["epoch"] == 2
        for net in b["models"]:
            for key, value in b["models"][net].items():
                assert torch.equal(a["models"][net][key], value), (stage, net, key)
            sa, sb = a["optimizers"][net]["state"], b["optimizers"][net]["state"]
            assert sa.keys() == sb.keys()
            for k in sb:
                for name in ("exp_avg", "exp_avg_sq", "step"):
                    assert torch.equal(sa[k][name], sb[k][name])

        def comparable(history):  # wall seconds differ; NaN != NaN
            return [{k: v for k, v in r.items() if k != "seconds" and v == v} for r in history]

        assert comparable(a["history"]) == comparable(b["history"])
        assert a["test"] == b["test"] or str(a["test"]) == str(b["test"])


def test_resume_after_one_epoch_equals_two_straight_epochs(tmp_path):
    one = _config(tmp_path, "one.yaml", experiment="single", train={"epochs": 1})
    two = _config(tmp_path, "two.yaml", experiment="single")
    assert main([one, "--out", str(tmp_path / "resumed"), "--quiet"]) == 0
    assert main([two, "--out", str(tmp_path / "resumed"), "--quiet", "--resume"]) == 0
    assert main([two, "--out", str(tmp_path / "straight"), "--quiet"]) == 0
    _assert_same_checkpoints(tmp_path / "resumed", tmp_path / "straight", ["baseline"])
    # Without --resume an existing checkpoint is never overwritten.
    assert main([two, "--out", str(tmp_path / "straight"), "--quiet"]) == 2


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("mode", ["sequential", "iterative"])
def test_interrupted_experiment_resumes_to_identical_state(tmp_path, mode):
    from vqa_adapters.distill.runner import Runner
    from vqa_adapters.distill.trainer import epoch_seed  # noqa: F401

    settings = load_settings(_config(tmp_path, distill={"mode": mode}))

    class Bar:
        def __init__(self, total, desc):
            self.desc = desc

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def update(self, n=1, postfix=None):
            if self.desc.startswith("student/student epoch 2"):
                raise _Interrupt  # a crash in the middle of the student's second epoch

    with pytest.raises(_Interrupt):
        Runner(settings, tmp_path / "resumed", progress=Bar).run()
    assert load_checkpoint(tmp_path / "resumed" / "student" / "checkpoint.pt")["epoch"] == 1
    Runner(settings, tmp_path / "resumed", resume=True).run()
    Runner(settings, tmp_path / "straight").run()
    _assert_same_checkpoints(tmp_path / "resumed", tmp_path / "straight",
                             ["baseline", "teacher", "student"])


def test_training_an_earlier_stage_further_invalidates_later_ones(tmp_path):
    one = _config(tmp_path, "one.yaml", train={"epochs": 1})
    two = _config(tmp_path, "two.yaml")
    assert main([one, "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert main([two, "--out", str(tmp_path / "o"), "--quiet", "--resume"]) == 2


def test_cli_writes_metrics_plot_summary(tmp_path, capsys):
    cfg = _config(tmp_path, "run.json")
    out = tmp_path / "out"
    assert main([cfg, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "| baseline |" in printed and "| teacher |" in printed and "| student |" in printed
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [(r["stage"], r["epoch"]) for r in rows] == [
        ("baseline", "1"), ("baseline", "2"), ("teacher", "1"), ("teacher", "2"),
        ("student", "1"), ("student", "2")]
    assert all(0 <= float(r["accuracy"]) <= 1 for r in rows)
    assert float(rows[-1]["pi"]) == 0.5 and float(rows[0]["pi"]) == 0.0
    summary = json.loads((out / "summary.json").read_text())
    assert [r["model"] for r in summary] == ["baseline", "teacher", "student"]
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.rglob("*.tmp"))


def test_unknown_settings_are_listed(tmp_path, capsys):
    with pytest.raises(SettingsError, match="unknown settings: colour, epochz"):
        settings_from_dict({"epochz": 1, "colour": 2})
    with pytest.raises(SettingsError, match=r"unknown train setting\(s\) lrr; valid train settings are "):
        settings_from_dict({"train": {"lrr": 1}})
    with pytest.raises(SettingsError, match="teacher_checkpoint"):
        settings_from_dict({"role": "student"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {kind: synthetic}\nmodle: {}\n")
    assert main([str(bad), "--quiet"]) == 2
    assert "unknown settings: modle" in capsys.readouterr().err


def test_shipped_config_is_valid():
    from pathlib import Path

    import vqa_adapters

    path = Path(vqa_adapters.__file__).parent / "configs" / "sort_of_clevr_small.yaml"
    s = load_settings(path)
    assert s.experiment == "baseline+teacher+student" and s.data.masks == "oracle"
    assert s.model.g_units == (64, 64)


def test_every_shipped_config_loads():
    from pathlib import Path

    import vqa_adapters

    paths = sorted((Path(vqa_adapters.__file__).parent / "configs").glob("*.yaml"))
    assert len(paths) >= 3
    for path in paths:
        s = load_settings(path)
        assert s.experiment == "baseline+teacher+student", path.name
        if "psl" in path.name:  # the PSL-mask runs read vqa-masks output from disk
            assert s.data.masks == "file" and s.data.root == "sort_of_clevr", path.name


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"x": torch.ones(2)})

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(RuntimeError):
        save_checkpoint(path, {"x": torch.zeros(2)})
    assert torch.equal(load_checkpoint(path)["x"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_experiment_with_attention_teacher_san_student_and_options(tmp_path):
    from vqa_adapters.distill.runner import Runner

    settings = load_settings(_config(
        tmp_path,
        model={**TINY_MODEL, "kind": "san", "san_dim": 8, "attention_dim": 4},
        teacher_model={**TINY_MODEL, "kind": "rn_attention", "attention_supervision": 1.0,
                       "image_size": 16},
        train={"epochs": 2, "warmup": {"start": 0.001, "max": 0.004, "every": 1}},
        distill={"mode": "iterative", "schedule": "min", "pi": 0.9, "soft_loss": "euclidean"}))
    runner = Runner(settings, tmp_path / "out")
    results = runner.run()
    rows = results["student"].history
    assert [(r["network"], r["epoch"], r["lr"], round(r["pi"], 6)) for r in rows] == [
        ("teacher", 1, 0.001, 0.1), ("student", 1, 0.001, 0.1),
        ("teacher", 2, 0.002, 0.19), ("student", 2, 0.002, 0.19)]
    assert [r["model"] for r in runner.summary_rows()] == [
        "baseline", "teacher", "teacher (after iterative)", "student"]

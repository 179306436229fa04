"""Natural-language questions, GloVe, model selection, the student's attention loss, --reuse and
--set, end to end on the tiny synthetic task (whose questions also have texts)."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")

from hlmrf.errors import DataError, SettingsError  # noqa: E402
from vqa_adapters.cli.train import main  # noqa: E402
from vqa_adapters.distill.checkpoint import load_checkpoint  # noqa: E402
from vqa_adapters.distill.runner import Runner  # noqa: E402
from vqa_adapters.distill.settings import apply_overrides, load_settings  # noqa: E402
from vqa_adapters.distill.trainer import TYPE_NAMES, evaluate, make_loader  # noqa: E402
from vqa_adapters.models.rn import attention_kl  # noqa: E402

TOKENS_MODEL = {"preset": "small", "conv_channels": [8, 8], "g_units": [16], "f_units": [16],
                "n_answers": 4, "image_size": 16,
                "question": {"kind": "tokens", "embed_dim": 8, "out_dim": 8}}


def _config(tmp_path, name="run.yaml", **over) -> str:
    cfg = {"experiment": "baseline+teacher+student", "seed": 1, "num_threads": 1,
           "data": {"kind": "synthetic", "synthetic_train": 96, "synthetic_eval": 32,
                    "synthetic_questions": 3, "question": "text"},
           "model": TOKENS_MODEL,
           "train": {"epochs": 3, "batch_size": 16, "lr": 0.01},
           "distill": {"pi": 0.5}}
    for k, v in over.items():
        cfg[k] = {**cfg[k], **v} if isinstance(v, dict) and k in cfg else v
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_text_questions_train_and_learn(tmp_path):
    """An LSTM over word ids learns the synthetic task (chance 25%) within a short run."""
    model = {**TOKENS_MODEL, "conv_channels": [16, 16], "g_units": [32, 32], "f_units": [32],
             "question": {"kind": "tokens", "embed_dim": 16, "out_dim": 16}}
    cfg = _config(tmp_path, experiment="single", model=model,
                  data={"synthetic_train": 512, "synthetic_eval": 32},
                  train={"epochs": 10, "batch_size": 32, "lr": 0.01})
    runner = Runner(load_settings(cfg), tmp_path / "out")
    result = runner.run()["baseline"]
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["vocabulary"][:2] == ["<pad>", "<unk>"]
    assert {"which", "quadrant", "red", "green", "blue", "?"} <= set(run["vocabulary"])
    batch = runner.dataset("train").get_batch(np.arange(4))
    assert batch["question"].dtype == torch.int64 and batch["question"].shape[0] == 4
    assert result.history[0]["accuracy"] < 0.5             # chance is 25%
    assert result.test["baseline"]["accuracy"] >= 0.9, result.test


def test_model_selection_tests_the_best_validation_epoch(tmp_path):
    cfg = _config(tmp_path, experiment="single", train={"epochs": 4})
    runner = Runner(load_settings(cfg), tmp_path / "out")
    res = runner.run()["baseline"]
    vals = [r["accuracy"] for r in res.history]
    best = int(np.argmax(vals)) + 1          # first epoch with the highest accuracy
    assert res.test["baseline"]["epoch"] == best
    assert res.test["baseline"]["val_accuracy"] == vals[best - 1]
    ckpt = load_checkpoint(tmp_path / "out" / "baseline" / "checkpoint.pt")
    # the tested weights are the best epoch's; the checkpoint still resumes from the last epoch
    net = runner._new_model("baseline", "net")
    net.load_state_dict(ckpt["best"]["baseline"]["state"])
    again = evaluate(net, make_loader(runner.dataset("test"), batch_size=64, shuffle=False))
    assert again.accuracy == res.test["baseline"]["accuracy"]
    last = load_settings(cfg, ["train.select=last"])
    res_last = Runner(last, tmp_path / "last").run()["baseline"]
    assert res_last.test["baseline"]["epoch"] == 4


def test_summary_reports_every_question_type(tmp_path):
    Runner(load_settings(_config(tmp_path, train={"epochs": 1})), tmp_path / "out").run()
    rows = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["model"] for r in rows] == ["baseline", "teacher", "student"]
    for r in rows:
        assert set(r["per_type"]) == set(TYPE_NAMES)
        assert r["epoch"] == 1
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "horizontal (%)" in md and "count (%)" in md


def test_student_attention_loss_pulls_attention_toward_the_mask(tmp_path):
    """Same initial weights and batches; only the attention term differs: the student's attention
    ends much closer to the mask than the baseline's."""
    model = {**TOKENS_MODEL, "kind": "rn_attention", "attention_form": "per_region",
             "attention_dim": 8}
    cfg = _config(tmp_path, model=model, teacher_model=TOKENS_MODEL,
                  data={"synthetic_train": 256, "synthetic_eval": 32},
                  train={"epochs": 4, "teacher_epochs": 1},
                  distill={"pi": 0.0, "attention_supervision": 1.0})
    runner = Runner(load_settings(cfg), tmp_path / "out")
    runner.run()
    ds = runner.dataset("test")
    batch = ds.get_batch(np.arange(len(ds)))
    kl = {}
    for name in ("baseline", "student"):
        ckpt = load_checkpoint(tmp_path / "out" / name / "checkpoint.pt")
        net = runner._new_model(name, "net")
        net.load_state_dict(ckpt["best"][name]["state"])
        net.eval()
        with torch.no_grad():
            net(batch["image"], batch["question"])
            kl[name] = float(attention_kl(net, batch["mask"]))
    assert kl["student"] < 0.5 * kl["baseline"], kl


def test_attention_supervision_needs_a_network_with_attention(tmp_path):
    with pytest.raises(SettingsError, match="needs a student with attention"):
        load_settings(_config(tmp_path, distill={"attention_supervision": 1.0}))


def test_reuse_copies_finished_baseline_and_teacher(tmp_path, capsys):
    first = _config(tmp_path, "a.yaml", train={"epochs": 1})
    assert main([first, "--out", str(tmp_path / "a"), "--quiet"]) == 0
    second = _config(tmp_path, "b.yaml", train={"epochs": 1}, distill={"pi": 0.9}, label="pi 0.9")
    logs = []
    runner = Runner(load_settings(second), tmp_path / "b", reuse=tmp_path / "a", log=logs.append)
    runner.run()
    assert "baseline: reused from" in logs[0] and "teacher: reused from" in logs[1]
    for stage in ("baseline", "teacher"):
        assert (tmp_path / "a" / stage / "checkpoint.pt").read_bytes() == \
            (tmp_path / "b" / stage / "checkpoint.pt").read_bytes()
    a = load_checkpoint(tmp_path / "a" / "student" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "b" / "student" / "checkpoint.pt")
    assert a["history"][0]["pi"] == 0.5 and b["history"][0]["pi"] == 0.9
    # a different network is not reused: the baseline trains again
    third = _config(tmp_path, "c.yaml", train={"epochs": 1},
                    model={**TOKENS_MODEL, "g_units": [12]})
    logs.clear()
    Runner(load_settings(third), tmp_path / "c", reuse=tmp_path / "a", log=logs.append).run()
    assert any("baseline: not reused" in m and "settings differ" in m for m in logs)


def test_set_overrides(tmp_path):
    cfg = _config(tmp_path)
    s = load_settings(cfg, ["seed=7", "distill.pi=0.3", "model.question.reverse=true",
                            "label=sweep"])
    assert (s.seed, s.distill.pi, s.model.question.reverse, s.label) == (7, 0.3, True, "sweep")
    assert apply_overrides({"a": {"b": 1}}, ["a.c=[1, 2]"]) == {"a": {"b": 1, "c": [1, 2]}}
    for bad in (["seed"], ["=3"], ["a..b=1"], ["seed.x=1"]):
        with pytest.raises(SettingsError, match="--set"):
            load_settings(cfg, bad)
    with pytest.raises(SettingsError, match="unknown distill setting"):
        load_settings(cfg, ["distill.p=0.3"])


def test_cli_set_and_reuse_errors(tmp_path, capsys):
    cfg = _config(tmp_path, train={"epochs": 1})
    assert main([cfg, "--set", "nonsense", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "--set 'nonsense'" in capsys.readouterr().err
    assert main([cfg, "--reuse", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"),
                 "--quiet"]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_glove_vectors_initialise_the_embeddings(tmp_path):
    words = {"which": 0.5, "quadrant": -0.25, "red": 1.0, "green": 2.0}
    glove = tmp_path / "glove.txt"
    glove.write_text("".join(f"{w} " + " ".join([str(v)] * 8) + "\n" for w, v in words.items()))
    model = {**TOKENS_MODEL, "question": {**TOKENS_MODEL["question"], "glove": str(glove)}}
    cfg = _config(tmp_path, experiment="single", model=model, train={"epochs": 1})
    logs = []
    runner = Runner(load_settings(cfg), tmp_path / "out", log=logs.append)
    net = runner._new_model("baseline", "net")
    emb = net.head.question.embedding.weight
    vocab = runner.vocabulary
    for w, v in words.items():
        assert torch.all(emb[vocab.id(w)] == v)
    assert torch.all(emb[0] == 0)
    assert any("4 of" in m and "random" in m for m in logs)
    bad = {**TOKENS_MODEL, "question": {**TOKENS_MODEL["question"], "glove": str(glove),
                                        "embed_dim": 5}}
    with pytest.raises(DataError, match="glove.txt"):
        Runner(load_settings(_config(tmp_path, "bad.yaml", experiment="single", model=bad)),
               tmp_path / "bad")._new_model("baseline", "net")
    missing = {**TOKENS_MODEL, "question": {**TOKENS_MODEL["question"],
                                            "glove": str(tmp_path / "none.txt")}}
    assert main([_config(tmp_path, "m.yaml", experiment="single", model=missing),
                 "--out", str(tmp_path / "m"), "--quiet"]) == 2


def test_text_questions_need_a_token_encoder(tmp_path):
    with pytest.raises(SettingsError, match="question.kind: tokens"):
        load_settings(_config(tmp_path, model={"question": {"kind": "onehot"}}))


def test_device_setting(tmp_path):
    with pytest.raises(SettingsError, match="device must be"):
        load_settings(_config(tmp_path), ["device=gpu"])
    if not torch.cuda.is_available():
        with pytest.raises(SettingsError, match="no CUDA GPU"):
            Runner(load_settings(_config(tmp_path), ["device=cuda"]), tmp_path / "o")
    assert Runner(load_settings(_config(tmp_path), ["device=auto"]), tmp_path / "o").device.type \
        == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_short_run_on_the_gpu_matches_the_cpu_closely(tmp_path):
    cfg = _config(tmp_path, experiment="single", train={"epochs": 1})
    cpu = Runner(load_settings(cfg), tmp_path / "cpu").run()["baseline"]
    gpu = Runner(load_settings(cfg, ["device=cuda"]), tmp_path / "gpu").run()["baseline"]
    assert abs(cpu.history[0]["train_loss"] - gpu.history[0]["train_loss"]) < 1e-2


def test_checkpoints_from_before_a_new_setting_still_resume(tmp_path):
    """A setting added to the code later (absent from an old checkpoint) matches its default;
    the device never matters (a CPU run may resume on a GPU)."""
    from vqa_adapters.distill.runner import _comparable, _same_settings

    s = load_settings(_config(tmp_path))
    saved = _comparable(s, "baseline")
    old = {**saved, "data": {k: v for k, v in saved["data"].items() if k != "vocab_min_count"}}
    assert _same_settings(old, s, "baseline")
    assert not _same_settings(old, load_settings(_config(tmp_path), ["data.vocab_min_count=2"]),
                              "baseline")
    assert _same_settings(saved, load_settings(_config(tmp_path), ["device=auto"]), "baseline")
    assert not _same_settings(saved, load_settings(_config(tmp_path), ["train.lr=0.5"]),
                              "baseline")

"""``vqa-sort-of-clevr`` end to end, and failures that leave nothing behind."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from hlmrf.errors import DataError, SettingsError
from vqa_adapters.cli import sort_of_clevr as cli
from vqa_adapters.cli.sort_of_clevr import main
from vqa_adapters.sort_of_clevr import io as soc_io
from vqa_adapters.sort_of_clevr import load_sort_of_clevr

ARGS = ["--seed", "4", "--train", "6", "--val", "2", "--test", "3", "--size", "64",
        "--questions-per-image", "5", "--relational-share", "0.4"]
EXPECTED = {"dataset.json", "train.npz", "train.json", "val.npz", "val.json", "test.npz", "test.json",
            ".hlmrf-manifest"}


def test_end_to_end(tmp_path, capsys, monkeypatch):
    from hlmrf.infra import Progress

    bars = []

    class Recording(Progress):  # the real bar draws nothing for runs this short
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(cli, "Progress", Recording)
    out = tmp_path / "new" / "dir"
    assert main(["--out", str(out), *ARGS]) == 0
    captured = capsys.readouterr()
    assert [(b.total, b.n) for b in bars] == [(11, 11)]
    assert captured.out.startswith(f"wrote {out}: train 6, val 2, test 3 images")
    assert {p.name for p in out.iterdir()} == EXPECTED  # no temporary files left
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["seed"] == 4
    assert meta["settings"] == {"seed": 4, "train": 6, "val": 2, "test": 3, "size": 64,
                                "object_size": 5, "questions_per_image": 5,
                                "relational_share": 0.4}
    assert meta["answers"] == ["yes", "no", "rectangle", "circle", "1", "2", "3", "4", "5", "6"]
    assert meta["colors"] == ["red", "green", "blue", "orange", "gray", "yellow"]
    assert [t["code"] for t in meta["question_types"]] == list(range(6))
    for split, n in [("train", 6), ("val", 2), ("test", 3)]:
        with np.load(out / f"{split}.npz") as z:
            assert set(z.files) == {"images", "questions", "answers", "question_types"}
            assert z["images"].shape == (n, 64, 64, 3) and z["images"].dtype == np.uint8
            assert z["questions"].shape == (n, 5, 11) and z["questions"].dtype == np.uint8
            assert z["answers"].shape == (n, 5) and z["answers"].dtype == np.int64
            assert z["question_types"].shape == (n, 5) and z["question_types"].dtype == np.int8
        data = load_sort_of_clevr(out, split)
        assert len(data) == n and data.images.shape == (n, 64, 64, 3)
        assert data.records[0][0].text.endswith("?")
        assert [q.answer for q in data.records[-1]] == data.answers[-1].tolist()


def test_console_script_module_runs(tmp_path):
    out = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "vqa_adapters.cli.sort_of_clevr", "--out",
                           str(out), "--train", "2", "--val", "1", "--test", "1", "--quiet"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert {p.name for p in out.iterdir()} == EXPECTED


@pytest.mark.parametrize("bad, reason", [
    (["--train", "-1"], "train must be >= 0"),
    (["--size", "20"], "only guarantees room for 4"),
    (["--relational-share", "2"], "relational_share"),
    (["--size", "big"], "invalid int value"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_invalid_arguments_exit_2_with_one_line_and_no_files(tmp_path, capsys, bad, reason):
    out = tmp_path / "out"
    try:
        rc = main(["--out", str(out), *bad])
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and reason in err
    assert not out.exists()


def test_failure_mid_write_leaves_no_files(tmp_path, capsys, monkeypatch):
    real = soc_io.split_to_json

    def failing(data):
        if data.split == "test":
            raise OSError("No space left on device")
        return real(data)

    monkeypatch.setattr(soc_io, "split_to_json", failing)
    out = tmp_path / "a" / "b"
    assert main(["--out", str(out), *ARGS, "--quiet"]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.rglob("*.tmp"))
    assert not any(p.name != "b" and "staging" in p.name for p in tmp_path.rglob("*"))

    # in an existing folder, other files are untouched and nothing is added
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    assert main(["--out", str(keep), *ARGS, "--quiet"]) == 1
    assert [p.name for p in keep.iterdir()] == ["notes.txt"]


def test_interrupted_run_leaves_no_files(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(soc_io, "dataset_metadata", interrupted)
    out = tmp_path / "out"
    assert main(["--out", str(out), *ARGS, "--quiet"]) == 130
    assert not out.exists()


def test_out_is_a_file(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["--out", str(target), *ARGS, "--quiet"]) == 1  # an output problem (run_cli)
    assert "is not a folder" in capsys.readouterr().err
    assert target.read_text() == "x"


def test_rerun_overwrites_in_place(tmp_path):
    out = tmp_path / "out"
    assert main(["--out", str(out), *ARGS, "--quiet"]) == 0
    assert main(["--out", str(out), "--seed", "5", "--train", "1", "--val", "1", "--test", "1",
                 "--quiet"]) == 0
    assert {p.name for p in out.iterdir()} == EXPECTED
    assert len(load_sort_of_clevr(out, "train")) == 1


def test_loader_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="dataset.json: file not found"):
        load_sort_of_clevr(tmp_path, "train")
    assert main(["--out", str(tmp_path), *ARGS, "--quiet"]) == 0
    with pytest.raises(SettingsError, match="unknown split 'dev'"):
        load_sort_of_clevr(tmp_path, "dev")
    (tmp_path / "val.npz").unlink()
    with pytest.raises(DataError, match="val.npz: file not found"):
        load_sort_of_clevr(tmp_path, "val")
    (tmp_path / "test.json").write_text("{not json")
    with pytest.raises(DataError, match="test.json:1: not valid JSON"):
        load_sort_of_clevr(tmp_path, "test")

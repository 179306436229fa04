"""Tiny inputs for the hardening tests of the vqa commands (issue 13): one CLEVR scene with three
questions, a Sort-of-CLEVR dataset of three images, a two-epoch synthetic training config, and a
helper that runs a command in-process and returns (exit code, stdout, stderr)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "data" / "clevr"
SCENES = DATA / "CLEVR_val_scenes_000000-000499.json"
QUESTIONS = DATA / "CLEVR_val_questions_img000000_7q.json"
IMAGE0 = DATA / "CLEVR_val_000000.png"


def tiny_scenes() -> dict:
    doc = json.loads(SCENES.read_text())
    doc["scenes"] = doc["scenes"][:1]
    return doc


def tiny_questions() -> dict:
    doc = json.loads(QUESTIONS.read_text())
    doc["questions"] = doc["questions"][:3]
    return doc


@pytest.fixture
def clevr_files(tmp_path):
    s, q = tmp_path / "s.json", tmp_path / "q.json"
    s.write_text(json.dumps(tiny_scenes()))
    q.write_text(json.dumps(tiny_questions()))
    return s, q


def run_main(main, argv, capsys) -> tuple[int, str, str]:
    """Run a command's ``main(argv)`` in-process; argparse's SystemExit becomes its code."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def snapshot(folder: Path) -> dict | None:
    """``{relative path: bytes}`` of every file under ``folder`` (None if absent)."""
    if not folder.exists():
        return None
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


TINY_MODEL = {"preset": "small", "conv_channels": [4], "g_units": [4], "f_units": [4],
              "n_answers": 4, "question": {"out_dim": 4}}


def train_config(epochs: int = 2, experiment: str = "single") -> dict:
    return {"experiment": experiment, "seed": 3, "num_threads": 1,
            "data": {"kind": "synthetic", "synthetic_train": 8, "synthetic_eval": 4,
                     "synthetic_questions": 2, "synthetic_size": 8},
            "model": TINY_MODEL, "train": {"epochs": epochs, "batch_size": 8, "lr": 0.01},
            "distill": {"pi": 0.5}}


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path, monkeypatch):
    """Every test runs in its own temporary folder, so no relative path (``--out .``) can ever
    reach the checkout."""
    monkeypatch.chdir(tmp_path)

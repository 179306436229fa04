"""SIGKILL at random moments, 20 trials per command (issue 13): afterwards the output folder is
absent, exactly the previous run's, or complete, never a mix; nothing half-written lies inside it,
and the next run removes what the killed one left beside it.

Each trial forks the test process (the modules are already imported, so a trial costs the run's
own time, not an interpreter start) and kills the child after a delay drawn uniformly from
[0, 1.2 x the run's measured duration]."""
from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import signal
import time

import numpy as np
import pytest

from hlmrf.infra import MANIFEST
from vqa_adapters.cli import masks as masks_cli
from vqa_adapters.cli import sort_of_clevr as soc_cli
from vqa_adapters.cli import train as train_cli

from .conftest import DATA, snapshot, tiny_questions, tiny_scenes, train_config

TRIALS = 20


def _fork(main, argv, kill_after: float | None, limit: float = 120.0) -> tuple[int | None, float]:
    """Run ``main(argv)`` in a forked child; SIGKILL it after ``kill_after`` seconds (None: let it
    finish). Returns (exit code or None if killed, seconds)."""
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: quiet, and never back into pytest
        code = 99
        try:
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            code = main([str(a) for a in argv])
        finally:
            os._exit(code)
    deadline = t0 + (limit if kill_after is None else kill_after)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return (os.waitstatus_to_exitcode(status), time.perf_counter() - t0)
        if time.perf_counter() >= deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return (None, time.perf_counter() - t0)
        time.sleep(0.002)


def _manifest_whole(out) -> list[str]:
    """The files the manifest names all exist, and nothing half-written lies in the folder."""
    names = (out / MANIFEST).read_text().split()
    assert all((out / n).is_file() for n in names), names
    assert not [p for p in out.rglob("*") if ".tmp" in p.name or "staging" in p.name]
    return names


def _trials(tmp_path, main, argv_for, previous_for, complete, rng, rerun=()):
    """Run the trials; ``complete(out)`` asserts a finished output. Returns the outcome counts."""
    probe = tmp_path / "probe"
    rc, duration = _fork(main, argv_for(probe / "out"), None)
    assert rc == 0
    complete(probe / "out")
    outcomes = {"absent": 0, "previous": 0, "complete": 0}
    for k in range(TRIALS):
        trial = tmp_path / f"t{k}"
        trial.mkdir()
        out = trial / "out"
        before = previous_for(out) if (previous_for is not None and k % 2) else None
        _fork(main, argv_for(out), rng.uniform(0, 1.2 * duration))
        now = snapshot(out)
        if now is None:
            assert before is None
            outcomes["absent"] += 1
        elif before is not None and now == before:
            outcomes["previous"] += 1
        else:
            complete(out)
            outcomes["complete"] += 1
        if k == TRIALS - 1:  # the next run cleans what a killed one left beside the folder
            assert _fork(main, [*argv_for(out), *rerun], None)[0] == 0
            complete(out)
            assert sorted(p.name for p in trial.iterdir() if not p.name.endswith(".lock")) == ["out"]
    return outcomes


def test_kill_vqa_masks(tmp_path):
    rng = random.Random(1)
    s, q = tmp_path / "s.json", tmp_path / "q.json"
    s.write_text(json.dumps(tiny_scenes()))
    q.write_text(json.dumps(tiny_questions()))
    base = ["--scenes", s, "--questions", q, "--solver", "numpy", "--images", DATA, "--quiet"]
    prev = tmp_path / "prev"
    assert _fork(masks_cli.main, [*base, "--out", prev, "--size", "8x8", "--previews", "1"], None)[0] == 0

    def previous_for(out):
        shutil.copytree(prev, out)
        return snapshot(out)

    def complete(out):
        names = _manifest_whole(out)
        assert set(names) == {"masks.npz", "choices.json", "report.json", "report.md",
                              "previews/q0.png", "previews/q1.png", "previews/q3.png"}
        with np.load(out / "masks.npz") as z:
            assert z["masks"].shape == (3, 48, 64)
        json.loads((out / "report.json").read_text())

    outcomes = _trials(tmp_path, masks_cli.main,
                       lambda out: [*base, "--out", out, "--size", "64x48", "--previews", "3"],
                       previous_for, complete, rng)
    print(f"vqa-masks kill trials: {outcomes}")


def test_kill_vqa_sort_of_clevr(tmp_path):
    rng = random.Random(2)
    tiny = ["--train", "40", "--val", "10", "--test", "10", "--quiet"]
    prev = tmp_path / "prev"
    assert _fork(soc_cli.main, ["--out", prev, "--seed", "9", "--train", "1", "--val", "1",
                                "--test", "1", "--quiet"], None)[0] == 0

    def previous_for(out):
        shutil.copytree(prev, out)
        (out / "masks").mkdir()
        (out / "masks" / "mine.npz").write_bytes(b"user file")  # kept by every run
        return snapshot(out)

    def complete(out):
        names = _manifest_whole(out)
        assert set(names) == {f"{s}.{e}" for s in ("train", "val", "test") for e in ("npz", "json")} | {"dataset.json"}
        meta = json.loads((out / "dataset.json").read_text())
        assert meta["settings"]["train"] == 40
        with np.load(out / "train.npz") as z:
            assert z["images"].shape[0] == 40

    outcomes = _trials(tmp_path, soc_cli.main, lambda out: ["--out", out, *tiny], previous_for,
                       complete, rng)
    print(f"vqa-sort-of-clevr kill trials: {outcomes}")


def test_kill_vqa_train(tmp_path):
    pytest.importorskip("torch")
    yaml = pytest.importorskip("yaml")
    from vqa_adapters.distill.checkpoint import load_checkpoint

    rng = random.Random(3)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(train_config(epochs=3)))
    # Warm torch up here (its first run pays ~2 s of lazy set-up), so every forked trial
    # inherits it and the kills land in the training, not in the set-up.
    assert train_cli.main([str(cfg), "--out", str(tmp_path / "warm"), "--quiet"]) == 0
    states = {"partial": 0}

    def consistent(out):
        """An epoch's snapshot: its checkpoint and its metrics agree."""
        names = _manifest_whole(out)
        assert {"baseline/checkpoint.pt", "metrics.csv", "accuracy.png"} <= set(names)
        ck = load_checkpoint(out / "baseline" / "checkpoint.pt")
        rows = list(csv.DictReader(io.StringIO((out / "metrics.csv").read_text())))
        assert max(int(r["epoch"]) for r in rows) == ck["epoch"] == len(rows)
        return ck

    def complete(out):
        ck = consistent(out)
        if ck["epoch"] < 3 or ck["test"] is None:
            states["partial"] += 1  # an earlier epoch's whole snapshot (resumable)

    outcomes = _trials(tmp_path, train_cli.main, lambda out: [cfg, "--out", out, "--quiet"], None,
                       complete, rng, rerun=["--resume"])
    print(f"vqa-train kill trials: {outcomes}, of which earlier-epoch snapshots: {states['partial']}")

"""``vqa-masks --shard K/N`` and ``vqa-masks merge``: the merged shards are the unsharded run.

The reference is the unsharded run of the same command on the same files: the merged
``masks.npz`` must hold the same arrays, ``choices.json`` the same bytes, the reports the same text
except their timings (which differ between any two runs), and the same previews. Then: resuming
skips finished shards, and bad shard specs or mismatched shard folders fail with exit 2 and
write nothing.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from vqa_adapters.cli.masks import main

DATA = __import__("pathlib").Path(__file__).resolve().parents[1] / "data" / "clevr"
SCENES = DATA / "CLEVR_val_scenes_000000-000499.json"


@pytest.fixture(scope="module")
def questions(mixed_question_file):
    """57 questions over 6 scenes: image-0 questions (which have a preview image) spread over the
    shards, and one question the parser cannot read."""
    return mixed_question_file(lambda gen, off: gen[10:30] + off[:3] + gen[30:50] + off[3:] + gen[:10])


def _masks(questions, out, *extra):
    return main(["--scenes", str(SCENES), "--questions", str(questions), "--out", str(out), "--quiet",
                 "--size", "48x32", *extra])


def _without_timings(text: str) -> str:
    text = re.sub(r'"timings_seconds": \{[^}]*\}', "", text)
    return re.sub(r"Timings: .*", "", text)


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory, questions):
    out = tmp_path_factory.mktemp("one") / "out"
    assert _masks(questions, out, "--images", str(DATA), "--previews", "4") == 0
    return out


@pytest.mark.parametrize("n", [1, 4, 9])
def test_merged_shards_are_the_unsharded_run(tmp_path, questions, unsharded, n):
    dirs = [tmp_path / f"shard{k}" for k in range(n)]
    for k, d in enumerate(dirs):
        assert _masks(questions, d, "--shard", f"{k}/{n}", "--images", str(DATA), "--previews", "4") == 0
    merged = tmp_path / "merged"
    assert main(["merge", *map(str, reversed(dirs)), "--out", str(merged)]) == 0  # any order
    assert (merged / "choices.json").read_bytes() == (unsharded / "choices.json").read_bytes()
    with np.load(merged / "masks.npz") as a, np.load(unsharded / "masks.npz") as b:
        assert a.files == b.files
        for key in b.files:
            assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key
    for name in ("report.json", "report.md"):
        assert _without_timings((merged / name).read_text()) == _without_timings((unsharded / name).read_text())
    assert json.loads((merged / "report.json").read_text())["unparsed"] == 1
    previews = sorted(p.name for p in (unsharded / "previews").glob("*.png"))
    assert previews == ["q1000.png", "q1001.png", "q1002.png", "q1003.png"]
    assert sorted(p.name for p in (merged / "previews").glob("*.png")) == previews
    for name in previews:
        assert (merged / "previews" / name).read_bytes() == (unsharded / "previews" / name).read_bytes()
    assert not (merged / "shard.json").exists()
    shard_sizes = [json.loads((d / "shard.json").read_text())["questions"] for d in dirs]
    assert sum(s["stop"] - s["start"] for s in shard_sizes) == 57


def test_more_shards_than_questions(tmp_path, capsys):
    """10 shards of the 7 official questions: three shards are empty, and merge still gives the
    unsharded run. (One-question shards of a question without candidate objects, such as
    generated question 47, are covered by tests/vqa/psl/test_cli_and_data.py.)"""
    questions = DATA / "CLEVR_val_questions_img000000_7q.json"
    assert _masks(questions, tmp_path / "one") == 0
    for k in range(10):
        assert _masks(questions, tmp_path / f"s{k}", "--shard", f"{k}/10") == 0
    assert "0 questions" in capsys.readouterr().out
    assert main(["merge", *(str(tmp_path / f"s{k}") for k in range(10)), "--out", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "choices.json").read_bytes() == (tmp_path / "one" / "choices.json").read_bytes()
    with np.load(tmp_path / "m" / "masks.npz") as a, np.load(tmp_path / "one" / "masks.npz") as b:
        assert all(np.array_equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in b.files)


def test_a_rerun_skips_a_finished_shard_and_redoes_an_unfinished_one(tmp_path, questions, capsys):
    done = tmp_path / "s0"
    assert _masks(questions, done, "--shard", "0/2") == 0
    before = {p.name: p.stat().st_mtime_ns for p in done.iterdir()}
    assert _masks(questions, done, "--shard", "0/2") == 0
    assert "already holds shard 0/2 of this run: skipped" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in done.iterdir()} == before
    assert _masks(questions, done, "--shard", "0/2", "--force") == 0
    assert "skipped" not in capsys.readouterr().out
    # a folder without shard.json (what a killed run leaves: the old output or nothing) is redone
    killed = tmp_path / "s1"
    killed.mkdir()
    (killed / "choices.json").write_text("stale")
    assert _masks(questions, killed, "--shard", "1/2") == 0
    assert (killed / "shard.json").is_file() and (killed / "choices.json").read_text() != "stale"
    # the same folder asked to hold another shard, or other settings: refused unless --force
    assert _masks(questions, killed, "--shard", "0/2") == 2
    assert "holds shard 1/2 of another run or with other settings" in capsys.readouterr().err
    assert _masks(questions, killed, "--shard", "1/2", "--weighted") == 2
    assert "--force" in capsys.readouterr().err


@pytest.mark.parametrize("spec", ["3/2", "0/0", "a/b", "2", "-1/2", "1/2/3"])
def test_bad_shard_specs_write_nothing(tmp_path, questions, capsys, spec):
    assert _masks(questions, tmp_path / "out", f"--shard={spec}") == 2
    err = capsys.readouterr().err
    assert f"--shard {spec!r}: expected K/N with 0 <= K < N" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("extra, message", [
    (["--solver", "numpy"], "--shard with --solver numpy"),
    (["--force"], None),
])
def test_shard_option_conflicts(tmp_path, questions, capsys, extra, message):
    args = extra if message is None else ["--shard", "0/2", *extra]
    assert _masks(questions, tmp_path / "out", *args) == 2
    assert (message or "--force applies only with --shard") in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def two_shards(tmp_path_factory, questions):
    base = tmp_path_factory.mktemp("shards")
    for k in range(2):
        assert _masks(questions, base / f"s{k}", "--shard", f"{k}/2") == 0
    assert _masks(questions, base / "other-size", "--shard", "1/2", "--size", "32x32") == 0
    assert _masks(questions, base / "of3", "--shard", "1/3") == 0
    (base / "plain").mkdir()
    return base


@pytest.mark.parametrize("folders, culprit, message", [
    (["s0"], "s0", "shard(s) 1/2 missing"),
    (["s0", "other-size"], "other-size", "settings differ from those of"),
    (["s0", "of3"], "of3", "shard count differ from those of"),
    (["s0", "s1", "s1"], "s1", "shard 1/2 twice"),
    (["s0", "plain"], "plain", "no shard.json: not a finished vqa-masks --shard run"),
    (["s0", "nowhere"], "nowhere", "not a folder"),
])
def test_merging_wrong_folders_names_the_folder_and_writes_nothing(tmp_path, two_shards, capsys,
                                                                   folders, culprit, message):
    out = tmp_path / "merged"
    assert main(["merge", *(str(two_shards / f) for f in folders), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(two_shards / culprit) in err and err.count("\n") == 1
    assert not out.exists()


def test_merge_into_a_shard_folder_is_refused(two_shards, capsys):
    assert main(["merge", str(two_shards / "s0"), str(two_shards / "s1"), "--out", str(two_shards / "s0")]) == 2
    assert "overlaps the shard folder" in capsys.readouterr().err
    assert (two_shards / "s0" / "shard.json").is_file()

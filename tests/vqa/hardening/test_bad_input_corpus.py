"""Every vqa command on a seeded corpus of generated bad inputs (issue 13): malformed JSON, wrong
types, bad bytes, missing and odd paths, bad options. For every case: no traceback, one line on
stderr when it fails, the documented exit code (0 when the mutation happened to be harmless, 2 for
bad input, 1 for an output path that cannot be written), and the output folder absent or exactly as
the previous run left it."""
from __future__ import annotations

import copy
import json
import os
import random
import shutil
import subprocess
import sys

import pytest

from vqa_adapters.cli import masks as masks_cli
from vqa_adapters.cli import sort_of_clevr as soc_cli
from vqa_adapters.cli import train as train_cli

from .conftest import run_main, snapshot, tiny_questions, tiny_scenes, train_config

BAD_VALUES = [None, "cube", "abc", "", [], {}, [1, 2], -1, 0, 10**30, 1.5, True, float("nan"),
              float("inf"), -1e308, "\x00", "x" * 5000, [None], {"a": []}]


def _paths(doc, prefix=()):
    """Every (path) to a value inside ``doc``."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


def mutate_doc(doc, rng: random.Random):
    """One structural mutation of a JSON document: replace, delete or wrap a value."""
    doc = copy.deepcopy(doc)
    paths = [p for p in _paths(doc) if p]
    path = rng.choice(paths)
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    key = path[-1]
    op = rng.random()
    if op < 0.6:
        parent[key] = rng.choice(BAD_VALUES)
    elif op < 0.8:
        del parent[key]
    else:
        parent[key] = [parent[key]] if rng.random() < 0.5 else {"v": parent[key]}
    return doc


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    op = rng.randrange(6)
    i = rng.randrange(len(data))
    if op == 0:
        return data[:i]  # truncated
    if op == 1:
        return data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]
    if op == 2:
        return data[:i] + b"\xff\xfe" + data[i:]  # not UTF-8
    if op == 3:
        return data[:i] + b"\x00" + data[i:]
    if op == 4:
        return b"\xef\xbb\xbf" + data  # a BOM: must be accepted
    return b"[" * 50_000 + b"]" * 50_000  # nesting


def write_case(tmp, name, base, rng):
    """A mutated file (or odd path) named ``name`` in ``tmp``; returns its path."""
    p = tmp / name
    r = rng.random()
    if r < 0.55:
        p.write_text(json.dumps(mutate_doc(base, rng)))
    elif r < 0.85:
        p.write_bytes(mutate_bytes(json.dumps(base).encode(), rng))
    else:
        kind = rng.choice(["missing", "folder", "empty", "dangling", "fifo", "null", "list"])
        if kind == "folder":
            p.mkdir()
        elif kind == "empty":
            p.write_bytes(b"")
        elif kind == "dangling":
            os.symlink(tmp / "nowhere", p)
        elif kind == "fifo":
            os.mkfifo(p)
        elif kind == "null":
            p.write_text("null")
        elif kind == "list":
            p.write_text("[]")
    return p


class Tally:
    def __init__(self):
        self.cases = 0
        self.codes: dict[int, int] = {}
        self.bad: list[str] = []

    def check(self, what, rc, err, out, before, allowed=(0, 2)):
        self.cases += 1
        self.codes[rc] = self.codes.get(rc, 0) + 1
        problems = []
        if "Traceback" in err:
            problems.append("traceback")
        if rc not in allowed:
            problems.append(f"exit {rc}")
        if rc != 0:
            if len(err.strip().splitlines()) != 1:
                problems.append("not one line")
            if snapshot(out) != before:
                problems.append("output changed")
        if problems:
            self.bad.append(f"{what}: {', '.join(problems)}: {err.strip()[:300]}")


@pytest.fixture(scope="module")
def previous_masks(tmp_path_factory):
    """A complete previous vqa-masks output, copied into the cases' output folders."""
    d = tmp_path_factory.mktemp("prev")
    s, q = d / "s.json", d / "q.json"
    s.write_text(json.dumps(tiny_scenes()))
    q.write_text(json.dumps(tiny_questions()))
    assert masks_cli.main(["--scenes", str(s), "--questions", str(q), "--out", str(d / "out"),
                           "--solver", "numpy", "--size", "16x16", "--quiet"]) == 0
    return d


def test_vqa_masks_on_generated_bad_documents(tmp_path, capsys, previous_masks):
    rng = random.Random(13)
    tally = Tally()
    good_s, good_q = previous_masks / "s.json", previous_masks / "q.json"
    for k in range(200):
        case = tmp_path / f"c{k}"
        case.mkdir()
        which = rng.random()
        s = write_case(case, "s.json", tiny_scenes(), rng) if which < 0.5 else good_s
        q = write_case(case, "q.json", tiny_questions(), rng) if which >= 0.5 else good_q
        out = case / "out"
        if k % 2:
            shutil.copytree(previous_masks / "out", out)
        before = snapshot(out)
        rc, _, err = run_main(masks_cli.main, ["--scenes", s, "--questions", q, "--out", out,
                                               "--solver", "numpy", "--size", "16x16", "--quiet"], capsys)
        tally.check(f"case {k} ({s.name if which < .5 else q.name})", rc, err, out, before)
    print(f"vqa-masks documents: {tally.cases} cases, exit codes {tally.codes}")
    assert not tally.bad, "\n".join(tally.bad)
    assert tally.codes.get(2, 0) >= 100


MASK_OPTIONS = [
    ["--size", "0x5"], ["--size", "abc"], ["--size", "1x2x3"], ["--size", "-5"],
    ["--size", "100000x100000"], ["--size", "9" * 5000], ["--size", ""], ["--device", "banana"],
    ["--device", "cuda:99"], ["--device", ""], ["--chunk-size", "0"], ["--chunk-size", "x"],
    ["--previews", "-3"], ["--max-mask-gib", "nan"], ["--max-mask-gib", "-1"], ["--max-mask-gib", "inf"],
    ["--rules", "/nonexistent.psl"], ["--rules", "."], ["--rules", "banana"], ["--parser", "bogus"],
    ["--solver", "cvx"], ["--images", "/nonexistent"], ["--bogus"], ["--sort-of-clevr", "/nonexistent"],
    ["--scenes", "/nonexistent.json"], ["--questions", "/dev/null"], ["--out", "/proc/nope/out"],
    ["--out", "/dev/null"], ["--rules", "/dev/null"], ["--out", "."], ["--out", ".."],
]


def test_vqa_masks_on_bad_options(tmp_path, capsys, previous_masks, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tally = Tally()
    base = ["--scenes", previous_masks / "s.json", "--questions", previous_masks / "q.json",
            "--solver", "numpy", "--quiet"]
    for k, opts in enumerate(MASK_OPTIONS):
        out = tmp_path / f"o{k}"
        argv = [*base, "--out", out, *opts]
        if opts[0] == "--sort-of-clevr":
            argv = [*opts, "--quiet"]
        rc, _, err = run_main(masks_cli.main, argv, capsys)
        tally.check(f"options {opts[:2]}", rc, err, out, None, allowed=(1, 2) if "--out" in opts else (2,))
    print(f"vqa-masks options: {tally.cases} cases, exit codes {tally.codes}")
    assert not tally.bad, "\n".join(tally.bad)


@pytest.fixture(scope="module")
def soc_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("soc") / "data"
    assert soc_cli.main(["--out", str(root), "--train", "1", "--val", "1", "--test", "2",
                         "--questions-per-image", "2", "--quiet"]) == 0
    return root


def test_vqa_masks_on_generated_bad_sort_of_clevr_datasets(tmp_path, capsys, soc_root):
    rng = random.Random(7)
    tally = Tally()
    for k in range(30):
        root = tmp_path / f"d{k}"
        shutil.copytree(soc_root, root)
        name = rng.choice(["dataset.json", "test.json", "test.npz"])
        target = root / name
        if name.endswith(".npz") or rng.random() < 0.3:
            data = target.read_bytes()
            target.unlink()
            target.write_bytes(mutate_bytes(data, rng))
        else:
            doc = json.loads(target.read_text())
            target.write_text(json.dumps(mutate_doc(doc, rng)))
        out = root / "masks"
        rc, _, err = run_main(masks_cli.main, ["--sort-of-clevr", root, "--split", "test",
                                               "--solver", "numpy", "--quiet"], capsys)
        tally.check(f"dataset {k} ({name})", rc, err, out, None)
    print(f"vqa-masks Sort-of-CLEVR datasets: {tally.cases} cases, exit codes {tally.codes}")
    assert not tally.bad, "\n".join(tally.bad)


SOC_OPTIONS = [
    ["--train", "-1"], ["--train", "x"], ["--size", "0"], ["--size", "20"], ["--object-size", "0"],
    ["--questions-per-image", "-2"], ["--relational-share", "nan"], ["--relational-share", "inf"],
    ["--relational-share", "-0.1"], ["--relational-share", "1e400"], ["--seed", "-1"], ["--seed", "1.5"],
    ["--bogus"], ["--out"],
]


def test_vqa_sort_of_clevr_on_bad_options_and_paths(tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"  # "--out ." must never be able to touch the real working folder
    (work / "sub").mkdir(parents=True)
    (work / "mine.txt").write_text("mine")
    monkeypatch.chdir(work / "sub")
    tally = Tally()
    tiny = ["--train", "1", "--val", "1", "--test", "1", "--quiet"]
    for k, opts in enumerate(SOC_OPTIONS):
        out = tmp_path / f"o{k}"
        rc, _, err = run_main(soc_cli.main, ["--out", out, *tiny, *opts], capsys)
        tally.check(f"options {opts}", rc, err, out, None, allowed=(2,))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in [blocker, blocker / "sub", "/proc/nope", "/dev/null", ".", ".."]:
        rc, _, err = run_main(soc_cli.main, ["--out", out, *tiny], capsys)
        tally.check(f"--out {out}", rc, err, blocker if str(out).startswith(str(blocker)) else tmp_path / "none",
                    snapshot(blocker) if str(out).startswith(str(blocker)) else None, allowed=(1, 2))
    assert sorted(os.listdir(work)) == ["mine.txt", "sub"] and os.listdir(work / "sub") == []
    print(f"vqa-sort-of-clevr: {tally.cases} cases, exit codes {tally.codes}")
    assert not tally.bad, "\n".join(tally.bad)


def test_vqa_train_on_generated_bad_configs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pytest.importorskip("torch")
    yaml = pytest.importorskip("yaml")
    rng = random.Random(11)
    tally = Tally()
    base = train_config(epochs=1)
    for k in range(40):
        cfg = tmp_path / f"c{k}.{'yaml' if k % 2 else 'json'}"
        r = rng.random()
        if r < 0.75:
            doc = mutate_doc(base, rng)
            try:
                cfg.write_text(yaml.safe_dump(doc) if k % 2 else json.dumps(doc))
            except (ValueError, yaml.YAMLError):
                cfg.write_text(json.dumps(doc))
        elif r < 0.95:
            cfg.write_bytes(mutate_bytes(json.dumps(base).encode(), rng))
        else:
            cfg.mkdir()
        out = tmp_path / f"o{k}"
        rc, _, err = run_main(train_cli.main, [cfg, "--out", out, "--quiet"], capsys)
        tally.check(f"config {k}", rc, err, out, None)
    print(f"vqa-train configs: {tally.cases} cases, exit codes {tally.codes}")
    assert not tally.bad, "\n".join(tally.bad)


@pytest.mark.parametrize("module, argv", [
    ("masks", ["--scenes", "{tmp}", "--questions", "{tmp}/q.json", "--out", "{tmp}/o"]),
    ("sort_of_clevr", ["--out", "{tmp}/o", "--relational-share", "nan"]),
    ("train", ["{tmp}/missing.yaml", "--out", "{tmp}/o"]),
])
def test_real_subprocesses(tmp_path, module, argv):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    proc = subprocess.run([sys.executable, "-m", f"vqa_adapters.cli.{module}", *argv, "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()

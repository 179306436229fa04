"""One test per case of issue 13 on the vqa side; each fails on the code before the fix."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from hlmrf.errors import DataError
from vqa_adapters.cli import masks as masks_cli
from vqa_adapters.cli import sort_of_clevr as soc_cli
from vqa_adapters.cli import train as train_cli

from .conftest import DATA, IMAGE0, run_main, snapshot, tiny_questions, tiny_scenes, train_config

FAST = ["--solver", "numpy", "--size", "32x32", "--quiet"]


def _masks(capsys, s, q, out, *extra):
    return run_main(masks_cli.main, ["--scenes", s, "--questions", q, "--out", out, *FAST, *extra], capsys)


def _scene_file(tmp_path, edit):
    doc = tiny_scenes()
    edit(doc["scenes"][0])
    p = tmp_path / "bad_s.json"
    p.write_text(json.dumps(doc))
    return p


@pytest.mark.parametrize("coords, needle", [
    ([float("nan"), 100, 10], "scenes[0].objects[1].pixel_coords[0]: expected a finite number, got NaN"),
    ([100, 100, 0], "scenes[0].objects[1].pixel_coords: depth 0 must be > 0"),
    ([100, 100, -2.5], "depth -2.5 must be > 0"),
    ([100, 9999, 10], "lies outside the 480x320 CLEVR image"),
])
def test_masks_bad_coordinates_exit_2_naming_scene_and_object(tmp_path, capsys, clevr_files, coords, needle):
    def edit(scene):
        scene["objects"][1]["pixel_coords"] = coords
    s = _scene_file(tmp_path, edit)
    out = tmp_path / "out"
    rc, _, err = _masks(capsys, s, clevr_files[1], out)
    assert rc == 2 and needle in err and str(s) in err, err
    assert not out.exists()


@pytest.mark.parametrize("edit, needle", [
    (lambda sc: sc["objects"].__setitem__(0, "cube"), 'scenes[0].objects[0]: expected an object, got "cube"'),
    (lambda sc: sc["objects"].__setitem__(0, None), "scenes[0].objects[0]: expected an object, got null"),
    (lambda sc: sc["objects"][0].__setitem__("color", ["red"]), "scenes[0].objects[0].color: unknown color"),
    (lambda sc: sc["objects"][0].__setitem__("rotation", None), "rotation: expected a number, got null"),
    (lambda sc: sc.__setitem__("relationships", []), "scenes[0].relationships: expected an object"),
    (lambda sc: sc["objects"][0].__setitem__("3d_coords", ["abc", 1, 2]), 'expected a number, got "abc"'),
])
def test_masks_wrongly_typed_scene_exit_2_without_traceback(tmp_path, capsys, clevr_files, edit, needle):
    s = _scene_file(tmp_path, edit)
    rc, _, err = _masks(capsys, s, clevr_files[1], tmp_path / "out")
    assert rc == 2 and needle in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1


def test_masks_wrongly_typed_question_inputs(tmp_path, capsys, clevr_files):
    doc = tiny_questions()
    doc["questions"][1]["program"][1]["inputs"] = 0
    q = tmp_path / "bad_q.json"
    q.write_text(json.dumps(doc))
    rc, _, err = _masks(capsys, clevr_files[0], q, tmp_path / "out")
    assert rc == 2 and "questions[1].program[1].inputs: expected a list, got 0" in err, err


def test_masks_folder_as_input_exits_2(tmp_path, capsys, clevr_files):
    rc, _, err = _masks(capsys, tmp_path, clevr_files[1], tmp_path / "out")
    assert rc == 2 and "is a folder" in err, err


def test_masks_huge_size_refused_before_work(tmp_path, capsys, clevr_files, monkeypatch):
    import vqa_adapters.psl.pipeline as pipeline

    def never(*a, **k):
        raise AssertionError("the pipeline ran")

    monkeypatch.setattr(pipeline, "clevr_pipeline", never)
    rc, _, err = run_main(masks_cli.main, ["--scenes", clevr_files[0], "--questions", clevr_files[1],
                                           "--out", tmp_path / "out", "--size", "100000x100000",
                                           "--quiet"], capsys)
    assert rc == 2 and "GiB" in err and "smaller --size" in err and "--max-mask-gib" in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("device", ["banana", "cpu:0", "cuda:x"])
def test_masks_bad_device_lists_the_valid_ones(tmp_path, capsys, clevr_files, device):
    rc, _, err = _masks(capsys, *clevr_files, tmp_path / "out", "--solver", "torch", "--device", device)
    assert rc == 2 and "choose one of cpu" in err and "Traceback" not in err, err


def test_masks_cuda_without_cuda_says_so(tmp_path, capsys, clevr_files):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    rc, _, err = _masks(capsys, *clevr_files, tmp_path / "out", "--solver", "torch", "--device", "cuda")
    assert rc == 2 and "CUDA is not available" in err and "--device cpu" in err, err


@pytest.mark.parametrize("opts, needle", [
    (["--previews", "-1"], "--previews must be >= 0"),
    (["--chunk-size", "0"], "--chunk-size must be >= 1"),
    (["--max-mask-gib", "nan"], "--max-mask-gib must be a positive number"),
    (["--images", "/nonexistent/folder"], "--images /nonexistent/folder: not a folder"),
    (["--rules", "/nonexistent.psl"], "/nonexistent.psl"),
])
def test_masks_option_values_checked_before_work(tmp_path, capsys, clevr_files, opts, needle):
    rc, _, err = _masks(capsys, *clevr_files, tmp_path / "out", *opts)
    assert rc == 2 and needle in err, err
    assert not (tmp_path / "out").exists()


def test_masks_truncated_image_names_it_and_leaves_previous_output(tmp_path, capsys, clevr_files):
    images = tmp_path / "images"
    images.mkdir()
    (images / IMAGE0.name).write_bytes(IMAGE0.read_bytes())
    out = tmp_path / "out"
    rc, _, err = _masks(capsys, *clevr_files, out, "--images", images, "--previews", "2")
    assert rc == 0, err
    assert sorted(p.name for p in (out / "previews").iterdir()) == ["q0.png", "q1.png"]
    before = snapshot(out)
    (images / IMAGE0.name).write_bytes(IMAGE0.read_bytes()[:3000])  # truncated PNG
    rc, _, err = _masks(capsys, *clevr_files, out, "--images", images, "--previews", "2", "--size", "16x16")
    assert rc == 2 and str(images / IMAGE0.name) in err and "cannot read the image" in err, err
    assert snapshot(out) == before  # masks, reports and previews all as they were
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name]
    assert not list(tmp_path.rglob("*.tmp*"))


def test_masks_previews_are_part_of_the_run(tmp_path, capsys, clevr_files):
    """A rerun with fewer previews leaves no stale preview of the previous run."""
    out = tmp_path / "out"
    assert _masks(capsys, *clevr_files, out, "--images", DATA, "--previews", "3")[0] == 0
    assert len(list((out / "previews").iterdir())) == 3
    (out / "my_notes.txt").write_text("mine")
    assert _masks(capsys, *clevr_files, out, "--images", DATA, "--previews", "1")[0] == 0
    assert [p.name for p in (out / "previews").iterdir()] == ["q0.png"]
    assert (out / "my_notes.txt").read_text() == "mine"


def test_masks_memory_error_is_one_line_exit_1(tmp_path, capsys, clevr_files, monkeypatch):
    import vqa_adapters.psl.masks as masks

    def oom(*a, **k):
        raise MemoryError

    # the renderer the command uses (masks_npz_streamed), while the deflating thread waits
    monkeypatch.setattr(masks, "render_masks_into", oom)
    rc, _, err = _masks(capsys, *clevr_files, tmp_path / "out")
    assert rc == 1 and "out of memory" in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_masks_output_path_is_a_file(tmp_path, capsys, clevr_files):
    f = tmp_path / "out"
    f.write_text("x")
    rc, _, err = _masks(capsys, *clevr_files, f)
    assert rc == 1 and "not a folder" in err and f.read_text() == "x", err


@pytest.fixture(scope="module")
def soc_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("soc") / "data"
    assert soc_cli.main(["--out", str(root), "--train", "2", "--val", "2", "--test", "2",
                         "--questions-per-image", "2", "--quiet"]) == 0
    return root


def test_sort_of_clevr_masks_of_each_split_are_kept(soc_dataset, capsys):
    for split in ("test", "val"):
        rc, _, err = run_main(masks_cli.main, ["--sort-of-clevr", soc_dataset, "--split", split,
                                               "--solver", "numpy", "--quiet"], capsys)
        assert rc == 0, err
    names = {p.name for p in (soc_dataset / "masks").iterdir()}
    assert {"test.npz", "val.npz", "test_report.md", "val_report.json"} <= names
    with np.load(soc_dataset / "masks" / "test.npz") as z:
        assert z["masks"].shape == (2, 2, 75, 75)


def test_sort_of_clevr_masks_bad_split_and_folder(soc_dataset, tmp_path, capsys):
    rc, _, err = run_main(masks_cli.main, ["--sort-of-clevr", soc_dataset, "--split", "dev", "--quiet"], capsys)
    assert rc == 2 and "unknown --split 'dev'" in err
    rc, _, err = run_main(masks_cli.main, ["--sort-of-clevr", tmp_path / "none", "--quiet"], capsys)
    assert rc == 2 and "not a folder" in err


def test_sort_of_clevr_data_error_exits_2(tmp_path, capsys, monkeypatch):
    import vqa_adapters.sort_of_clevr.io as soc_io

    def bad(*a, **k):
        raise DataError("a broken template", "templates.json")

    monkeypatch.setattr(soc_io, "generate_split", bad)
    rc, _, err = run_main(soc_cli.main, ["--out", tmp_path / "o", "--train", "1", "--val", "1",
                                         "--test", "1", "--quiet"], capsys)
    assert rc == 2 and "templates.json: a broken template" in err, err
    assert not (tmp_path / "o").exists()


def test_sort_of_clevr_loader_folder_and_bad_bytes(soc_dataset, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(soc_dataset, broken)
    (broken / "test.json").write_bytes(b"\xff\xfe not json")
    rc, _, err = run_main(masks_cli.main, ["--sort-of-clevr", broken, "--split", "test", "--quiet"], capsys)
    assert rc == 2 and "test.json" in err and "not UTF-8" in err, err
    (broken / "test.json").unlink()
    (broken / "test.json").mkdir()
    rc, _, err = run_main(masks_cli.main, ["--sort-of-clevr", broken, "--split", "test", "--quiet"], capsys)
    assert rc == 2 and "is a folder" in err, err


def _train_file(tmp_path, cfg, name="c.yaml"):
    import yaml

    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_train_config_bad_bytes_and_folder_exit_2(tmp_path, capsys):
    bad = tmp_path / "c.yaml"
    bad.write_bytes(b"experiment: \xff\n")
    rc, _, err = run_main(train_cli.main, [bad, "--out", tmp_path / "o", "--quiet"], capsys)
    assert rc == 2 and "not UTF-8" in err and "Traceback" not in err, err
    rc, _, err = run_main(train_cli.main, [tmp_path, "--out", tmp_path / "o", "--quiet"], capsys)
    assert rc == 2 and "is a folder" in err, err


@pytest.mark.parametrize("section, key, value, needle", [
    ("train", "epochs", "abc", "epochs='abc' is not a whole number"),
    ("train", "lr", float("nan"), "must be a finite number"),
    ("data", "synthetic_train", "3.5", "is not a whole number"),
])
def test_train_settings_typed(tmp_path, capsys, section, key, value, needle):
    cfg = train_config()
    cfg[section][key] = value
    rc, _, err = run_main(train_cli.main, [_train_file(tmp_path, cfg), "--out", tmp_path / "o", "--quiet"], capsys)
    assert rc == 2 and needle in err and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()


def test_train_corrupt_checkpoint_on_resume(tmp_path, capsys):
    torch = pytest.importorskip("torch")  # noqa: F841
    cfg = _train_file(tmp_path, train_config(epochs=1))
    out = tmp_path / "o"
    rc, _, err = run_main(train_cli.main, [cfg, "--out", out, "--quiet"], capsys)
    assert rc == 0, err
    ck = out / "baseline" / "checkpoint.pt"
    ck.write_bytes(ck.read_bytes()[:100])
    rc, _, err = run_main(train_cli.main, [cfg, "--out", out, "--quiet", "--resume"], capsys)
    assert rc == 2 and str(ck) in err and "not a vqa-train checkpoint" in err and "Traceback" not in err, err


def test_train_files_respect_umask(tmp_path, capsys):
    cfg = _train_file(tmp_path, train_config(epochs=1))
    old = os.umask(0o022)
    try:
        assert run_main(train_cli.main, [cfg, "--out", tmp_path / "o", "--quiet"], capsys)[0] == 0
    finally:
        os.umask(old)
    assert (os.stat(tmp_path / "o" / "baseline" / "checkpoint.pt").st_mode & 0o777) == 0o644

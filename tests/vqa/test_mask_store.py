"""``vqa-masks --store objects``: no mask array, masks rendered from the stored objects when read.

The reference is the ``--store arrays`` run of the same command on the same files: every mask
rendered from an objects file (by :func:`vqa_adapters.psl.io.render_stored_mask` and by
``ClevrMaskDataset``) must equal that run's stored mask bit for bit, with and without
``--weighted``, and every other array of ``masks.npz`` must be the same. Then: ``merge`` of
objects shards is the unsharded objects run, mixing the layouts is refused, and the options'
errors are one line with exit 2. One blob is also checked against its closed form.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from hlmrf.errors import DataError
from vqa_adapters.cli.masks import main

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "clevr"
SCENES = DATA / "CLEVR_val_scenes_000000-000499.json"


@pytest.fixture(scope="module")
def questions(mixed_question_file):
    """The 330 generated val questions, the 7 official ones of image 0 (which has its image), one
    of them unreadable by the parser."""
    return mixed_question_file(lambda gen, off: off[:3] + gen + off[3:])


def _masks(questions, out, *extra):
    return main(["--scenes", str(SCENES), "--questions", str(questions), "--out", str(out), "--quiet",
                 "--size", "48x32", *extra])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, questions):
    """``{(store, weighted): out folder}``."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for store in ("arrays", "objects"):
        for weighted in (False, True):
            d = root / f"{store}{'_w' if weighted else ''}"
            assert _masks(questions, d, "--store", store, *(["--weighted"] if weighted else [])) == 0
            out[store, weighted] = d
    return out


@pytest.fixture(scope="module")
def scenes():
    from vqa_adapters.clevr import load_scenes

    return load_scenes(SCENES)


@pytest.mark.parametrize("weighted", [False, True])
def test_masks_rendered_from_objects_are_the_stored_arrays(runs, scenes, weighted):
    from vqa_adapters.psl.facts import clevr_object_facts
    from vqa_adapters.psl.io import read_masks_npz, render_stored_mask

    a = read_masks_npz(runs["arrays", weighted] / "masks.npz")
    o = read_masks_npz(runs["objects", weighted] / "masks.npz")
    assert (a.store, o.store, o.masks, o.size, o.weighted) == ("arrays", "objects", None, (48, 32), weighted)
    assert a.masks.shape == (len(o), 32, 48) and len(o) == 337
    rendered = np.stack([render_stored_mask(o, i, clevr_object_facts(scenes[int(o.image_index[i])]))
                         for i in range(len(o))])
    assert rendered.dtype == np.uint8 and np.array_equal(rendered, a.masks)
    assert a.masks.any(axis=(1, 2)).sum() > 300  # not a vacuous comparison
    if weighted:  # scores below 1 make blobs below 255 somewhere
        assert not np.isin(a.masks.max(axis=(1, 2)), (0, 255)).all()
    with np.load(runs["arrays", weighted] / "masks.npz") as za, \
            np.load(runs["objects", weighted] / "masks.npz") as zo:
        assert set(za.files) - set(zo.files) == {"masks"}
        for key in zo.files:
            if key != "store":
                assert za[key].dtype == zo[key].dtype and np.array_equal(za[key], zo[key]), key
        assert json.loads(str(zo["weighted"]).lower()) is weighted and list(zo["mask_size"]) == [48, 32]
    for name in ("choices.json",):
        assert (runs["arrays", weighted] / name).read_bytes() == (runs["objects", weighted] / name).read_bytes()


def test_one_blob_against_its_closed_form(runs, scenes):
    """A question with one chosen object: its mask is round(255 exp(-d^2 / (2 (0.6 r)^2))) at each
    pixel centre of the 48x32 grid laid over the 480x320 image (r = s * 10 / depth)."""
    from vqa_adapters.psl.io import read_masks_npz
    from vqa_adapters.psl.facts import clevr_object_facts

    o = read_masks_npz(runs["objects", False] / "masks.npz")
    a = read_masks_npz(runs["arrays", False] / "masks.npz")
    i = next(i for i in range(len(o)) if o.chosen_ptr[i + 1] - o.chosen_ptr[i] == 1)
    obj = scenes[int(o.image_index[i])].objects[int(o.chosen[o.chosen_ptr[i]])]
    x0, y0, depth = obj.pixel_coords
    r = (50.0 if obj.size == "large" else 28.0) * 10.0 / max(depth, 1.0)
    sigma = 0.6 * r
    assert math.isclose(clevr_object_facts(scenes[int(o.image_index[i])]).radii[obj.index], r)
    ys, xs = np.mgrid[0:32, 0:48]
    d2 = ((xs + 0.5) * 10 - x0) ** 2 + ((ys + 0.5) * 10 - y0) ** 2
    expected = np.exp(-d2 / (2 * sigma ** 2)) * 255
    assert np.abs(a.masks[i].astype(float) - expected).max() <= 0.5 + 1e-3


def test_the_dataset_renders_objects_as_the_arrays_read(runs, scenes):
    torch = pytest.importorskip("torch")
    from vqa_adapters.clevr import build_vocabularies, load_questions
    from vqa_adapters.clevr.torch_data import ClevrMaskDataset

    qs = [q for q in load_questions(DATA / "CLEVR_val_000000-000032_generated_seed0.json", scenes)
          if q.image_index == 0][:4]
    qs += list(load_questions(DATA / "CLEVR_val_questions_img000000_7q.json"))[:2]  # indices 0..6
    qs = [q for q in qs if q.question_index < 1000]
    qv, av = build_vocabularies(qs)
    for weighted in (False, True):
        by_array = ClevrMaskDataset(qs, scenes, DATA, runs["arrays", weighted] / "masks.npz", qv, av)
        by_objects = ClevrMaskDataset(qs, scenes, DATA, runs["objects", weighted] / "masks.npz", qv, av)
        assert by_objects.masks is None and by_objects.size == by_array.size == (48, 32)
        for k in range(len(qs)):
            x, y = by_array[k], by_objects[k]
            assert torch.equal(x["mask"], y["mask"]) and torch.equal(x["masked_image"], y["masked_image"])
        assert torch.equal(by_objects[-1]["mask"], by_array[len(qs) - 1]["mask"])
        assert float(by_objects[0]["mask"].max()) > 0


def test_the_dataset_refuses_objects_of_another_scene_file(runs, scenes):
    pytest.importorskip("torch")
    from dataclasses import replace

    from vqa_adapters.clevr import build_vocabularies, load_questions
    from vqa_adapters.clevr.torch_data import ClevrMaskDataset

    qs = [q for q in load_questions(DATA / "CLEVR_val_000000-000032_generated_seed0.json", scenes)
          if q.image_index == 1][:2]
    qv, av = build_vocabularies(qs)
    path = runs["objects", False] / "masks.npz"
    # the scene of image 1 with fewer objects than the file's choices name
    few = dict(scenes)
    few[1] = replace(scenes[1], objects=scenes[1].objects[:1],
                     relationships={r: ((),) for r in scenes[1].relationships})
    ds = ClevrMaskDataset(qs, few, DATA, path, qv, av)
    st = ds._stored
    runs_of = [st.chosen[st.chosen_ptr[r]:st.chosen_ptr[r + 1]] for r in ds._rows]
    k = next(k for k, ch in enumerate(runs_of) if len(ch) and ch.max() > 0)
    with pytest.raises(DataError, match="scene 1 is not the one vqa-masks rendered"):
        ds._render(k, qs[k])
    # the same objects, one of them moved a few pixels: not an index error, a silently wrong
    # mask but for the stored scene hash
    obj = scenes[1].objects[0]
    x, y, d = obj.pixel_coords
    shifted = dict(scenes)
    shifted[1] = replace(scenes[1], objects=(replace(obj, pixel_coords=(x + 3.0, y, d)),
                                             *scenes[1].objects[1:]))
    ds = ClevrMaskDataset(qs, shifted, DATA, path, qv, av)
    with pytest.raises(DataError, match="scene 1 is not the one vqa-masks rendered"):
        ds._render(0, qs[0])
    ClevrMaskDataset(qs, scenes, DATA, path, qv, av)._render(0, qs[0])  # the right scenes pass
    moved = [replace(qs[0], image_index=2)]
    with pytest.raises(DataError, match="about image 2 here but image 1 in the file"):
        ClevrMaskDataset(moved, scenes, DATA, path, qv, av)
    with pytest.raises(DataError, match="no mask for question 99999"):
        ClevrMaskDataset([replace(qs[0], question_index=99999)], scenes, DATA, path, qv, av)


def test_merged_object_shards_are_the_unsharded_objects_run(tmp_path, questions, runs):
    dirs = [tmp_path / f"s{k}" for k in range(3)]
    for k, d in enumerate(dirs):
        assert _masks(questions, d, "--store", "objects", "--shard", f"{k}/3") == 0
    merged = tmp_path / "merged"
    assert main(["merge", *map(str, dirs), "--out", str(merged)]) == 0
    one = runs["objects", False]
    assert (merged / "choices.json").read_bytes() == (one / "choices.json").read_bytes()
    with np.load(merged / "masks.npz") as a, np.load(one / "masks.npz") as b:
        assert a.files == b.files and "masks" not in a.files
        for key in b.files:
            assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
            assert np.array_equal(a[key], b[key]), key


def test_merge_refuses_mixed_layouts(tmp_path, questions, capsys):
    assert _masks(questions, tmp_path / "s0", "--store", "objects", "--shard", "0/2") == 0
    assert _masks(questions, tmp_path / "s1", "--store", "arrays", "--shard", "1/2") == 0
    capsys.readouterr()
    rc = main(["merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert rc == 2 and "--store arrays" in err and "--store objects" in err and "--force" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "m").exists()


def test_store_option_errors(tmp_path, questions, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:  # argparse's exit, as on the command line
        _masks(questions, out, "--store", "pixels")
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert "--store" in err and "invalid choice" in err and len(err.strip().splitlines()) == 1, err
    # the memory ceiling applies to arrays, and names --store objects
    assert _masks(questions, out, "--max-mask-gib", "0.0001") == 2
    err = capsys.readouterr().err
    assert "--store objects" in err and "--max-mask-gib" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
    assert _masks(questions, out, "--store", "objects", "--max-mask-gib", "0.0001") == 0
    with np.load(out / "masks.npz") as z:
        assert "masks" not in z.files and str(z["store"]) == "objects"
    rc = main(["--sort-of-clevr", str(tmp_path), "--store", "objects", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "--store objects applies to CLEVR" in err, err


def test_an_objects_file_without_render_parameters_is_refused(tmp_path, runs):
    from vqa_adapters.psl.io import read_masks_npz

    with np.load(runs["objects", False] / "masks.npz") as z:
        arrays = {k: z[k] for k in z.files if k != "weights"}
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(DataError, match="without its render parameters"):
        read_masks_npz(tmp_path / "old.npz")
    arrays["weights"] = np.zeros(0, np.float32)
    arrays["sigma_per_radius"] = np.array(0.5)
    np.savez(tmp_path / "sigma.npz", **arrays)
    with pytest.raises(DataError, match="sigma 0.5"):
        read_masks_npz(tmp_path / "sigma.npz")


def test_the_full_size_benchmark_runs_small(capsys):
    import importlib.util

    def load(name: str, register: bool = False):  # from its file, as tests/engine's smoke tests do
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        if register:
            sys.modules[name] = mod
        spec.loader.exec_module(mod)
        return mod

    if "_common" not in sys.modules:  # what the script finds beside itself when run
        load("_common", register=True)
    bench_clevr_full = load("bench_clevr_full")
    assert bench_clevr_full.main(["--questions", "400", "--arrays-questions", "400",
                                  "--dataset-items", "100"]) == 0
    out = capsys.readouterr().out
    assert "| objects | 400 |" in out and "| arrays | 400 |" in out and "masks that differ: 0." in out, out


def test_a_shard_from_before_store_is_an_arrays_shard(tmp_path, questions, capsys):
    """A finished shard whose shard.json has no ``store`` (written before the option) is still
    skipped by an arrays rerun; merged with newer shards, the other arrays of its masks.npz are
    named, not a traceback."""
    old = tmp_path / "s0"
    assert _masks(questions, old, "--shard", "0/2") == 0
    doc = json.loads((old / "shard.json").read_text())
    del doc["config"]["store"]
    (old / "shard.json").write_text(json.dumps(doc))
    with np.load(old / "masks.npz") as z:
        np.savez(old / "masks.npz", **{k: z[k] for k in z.files if k not in ("weights", "store")})
    capsys.readouterr()
    assert _masks(questions, old, "--shard", "0/2") == 0
    assert "skipped" in capsys.readouterr().out
    assert _masks(questions, tmp_path / "s1", "--shard", "1/2") == 0
    capsys.readouterr()
    assert main(["merge", str(old), str(tmp_path / "s1"), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "another version of vqa-masks" in err and len(err.strip().splitlines()) == 1, err

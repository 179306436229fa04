"""CLEVR through ``vqa-train``: the loaders (state descriptions and images), the by-scene split,
the vocabularies, the question types, the masks, a short training run that learns, the image path
end to end, and the errors. References are independent of the loader: the scene files read as
plain JSON, programs executed by :mod:`vqa_adapters.clevr.executor`, the PNG's pixel coordinates.
"""
from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hlmrf.errors import DataError, SettingsError  # noqa: E402
from vqa_adapters.clevr.executor import execute_program, referred_objects  # noqa: E402
from vqa_adapters.clevr.io import load_scenes, question_from_dict  # noqa: E402
from vqa_adapters.distill.clevr_data import (OBJECT_DIM, QUESTION_TYPES,  # noqa: E402
                                             scene_splits)
from vqa_adapters.distill.data import load_split  # noqa: E402
from vqa_adapters.distill.runner import Runner  # noqa: E402
from vqa_adapters.distill.settings import (DataSettings, load_settings,  # noqa: E402
                                           settings_from_dict)
from vqa_adapters.text import UNK, tokenize  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data" / "clevr"
SCENES = DATA / "CLEVR_val_scenes_000000-000499.json"
GENERATED = DATA / "CLEVR_val_000000-000032_generated_seed0.json"   # 330 q, scenes 0..32
VAL7 = DATA / "CLEVR_val_questions_img000000_7q.json"                # 7 released q, scene 0
PNG = DATA / "CLEVR_val_000000.png"
CONFIGS = ROOT / "vqa_adapters" / "configs"
COLORS = ("blue", "brown", "cyan", "gray", "green", "purple", "red", "yellow")


def _settings(clevr: dict, *, masks="oracle", model=None, data_eval="val", **top):
    model = model or {"kind": "rn_state", "g_units": [32, 32], "f_units": [32],
                      "question": {"kind": "tokens", "embed_dim": 16, "out_dim": 32}}
    return settings_from_dict({"data": {"kind": "clevr", "question": "text", "masks": masks,
                                        "eval_split": data_eval, "clevr": clevr},
                               "model": model, **top})


def _pool(**extra) -> dict:
    return {"questions": str(GENERATED), "scenes": str(SCENES), **extra}


def _raw(path=GENERATED) -> dict:
    return {q["question_index"]: q for q in json.loads(Path(path).read_text())["questions"]}


def _raw_scenes() -> dict:
    return {s["image_index"]: s for s in json.loads(SCENES.read_text())["scenes"]}


# ---- state descriptions ---------------------------------------------------------------------

def test_state_items_describe_the_scene_graph_and_the_referred_objects():
    s = _settings(_pool())
    ds = load_split(s.data, "train")
    raw, scenes, loaded = _raw(), _raw_scenes(), load_scenes(SCENES)
    batch = ds.get_batch(np.arange(len(ds)))
    n_max = batch["objects"].shape[1]
    assert batch["objects"].dtype == torch.float32 and batch["objects"].shape[2] == OBJECT_DIM
    assert n_max == max(len(scenes[i]["objects"]) for i in range(33))
    assert batch["mask"].shape == (len(ds), n_max) and batch["mask"].dtype == torch.float32
    assert batch["question"].dtype == torch.int64 and batch["answer"].dtype == torch.int64
    for k in range(len(ds)):
        qi = int(batch["question_index"][k])
        d = raw[qi]
        scene = scenes[d["image_index"]]
        objs = batch["objects"][k]
        n = len(scene["objects"])
        assert int(batch["image_index"][k]) == d["image_index"]
        assert objs[:, -1].tolist() == [1.0] * n + [0.0] * (n_max - n)    # validity flag
        assert not objs[n:].any()                                          # zero padding
        for i, o in enumerate(scene["objects"]):
            assert objs[i, 0].item() == pytest.approx(o["3d_coords"][0] / 3, abs=1e-6)
            assert objs[i, 2].item() == pytest.approx(o["3d_coords"][2], abs=1e-6)
            assert objs[i, 3 + COLORS.index(o["color"])] == 1 and objs[i, 3:11].sum() == 1
        # the oracle's weights are the executed program's referred objects (an independent path:
        # the loader reads the file's stored node outputs)
        q = question_from_dict(d)
        ex = execute_program(q.program, loaded[q.image_index])
        expected = sorted(referred_objects(q.program, ex.outputs))
        assert torch.nonzero(batch["mask"][k]).flatten().tolist() == expected
        # the question type is the program's last function
        last = d["program"][-1]["type"]
        name = QUESTION_TYPES[int(batch["qtype"][k])]
        assert name == last or (name == "compare_attribute" and last.startswith("equal_")
                                and last != "equal_integer") \
            or (name == "compare_integer" and last in ("equal_integer", "less_than",
                                                        "greater_than"))
    item = ds[3]
    assert item["objects"].shape == (n_max, OBJECT_DIM) and isinstance(item["qtype"], int)
    assert ds.type_names == QUESTION_TYPES and ds.model_sizes["object_dim"] == OBJECT_DIM


def test_split_is_by_scene_deterministic_and_respects_excluded_scenes():
    s = _settings(_pool(exclude_scenes=[[5, 9]], fractions={"train": 0.6, "val": 0.2,
                                                             "test": 0.2}, split_seed=3))
    sets = {sp: set(load_split(s.data, sp).image_indices.tolist()) for sp in
            ("train", "val", "test")}
    assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"]) \
        and not (sets["val"] & sets["test"])
    allowed = set(range(33)) - set(range(5, 10))
    assert set().union(*sets.values()) == allowed
    # 28 scenes cut at round(0.6 * 28) = 17 and round(0.8 * 28) = 22
    assert [len(sets[k]) for k in ("train", "val", "test")] == [17, 5, 6]
    parts = scene_splits(allowed, ("train", "val", "test"),
                         {"train": 0.6, "val": 0.2, "test": 0.2}, 3)
    assert {k: set(v) for k, v in parts.items()} == sets       # same function, same answer
    n_questions = sum(len(load_split(s.data, sp)) for sp in ("train", "val", "test"))
    assert n_questions == sum(1 for d in _raw().values() if d["image_index"] in allowed)


def test_vocabularies_come_from_the_training_split_only():
    s = _settings(_pool(fractions={"train": 0.5, "val": 0.25, "test": 0.25}))
    train, test = load_split(s.data, "train"), load_split(s.data, "test")
    vocab = train.question_vocabulary
    assert test.question_vocabulary is vocab and test.answer_vocabulary is train.answer_vocabulary
    train_words = {w for row in train.texts for w in tokenize(row[0])}
    assert set(vocab.words[2:]) == train_words
    unk = vocab.id(UNK)
    for k, row in enumerate(test.texts):
        words = tokenize(row[0])
        ids = test.tokens[k, :len(words)].tolist()
        assert ids == [vocab.id(w) if w in train_words else unk for w in words]
        assert not test.tokens[k, len(words):].any()
    raw = _raw()
    answers = sorted({str(raw[int(q)]["answer"]).lower() if isinstance(raw[int(q)]["answer"], str)
                      else ("yes" if raw[int(q)]["answer"] is True else "no"
                            if raw[int(q)]["answer"] is False else str(raw[int(q)]["answer"]))
                      for q in train.question_indices})
    assert train.answer_vocabulary.tokens == tuple(answers)
    assert train.model_sizes["n_answers"] == len(answers)
    assert int(train.answers.max()) < len(answers)        # every training answer is known
    n = len(answers)
    for k, qi in enumerate(test.question_indices.tolist()):
        a = question_from_dict(raw[qi]).answer
        assert int(test.answers[k]) == (answers.index(a) if a in answers else n)


def test_psl_masks_choose_objects_of_the_scene_and_mostly_the_referred_ones():
    s = _settings(_pool(), masks="psl")
    oracle = load_split(_settings(_pool()).data, "train")
    ds = load_split(s.data, "train")
    assert ds.weights.shape == oracle.weights.shape
    valid = ds.get_batch(np.arange(len(ds)))["objects"][:, :, -1]
    assert not (ds.weights * (1 - valid)).any()            # never a padding row
    hit = float((ds.weights * oracle.weights).sum())
    assert hit / float(oracle.weights.sum()) > 0.8 and hit / float(ds.weights.sum()) > 0.8


def test_state_description_training_beats_the_majority_answer(tmp_path):
    # 33 bundled scenes: 23 train (about 230 questions), 10 test (about 100)
    s = _settings(_pool(fractions={"train": 0.7, "val": 0.0, "test": 0.3}),
                  experiment="single", role="baseline",
                  data_eval="test",
                  train={"epochs": 8, "batch_size": 16, "lr": 0.003, "eval_batch_size": 512})
    runner = Runner(s, tmp_path / "run")
    res = runner.run()["baseline"].test["baseline"]
    train, test = runner.dataset("train"), runner.dataset("test")
    majority = Counter(train.answers.tolist()).most_common(1)[0][0]
    majority_acc = float((test.answers == majority).float().mean())
    assert res["n"] == len(test)
    assert res["accuracy"] > majority_acc + 0.08, (res["accuracy"], majority_acc)
    assert set(res["per_type"]) <= set(range(len(QUESTION_TYPES)))
    assert np.isnan(res["relational"]) and np.isnan(res["non_relational"])


# ---- images ---------------------------------------------------------------------------------

def _released_layout(tmp_path: Path) -> Path:
    """The released layout around the one bundled image (scene 0 and its 7 released questions)."""
    root = tmp_path / "CLEVR_v1.0"
    (root / "images" / "val").mkdir(parents=True)
    (root / "scenes").mkdir()
    (root / "questions").mkdir()
    shutil.copy(PNG, root / "images" / "val" / PNG.name)
    scenes = json.loads(SCENES.read_text())
    scenes["scenes"] = [s for s in scenes["scenes"] if s["image_index"] == 0]
    (root / "scenes" / "CLEVR_val_scenes.json").write_text(json.dumps(scenes))
    shutil.copy(VAL7, root / "questions" / "CLEVR_val_questions.json")
    return root


def _image_settings(root: Path, **over):
    from vqa_adapters.distill.settings import apply_overrides
    import yaml

    data = yaml.safe_load((CONFIGS / "clevr_images.yaml").read_text())
    sets = [f"data.root={root}", "data.clevr.sources={train: val, val: val, test: val}",
            "data.clevr.by_scene=false", "data.clevr.image_size=[48,32]", "train.epochs=1",
            "model.conv_channels=[8,8,8]", "model.san_dim=16", "model.attention_dim=8",
            "model.f_units=[16]", "model.question.embed_dim=8", "model.question.out_dim=16",
            *[f"{k}={v}" for k, v in over.items()]]
    return settings_from_dict(apply_overrides(data, sets))


def test_image_items_have_the_png_its_tokens_and_a_mask_on_the_chosen_objects(tmp_path):
    from PIL import Image

    s = _image_settings(_released_layout(tmp_path), **{"data.masks": "oracle"})
    ds = load_split(s.data, "train")
    assert len(ds) == 7
    b = ds.get_batch(np.arange(7))
    assert b["image"].shape == (7, 3, 32, 48) and b["image"].dtype == torch.float32
    assert b["mask"].shape == (7, 1, 32, 48) and b["mask"].dtype == torch.float32
    png = np.asarray(Image.open(PNG).convert("RGB").resize((48, 32), Image.BILINEAR),
                     np.float32) / 255
    assert np.allclose(b["image"][0].permute(1, 2, 0).numpy(), png, atol=1e-6)
    scene = _raw_scenes()[0]
    raw = _raw(VAL7)
    loaded = load_scenes(SCENES)
    for k in range(7):
        q = question_from_dict(raw[int(b["question_index"][k])])
        ref = referred_objects(q.program, execute_program(q.program, loaded[0]).outputs)
        m = b["mask"][k, 0]
        for i, o in enumerate(scene["objects"]):
            x, y = o["pixel_coords"][0] * 48 / 480, o["pixel_coords"][1] * 32 / 320
            value = float(m[min(int(y), 31), min(int(x), 47)])
            if i in ref:
                assert value > 0.5, (k, i)
        if not ref:
            assert not m.any()


def test_image_path_trains_baseline_teacher_and_student_for_one_epoch(tmp_path):
    s = _image_settings(_released_layout(tmp_path))
    assert s.model.kind == "san" and s.model.san_hops == 2
    runner = Runner(s, tmp_path / "out")
    results = runner.run()
    assert set(results) == {"baseline", "teacher", "student"}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["model"] for r in summary] == ["baseline", "teacher", "student"]
    assert all(list(r["per_type"]) == list(QUESTION_TYPES) and r["n"] == 7 for r in summary)
    header = (tmp_path / "out" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header[-3:] == ["acc_type_6", "acc_type_7", "seconds"]
    assert "query_material (%)" in (tmp_path / "out" / "summary.md").read_text()
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["vocabulary"][:2] == ["<pad>", "<unk>"]
    teacher = runner.results["teacher"]
    assert teacher.history and np.isfinite(teacher.history[-1]["train_loss"])


# ---- configs and errors ---------------------------------------------------------------------

def test_shipped_configs_validate():
    state = load_settings(CONFIGS / "clevr_state.yaml")
    assert state.data.kind == "clevr" and state.model.kind == "rn_state"
    assert state.data.clevr_settings().exclude_scenes == [[100, 299]]
    images = load_settings(CONFIGS / "clevr_images.yaml", ["data.root=/data/CLEVR_v1.0"])
    assert images.model.kind == "san" and images.data.clevr_settings().input == "image"


def test_missing_files_and_folders_are_named(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(DataError, match="nope.json"):
        load_split(_settings(_pool(questions=str(missing))).data, "train")
    with pytest.raises(DataError, match="not-there"):
        load_split(DataSettings(kind="clevr", question="text", root=str(tmp_path / "not-there")),
                   "train")
    root = _released_layout(tmp_path)
    shutil.rmtree(root / "images" / "val")
    with pytest.raises(DataError, match=r"images/val"):
        load_split(_image_settings(root).data, "train")
    with pytest.raises(DataError, match="masks.npz"):
        load_split(_settings(_pool(masks_file=str(tmp_path / "masks.npz")),
                             masks="file").data, "train")


def test_bad_settings_are_refused_with_the_fix():
    with pytest.raises(SettingsError, match="needs model.kind rn_state"):
        _settings(_pool(), model={"kind": "san", "question": {"kind": "tokens"}})
    with pytest.raises(SettingsError, match=r"unknown data.clevr setting\(s\) bogus; valid .* are by_scene"):
        _settings(_pool(bogus=1))
    with pytest.raises(SettingsError, match="data.question: text"):
        settings_from_dict({"data": {"kind": "clevr", "clevr": _pool()},
                            "model": {"kind": "rn_state"}})
    with pytest.raises(SettingsError, match="data.root .* or data.clevr.questions"):
        load_split(_settings({}).data, "train")
    with pytest.raises(SettingsError, match="psl is computed when loading CLEVR only"):
        settings_from_dict({"data": {"kind": "sort_of_clevr", "masks": "psl"}})


def test_test_split_questions_without_answers_are_refused(tmp_path):
    with pytest.raises(DataError, match="CLEVR_test_questions_first10.json.*no answer"):
        load_split(_settings(_pool(questions=str(DATA / "CLEVR_test_questions_first10.json")))
                   .data, "train")


def test_image_masks_from_a_weighted_masks_file_are_vqa_masks_own(tmp_path):
    """``data.masks: file`` with image input draws each question's blobs with the file's weights
    (``vqa-masks --weighted``), as vqa-masks draws them, and refuses scenes other than the run's."""
    from vqa_adapters.cli.masks import main as masks_main
    from vqa_adapters.psl.facts import clevr_object_facts
    from vqa_adapters.psl.io import npz_bytes, read_masks_npz, render_stored_mask

    root = _released_layout(tmp_path)
    scenes_file = root / "scenes" / "CLEVR_val_scenes.json"
    out = tmp_path / "masks"
    assert masks_main(["--scenes", str(scenes_file), "--questions",
                       str(root / "questions" / "CLEVR_val_questions.json"), "--out", str(out),
                       "--weighted", "--store", "objects", "--size", "48x32", "--quiet"]) == 0
    # exact scenes score every chosen object 1: halve the weights so that they matter here
    with np.load(out / "masks.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["weights"] = (arrays["weights"] * np.linspace(0.3, 0.9, len(arrays["weights"]))).astype(np.float32)
    (out / "masks.npz").write_bytes(npz_bytes(arrays))
    stored = read_masks_npz(out / "masks.npz")
    assert stored.weighted and (stored.weights < 1).all() and len(stored.weights)
    s = _image_settings(root, **{"data.masks": "file", "data.clevr.masks_file": str(out / "masks.npz")})
    ds = load_split(s.data, "train")
    b = ds.get_batch(np.arange(len(ds)))
    facts = clevr_object_facts(load_scenes(scenes_file)[0])
    row = {int(q): i for i, q in enumerate(stored.question_index)}
    for k in range(len(ds)):
        want = render_stored_mask(stored, row[int(b["question_index"][k])], facts).astype(np.float32) / 255
        np.testing.assert_array_equal(b["mask"][k, 0].numpy(), want)
    # the same scenes with one object moved (another folder: the loader caches per setting):
    # refused, naming the question and the scene
    moved = _released_layout(tmp_path / "moved")
    moved_scenes = moved / "scenes" / "CLEVR_val_scenes.json"
    doc = json.loads(moved_scenes.read_text())
    doc["scenes"][0]["objects"][0]["pixel_coords"][0] += 5
    moved_scenes.write_text(json.dumps(doc))
    s = _image_settings(moved, **{"data.masks": "file", "data.clevr.masks_file": str(out / "masks.npz")})
    with pytest.raises(DataError, match="scene 0 is not the one vqa-masks rendered"):
        load_split(s.data, "train").get_batch(np.arange(1))

"""vqa-masks on CLEVR files, atomic outputs, and the teacher Dataset."""
from __future__ import annotations

import json

import numpy as np
import pytest

from vqa_adapters.cli.masks import main

from .conftest import DATA, OFFICIAL, SCENES


def test_cli_writes_masks_choices_and_reports(tmp_path, scenes):
    bad = json.loads(OFFICIAL.read_text())
    bad["questions"][2]["question"] = "Frobnicate the blorp?"
    qfile = tmp_path / "q.json"
    qfile.write_text(json.dumps(bad))
    out = tmp_path / "out"
    rc = main(["--scenes", str(SCENES), "--questions", str(qfile), "--out", str(out), "--size", "64x32",
               "--images", str(DATA), "--previews", "2", "--quiet"])
    assert rc == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["questions"] == 7 and rep["unparsed"] == 1
    assert rep["failures"][0]["question_index"] == bad["questions"][2]["question_index"]
    assert rep["overall"]["micro_recall"] == 1.0 and rep["overall"]["micro_precision"] == 1.0
    assert "could not read" in (out / "report.md").read_text()
    with np.load(out / "masks.npz") as z:
        assert z["masks"].shape == (7, 32, 64) and z["masks"].dtype == np.uint8
        assert z["parsed"].sum() == 6
        k = 0
        chosen = z["chosen"][z["chosen_ptr"][k]:z["chosen_ptr"][k + 1]]
        referred = z["referred"][z["referred_ptr"][k]:z["referred_ptr"][k + 1]]
        assert set(chosen) == set(referred)
    assert len(list((out / "previews").glob("*.png"))) == 2


def test_cli_missing_scene_names_file_and_question_and_writes_nothing(tmp_path, capsys):
    q = json.loads(OFFICIAL.read_text())
    q["questions"][3]["image_index"] = 4242
    qfile = tmp_path / "q.json"
    qfile.write_text(json.dumps(q))
    out = tmp_path / "out"
    rc = main(["--scenes", str(SCENES), "--questions", str(qfile), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "q.json" in err and "image_index 4242 has no scene" in err
    assert not out.exists()


def test_cli_option_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--scenes", str(SCENES)])
    assert e.value.code == 2
    rc = main(["--scenes", str(SCENES), "--questions", str(OFFICIAL), "--out", str(tmp_path / "o"),
               "--size", "huge", "--quiet"])
    assert rc == 2 and "WIDTHxHEIGHT" in capsys.readouterr().err


def test_teacher_dataset_items(scenes, shared_questions):
    torch = pytest.importorskip("torch")
    from vqa_adapters.clevr import build_vocabularies, load_questions
    from vqa_adapters.clevr.torch_data import ClevrMaskDataset, collate

    train = load_questions(DATA / "CLEVR_train_questions_first40.json")
    qv, av = build_vocabularies(train)
    assert qv.tokens[:2] == ("<pad>", "<unk>") and "cube" in qv.tokens and "yes" in av.tokens
    qs = [q for q in shared_questions if q.image_index == 0][:3]
    masks = np.zeros((3, 32, 48), np.uint8)
    masks[:, 10:20, 10:20] = 255
    ds = ClevrMaskDataset(qs, scenes, DATA, masks, qv, av)
    it = ds[0]
    assert it["image"].shape == (3, 32, 48) and it["mask"].shape == (1, 32, 48)
    assert torch.allclose(it["masked_image"], it["image"] * it["mask"])
    assert float(it["masked_image"][:, 0, 0].abs().sum()) == 0.0
    assert it["question"].dtype == torch.int64 and len(it["question"]) == len(qv.encode(qs[0].text))
    b = collate([ds[0], ds[1], ds[2]])
    assert b["question"].shape[0] == 3 and b["image"].shape == (3, 3, 32, 48)


@pytest.mark.parametrize("solver", ["numpy-batch", "numpy"])
def test_a_chunk_whose_questions_have_no_candidate_object(tmp_path, solver):
    """Generated question 47 ("Is there a small red block?" on a scene without one) alone in a
    chunk: no candidate atom is grounded at all. Its mask is empty and nothing is chosen (this
    was a ValueError traceback from the ground model's index)."""
    from .conftest import GENERATED

    doc = json.loads(GENERATED.read_text())
    q47 = [q for q in doc["questions"] if q["question_index"] == 47]
    assert q47 and q47[0]["question"] == "Is there a small red block?"
    qfile = tmp_path / "q47.json"
    qfile.write_text(json.dumps({"info": doc.get("info", {}), "questions": q47}))
    out = tmp_path / "out"
    assert main(["--scenes", str(SCENES), "--questions", str(qfile), "--out", str(out), "--size", "16x16",
                 "--solver", solver, "--quiet"]) == 0
    choice = json.loads((out / "choices.json").read_text())["questions"][0]
    assert choice["chosen"] == [] and choice["referred"] == [] and choice["failure"] is None
    with np.load(out / "masks.npz") as z:
        assert z["masks"].shape == (1, 16, 16) and not z["masks"].any()

"""Stored answers, vectors, types and texts against an independent re-derivation from the scene JSON.

The reference here is written from the issue's specification, not from the generator: float
Euclidean distances, sorting by (distance, colour index), literal phrasings and vocabularies.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

COLORS = ["red", "green", "blue", "orange", "gray", "yellow"]
ANSWERS = ["yes", "no", "rectangle", "circle", "1", "2", "3", "4", "5", "6"]
PHRASES = {
    0: "What is the shape of the {} object?",
    1: "Is the {} object on the left?",
    2: "Is the {} object on the top?",
    3: "What is the shape of the object nearest to the {} object?",
    4: "What is the shape of the object farthest from the {} object?",
    5: "How many objects have the same shape as the {} object?",
}


def shape_word(shape):
    return {"square": "rectangle", "circle": "circle"}[shape]


def reference_answer(objects, size, code, c):
    """(answer word, referred objects) for question ``code`` about object ``c``."""
    me = objects[c]
    if code == 0:
        return shape_word(me["shape"]), [c]
    if code == 1:
        return ("yes" if me["x"] < size / 2 else "no"), [c]
    if code == 2:
        return ("yes" if me["y"] < size / 2 else "no"), [c]
    if code == 5:
        same = [j for j, o in enumerate(objects) if o["shape"] == me["shape"]]
        return str(len(same)), [c] + [j for j in same if j != c]
    dist = sorted((math.hypot(o["x"] - me["x"], o["y"] - me["y"]), j)
                  for j, o in enumerate(objects) if j != c)
    if code == 3:
        j = dist[0][1]
    else:  # farthest; ties to the lowest index
        far = max(d for d, _ in dist)
        j = min(k for d, k in dist if d == far)
    return shape_word(objects[j]["shape"]), [c, j]


def reference_vector(code, c):
    v = [0] * 11
    v[c] = 1
    v[6 if code < 3 else 7] = 1
    v[8 + code % 3] = 1
    return v


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_every_answer_matches_reference(dataset, split):
    root, settings = dataset
    doc = json.loads((root / f"{split}.json").read_text())
    with np.load(root / f"{split}.npz") as z:
        questions, answers, qtypes = z["questions"], z["answers"], z["question_types"]
    assert len(doc["scenes"]) == questions.shape[0] == settings.count(split)
    checked = 0
    for i, scene in enumerate(doc["scenes"]):
        assert scene["image_index"] == i
        objects = scene["objects"]
        assert len(scene["questions"]) == settings.questions_per_image
        for j, q in enumerate(scene["questions"]):
            c = COLORS.index(q["color"])
            code = q["type_code"]
            word, refs = reference_answer(objects, doc["image_size"], code, c)
            assert q["answer"] == word, (split, i, j, q)
            assert q["objects"] == refs, (split, i, j, q)
            assert q["text"] == PHRASES[code].format(q["color"])
            assert ANSWERS[answers[i, j]] == word
            assert qtypes[i, j] == code
            assert questions[i, j].tolist() == reference_vector(code, c)
            checked += 1
    assert checked == settings.count(split) * settings.questions_per_image


def test_relational_share_and_order(dataset):
    root, settings = dataset
    q = settings.questions_per_image
    n_rel = math.floor(q * settings.relational_share + 0.5)
    with np.load(root / "train.npz") as z:
        qtypes = z["question_types"]
    # non-relational first, then relational, the same split in every image
    assert (qtypes[:, : q - n_rel] < 3).all()
    assert (qtypes[:, q - n_rel:] >= 3).all()


def test_answer_distribution_is_not_degenerate(tmp_path):
    """Over a few hundred scenes every answer class of every question kind shows up."""
    from vqa_adapters.sort_of_clevr import SortOfClevrSettings, generate_split

    data = generate_split(SortOfClevrSettings(seed=1, train=300), "train")
    seen = {code: set(data.answers[data.question_types == code].tolist()) for code in range(6)}
    assert seen[0] == {2, 3} and seen[1] == {0, 1} and seen[2] == {0, 1}
    assert seen[3] == {2, 3} and seen[4] == {2, 3}
    assert {5, 6, 7} <= seen[5] <= set(range(4, 10))

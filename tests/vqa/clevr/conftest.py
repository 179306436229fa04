"""The real CLEVR samples (tests/data/clevr), loaded once per session.

``clevr_sets`` maps a short name to (questions, scenes); every question there has a gold program,
and the executed programs (and the generator's stored ``_output``s) are the tests' reference.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from vqa_adapters.clevr import load_questions, load_scenes

DATA = Path(__file__).resolve().parents[2] / "data" / "clevr"
VAL_SCENES = DATA / "CLEVR_val_scenes_000000-000499.json"
TRAIN_SCENES = DATA / "CLEVR_train_scenes_000000-000003.json"
GENERATED = DATA / "CLEVR_val_000000-000032_generated_seed0.json"
VAL7 = DATA / "CLEVR_val_questions_img000000_7q.json"
TRAIN40 = DATA / "CLEVR_train_questions_first40.json"
SINGLE_SCENES = DATA / "single_object" / "CLEVR_val_scenes.json"
SINGLE_QUESTIONS = DATA / "single_object" / "CLEVR_val_questions.json"


@pytest.fixture(scope="session")
def clevr_sets():
    val = load_scenes(VAL_SCENES)
    train = load_scenes(TRAIN_SCENES)
    single = load_scenes(SINGLE_SCENES)
    return {
        "generated": (load_questions(GENERATED, val), val),
        "val7": (load_questions(VAL7, val), val),
        "train40": (load_questions(TRAIN40, train), train),
        "single_object": (load_questions(SINGLE_QUESTIONS, single), single),
    }


@pytest.fixture(scope="session")
def val_scenes(clevr_sets):
    return clevr_sets["generated"][1]

"""Shared CLEVR fixtures for the PSL mask tests (loaded once per session)."""
from __future__ import annotations

from pathlib import Path

import pytest

from vqa_adapters.clevr import load_questions, load_scenes

DATA = Path(__file__).resolve().parents[2] / "data" / "clevr"
SCENES = DATA / "CLEVR_val_scenes_000000-000499.json"
GENERATED = DATA / "CLEVR_val_000000-000032_generated_seed0.json"
OFFICIAL = DATA / "CLEVR_val_questions_img000000_7q.json"
IMAGE0 = DATA / "CLEVR_val_000000.png"


@pytest.fixture(scope="session")
def scenes():
    return load_scenes(SCENES)


@pytest.fixture(scope="session")
def shared_questions(scenes):
    """The 330 generated + 7 official val questions the issue names."""
    return load_questions(GENERATED, scenes) + load_questions(OFFICIAL, scenes)

"""Impossible settings are rejected up front, quickly, with the reason."""
from __future__ import annotations

import time

import numpy as np
import pytest

from hlmrf.errors import HlmrfError, SettingsError
from vqa_adapters.sort_of_clevr import SortOfClevrSettings, generate_split, place_objects


@pytest.mark.parametrize("kwargs, reason", [
    (dict(size=20), "only guarantees room for 4"),
    (dict(size=9), "leaves no room"),
    (dict(size=75, object_size=13), "use size >= 78 or object_size <= 12"),
    (dict(size=0), "size must be >= 1"),
    (dict(size=5, object_size=1), "use size >= 6"),
    (dict(object_size=0), "object_size must be >= 1"),
    (dict(train=-1), "train must be >= 0"),
    (dict(val=-5), "val must be >= 0"),
    (dict(test=-1), "test must be >= 0"),
    (dict(questions_per_image=-1), "questions_per_image must be >= 0"),
    (dict(seed=-1), "seed must be >= 0"),
    (dict(relational_share=1.5), "relational_share must be a number in [0, 1]"),
    (dict(relational_share=float("nan")), "relational_share"),
    (dict(train=2.5), "train must be an integer"),
    (dict(size=True), "size must be an integer"),
])
def test_rejected_with_reason(kwargs, reason):
    start = time.perf_counter()
    with pytest.raises(SettingsError) as info:
        SortOfClevrSettings(**kwargs)
    assert time.perf_counter() - start < 0.5
    assert reason in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, HlmrfError)


def test_tightest_accepted_size_generates_quickly():
    start = time.perf_counter()
    data = generate_split(SortOfClevrSettings(size=30, train=100, val=0, test=0), "train")
    assert len(data) == 100
    assert time.perf_counter() - start < 5


def test_sampler_backstop_is_bounded():
    """Bypassing the check, an impossible placement still ends, with the reason."""
    start = time.perf_counter()
    with pytest.raises(SettingsError, match="could not place 6 objects"):
        place_objects(np.random.default_rng(0), 20, 5)
    assert time.perf_counter() - start < 5


def test_unknown_settings_are_listed():
    with pytest.raises(SettingsError, match="unknown Sort-of-CLEVR setting.*colour, nobjects.*valid Sort-of-CLEVR settings are "):
        SortOfClevrSettings.from_dict({"nobjects": 7, "colour": 1, "size": 64})
    assert SortOfClevrSettings.from_dict({"size": 64}).size == 64


def test_relational_count_rounds_half_up():
    assert SortOfClevrSettings(questions_per_image=10).n_relational == 5
    assert SortOfClevrSettings(questions_per_image=7, relational_share=0.5).n_relational == 4
    assert SortOfClevrSettings(questions_per_image=7, relational_share=0.0).n_relational == 0
    assert SortOfClevrSettings(questions_per_image=7, relational_share=1.0).n_relational == 7

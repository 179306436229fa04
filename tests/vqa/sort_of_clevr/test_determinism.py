"""Same settings give the same bytes; seeds and splits give independent streams."""
from __future__ import annotations

import numpy as np

from vqa_adapters.sort_of_clevr import SortOfClevrSettings, generate_split, write_dataset

FILES = ["train.npz", "val.npz", "test.npz", "train.json", "val.json", "test.json", "dataset.json"]
SMALL = dict(train=8, val=3, test=2, questions_per_image=4)


def test_same_seed_same_bytes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "nested" / "b"
    write_dataset(a, SortOfClevrSettings(seed=9, **SMALL))
    write_dataset(b, SortOfClevrSettings(seed=9, **SMALL))
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_different_seeds_differ(tmp_path):
    write_dataset(tmp_path / "a", SortOfClevrSettings(seed=1, **SMALL))
    write_dataset(tmp_path / "b", SortOfClevrSettings(seed=2, **SMALL))
    for name in ["train.npz", "val.npz", "test.npz"]:
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "b" / name).read_bytes()
        with np.load(tmp_path / "a" / name) as za, np.load(tmp_path / "b" / name) as zb:
            assert not np.array_equal(za["images"], zb["images"])


def test_splits_do_not_depend_on_each_others_counts():
    few = SortOfClevrSettings(seed=3, train=2, val=4, test=3)
    many = SortOfClevrSettings(seed=3, train=7, val=4, test=3)
    for split in ("val", "test"):
        x, y = generate_split(few, split), generate_split(many, split)
        np.testing.assert_array_equal(x.images, y.images)
        np.testing.assert_array_equal(x.answers, y.answers)
        assert x.scenes == y.scenes
    # and the splits are not copies of each other
    assert not np.array_equal(generate_split(few, "val").images[:3],
                              generate_split(few, "test").images[:3])


def test_first_images_do_not_depend_on_the_count():
    short = generate_split(SortOfClevrSettings(seed=6, train=3), "train")
    long = generate_split(SortOfClevrSettings(seed=6, train=9), "train")
    np.testing.assert_array_equal(short.images, long.images[:3])
    np.testing.assert_array_equal(short.questions, long.questions[:3])
    assert short.records == long.records[:3]

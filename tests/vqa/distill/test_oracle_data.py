"""Oracle-referred-object masks and the datasets that carry them."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vqa_adapters.distill.data import (  # noqa: E402
    sort_of_clevr_generated, synthetic_dataset)
from vqa_adapters.distill.oracle import oracle_mask, oracle_masks  # noqa: E402


def test_gaussian_blob_values():
    centers = np.array([[10.5, 20.5], [30.5, 5.5]])
    m = oracle_mask(centers, [0], image_size=40, sigma=3.0)
    assert m.dtype == np.float32 and m.shape == (40, 40)
    assert m[20, 10] == pytest.approx(1.0)
    # Pixel (r=20, c=13) has centre (13.5, 20.5): 3 px from the blob centre.
    assert m[20, 13] == pytest.approx(np.exp(-9 / 18), rel=1e-6)


def test_union_by_max_and_empty():
    centers = np.array([[5.5, 5.5], [25.5, 25.5]])
    both = oracle_mask(centers, [0, 1], image_size=32, sigma=2.0)
    a = oracle_mask(centers, [0], image_size=32, sigma=2.0)
    b = oracle_mask(centers, [1], image_size=32, sigma=2.0)
    np.testing.assert_array_equal(both, np.maximum(a, b))
    assert oracle_mask(centers, [], image_size=32, sigma=2.0).max() == 0
    stack = oracle_masks(centers, [[0], [1], [0, 1]], image_size=32, sigma=2.0)
    assert stack.shape == (3, 32, 32)
    with pytest.raises(ValueError):
        oracle_mask(centers, [0], image_size=32, sigma=0)


def test_sort_of_clevr_items_carry_oracle_masks_on_referred_objects():
    ds = sort_of_clevr_generated({"train": 3, "val": 1, "test": 1, "seed": 4}, "train")
    from vqa_adapters.sort_of_clevr.generate import generate_split
    from vqa_adapters.sort_of_clevr.settings import SortOfClevrSettings

    split = generate_split(SortOfClevrSettings(train=3, val=1, test=1, seed=4), "train")
    assert len(ds) == 30
    item = ds[13]  # image 1, question 3
    assert item["image"].shape == (3, 75, 75) and item["question"].shape == (11,)
    assert item["mask"].shape == (1, 75, 75) and 0 <= item["mask"].min()
    scene, record = split.scenes[1], split.records[1][3]
    for k in record.objects:
        o = scene.objects[k]
        assert float(item["mask"][0, o.y, o.x]) > 0.9
    assert int(item["answer"]) == record.answer and item["qtype"] == int(record.qtype)


def test_synthetic_answers_match_the_image():
    ds = synthetic_dataset(8, questions_per_image=2, image_size=16, seed=3)
    for k in range(len(ds)):
        item = ds[k]
        color = int(item["question"][:3].argmax())
        rows, cols = torch.nonzero(item["image"][color], as_tuple=True)
        quad = int(rows[0] >= 8) * 2 + int(cols[0] >= 8)
        assert quad == int(item["answer"])
        assert (item["mask"][0] * item["image"][color]).sum() == item["mask"].sum()

"""The torch Dataset: keys, shapes, dtypes, index mapping and masks."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hlmrf.errors import DataError, SettingsError  # noqa: E402
from vqa_adapters.sort_of_clevr import SortOfClevrSettings, write_dataset  # noqa: E402
from vqa_adapters.sort_of_clevr.torch_data import SortOfClevrDataset  # noqa: E402

N, Q, H = 4, 3, 64


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("soc-torch")
    write_dataset(out, SortOfClevrSettings(seed=8, train=N, val=2, test=1, size=H,
                                           questions_per_image=Q))
    return out


def test_items(root):
    ds = SortOfClevrDataset(root, "train", masks=None)
    assert len(ds) == N * Q
    with np.load(root / "train.npz") as z:
        images, questions, answers, qtypes = (z[k] for k in
                                              ("images", "questions", "answers", "question_types"))
    for k in range(len(ds)):
        item = ds[k]
        i, j = divmod(k, Q)
        assert set(item) == {"image", "question", "answer", "qtype", "image_index", "question_index"}
        assert (item["image_index"], item["question_index"]) == (i, j)
        assert item["image"].shape == (3, H, H) and item["image"].dtype == torch.float32
        assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
        np.testing.assert_allclose(item["image"].permute(1, 2, 0).numpy() * 255, images[i], atol=1e-3)
        assert item["question"].dtype == torch.float32 and item["question"].shape == (11,)
        assert item["question"].tolist() == questions[i, j].tolist()
        assert item["answer"].dtype == torch.int64 and int(item["answer"]) == answers[i, j]
        assert item["qtype"].dtype == torch.int64 and int(item["qtype"]) == qtypes[i, j]
    assert ds[-1]["image_index"] == N - 1
    with pytest.raises(IndexError):
        ds[N * Q]


def test_masks_from_folder_array_and_none(root):
    rng = np.random.default_rng(0)
    masks = rng.random((N, Q, H, H), dtype=np.float32)
    assert "mask" not in SortOfClevrDataset(root, "train")[0]  # auto, no file yet
    ds = SortOfClevrDataset(root, "train", masks=masks)
    item = ds[5]
    assert item["mask"].shape == (1, H, H) and item["mask"].dtype == torch.float32
    np.testing.assert_array_equal(item["mask"][0].numpy(), masks[1, 2])
    (root / "masks").mkdir()
    np.savez_compressed(root / "masks" / "train.npz", masks=masks)
    try:
        auto = SortOfClevrDataset(root, "train")
        np.testing.assert_array_equal(auto[7]["mask"][0].numpy(), masks[2, 1])
        assert "mask" not in SortOfClevrDataset(root, "train", masks=None)[0]
        np.testing.assert_array_equal(
            SortOfClevrDataset(root, "train", masks=torch.from_numpy(masks))[0]["mask"][0].numpy(),
            masks[0, 0])
        batch = next(iter(torch.utils.data.DataLoader(auto, batch_size=5)))
        assert batch["image"].shape == (5, 3, H, H) and batch["mask"].shape == (5, 1, H, H)
        assert batch["question"].shape == (5, 11) and batch["answer"].shape == (5,)
        assert batch["image_index"].tolist() == [0, 0, 0, 1, 1]
    finally:
        (root / "masks" / "train.npz").unlink()
        (root / "masks").rmdir()


def test_bad_masks(root):
    with pytest.raises(DataError, match=r"masks have shape \(4, 3, 32, 32\), expected"):
        SortOfClevrDataset(root, "train", masks=np.zeros((N, Q, 32, 32), np.float32))
    with pytest.raises(SettingsError, match="masks must be"):
        SortOfClevrDataset(root, "train", masks="yes")

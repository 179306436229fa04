"""A torch ``Dataset`` over a Sort-of-CLEVR split on disk, one item per question.

Stable interface (Relation Networks and the distillation teachers train from it)::

    ds = SortOfClevrDataset(root, split, masks="auto")   # masks: "auto" | None | array
    len(ds) == N * Q                                     # item k is image k // Q, question k % Q
    item = ds[k]
    item["image"]           float32 (3, H, W) in [0, 1]  (RGB)
    item["question"]        float32 (11,)                (6 colour one-hot, 2 kind flags, 3 subtype)
    item["answer"]          int64 scalar                 (index into ANSWERS, 10 classes)
    item["qtype"]           int64 scalar                 (subtype code 0..5, QuestionType)
    item["mask"]            float32 (1, H, W)            only when masks are present
    item["image_index"]     int
    item["question_index"]  int

``masks``: ``"auto"`` loads ``ROOT/masks/<split>.npz`` (key ``masks``, shape ``(N, Q, H, W)``) when
that file exists and otherwise gives items without a ``"mask"`` key; ``None`` never gives masks;
an array (numpy or torch) of shape ``(N, Q, H, W)`` is used as given. ``ds.data`` is the loaded
:class:`~.generate.SortOfClevrSplit` (scene graphs included). The default collate batches items.
Images are converted per item (a float copy of a 10,200-image split would take 690 MB). This module
is the only one in the package that imports torch; it neither generates data nor makes masks.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hlmrf.errors import DataError, SettingsError, require

from .generate import SortOfClevrSplit
from .io import load_sort_of_clevr

torch = require("torch", "vqa")

__all__ = ["SortOfClevrDataset"]


class SortOfClevrDataset(torch.utils.data.Dataset):
    """Items are questions; see the module docstring for the keys, shapes and dtypes."""

    def __init__(self, root: str | os.PathLike, split: str, masks: Any = "auto"):
        self.root = Path(root)
        self.split = split
        self.data: SortOfClevrSplit = load_sort_of_clevr(self.root, split)
        n, q = self.data.answers.shape
        h = self.data.settings.size
        self.n_images, self.questions_per_image = n, q
        self.masks: np.ndarray | None = self._resolve_masks(masks, (n, q, h, h))
        self._questions = torch.from_numpy(self.data.questions.astype(np.float32))
        self._answers = torch.from_numpy(self.data.answers.astype(np.int64))
        self._qtypes = torch.from_numpy(self.data.question_types.astype(np.int64))

    def _resolve_masks(self, masks: Any, shape: tuple[int, ...]) -> np.ndarray | None:
        where = "masks argument"
        if isinstance(masks, str):
            if masks != "auto":
                raise SettingsError(f'masks must be "auto", None or an array, got {masks!r}')
            path = self.root / "masks" / f"{self.split}.npz"
            if not path.exists():
                return None
            where = str(path)
            try:
                with np.load(path, allow_pickle=False) as z:
                    masks = z["masks"]
            except (KeyError, ValueError, OSError) as exc:
                raise DataError(f"cannot read key 'masks': {exc}", where) from None
        elif masks is None:
            return None
        elif isinstance(masks, torch.Tensor):
            masks = masks.detach().cpu().numpy()
        arr = np.asarray(masks, dtype=np.float32)
        if arr.shape != shape:
            raise DataError(f"masks have shape {arr.shape}, expected (N, Q, H, W) = {shape}", where)
        return arr

    def __len__(self) -> int:
        return self.n_images * self.questions_per_image

    def get_batch(self, indices) -> dict[str, Any]:
        """The collated batch of items ``indices`` (what a DataLoader would stack), at once."""
        i, j = np.divmod(np.asarray(indices, dtype=np.int64), self.questions_per_image)
        ti, tj = torch.from_numpy(i), torch.from_numpy(j)
        batch = {
            "image": torch.from_numpy(self.data.images[i]).permute(0, 3, 1, 2).to(torch.float32)
            / 255.0,
            "question": self._questions[ti, tj],
            "answer": self._answers[ti, tj],
            "qtype": self._qtypes[ti, tj],
            "image_index": ti,
            "question_index": tj,
        }
        if self.masks is not None:
            batch["mask"] = torch.from_numpy(self.masks[i, j]).unsqueeze(1)
        return batch

    def __getitem__(self, k: int) -> dict[str, Any]:
        if not -len(self) <= k < len(self):
            raise IndexError(f"question {k} out of range for {len(self)} questions")
        k %= len(self)
        i, j = divmod(int(k), self.questions_per_image)
        image = torch.from_numpy(self.data.images[i]).permute(2, 0, 1).to(torch.float32) / 255.0
        item = {
            "image": image,
            "question": self._questions[i, j],
            "answer": self._answers[i, j],
            "qtype": self._qtypes[i, j],
            "image_index": i,
            "question_index": j,
        }
        if self.masks is not None:
            item["mask"] = torch.from_numpy(self.masks[i, j]).unsqueeze(0)
        return item

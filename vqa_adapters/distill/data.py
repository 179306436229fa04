"""Map-style question datasets for training: one item per (image, question) pair, as a dict.

Items have ``image`` float (3, H, W) in [0, 1], ``question`` float (11,) (or long token ids),
``answer`` long, ``qtype`` int, ``image_index``, ``question_index`` and, when masks exist,
``mask`` float (1, H, W) — the contract of ``vqa_adapters.sort_of_clevr.torch_data``. This module
holds an in-memory dataset over the generator's arrays (masks from a callback, so oracle masks are
computed per item instead of stored: 9,800 x 10 masks of 75 x 75 would take 2.2 GB), a tiny
separable synthetic task for tests, and the registry that maps a config's ``data.kind`` to a
loader. It does not train and does not write files.

Extension point: a dataset plugs in by adding a loader to :data:`LOADERS`; CLEVR's
(:mod:`vqa_adapters.distill.clevr_data`) returns such dicts with token-id questions, state
descriptions (``objects``) or images, and names its own question types (``type_names``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from hlmrf.errors import DataError, SettingsError
from vqa_adapters.distill.oracle import oracle_mask

__all__ = ["QADataset", "synthetic_dataset", "sort_of_clevr_generated", "LOADERS",
           "load_split", "SYNTHETIC_ANSWERS", "WithOracleMasks", "WithTokens", "question_texts"]

MaskFn = Callable[[int, int], np.ndarray]


class QADataset(Dataset):
    """Items ``i * Q + j`` over arrays ``images (N,H,W,C) uint8``, ``questions (N,Q,D)``,
    ``answers (N,Q)``, ``qtypes (N,Q)``; ``mask_fn(i, j) -> (H, W)`` gives masks when set."""

    def __init__(self, images: np.ndarray, questions: np.ndarray, answers: np.ndarray,
                 qtypes: np.ndarray, mask_fn: MaskFn | None = None,
                 texts: list | None = None):
        n, q = answers.shape
        if images.shape[0] != n or questions.shape[:2] != (n, q) or qtypes.shape != (n, q):
            raise DataError("images, questions, answers and qtypes disagree on (N, Q): "
                             f"{images.shape}, {questions.shape}, {answers.shape}, {qtypes.shape}")
        self.images, self.questions, self.answers, self.qtypes = images, questions, answers, qtypes
        self.mask_fn = mask_fn
        self.q = q
        self.texts = texts
        """Question texts per image (``texts[i][j]``), when the source has them."""

    @property
    def has_masks(self) -> bool:
        return self.mask_fn is not None

    def get_batch(self, indices: np.ndarray) -> dict:
        """The collated batch of items ``indices`` (what a DataLoader would stack), gathered at
        once."""
        i, j = np.divmod(np.asarray(indices, dtype=np.int64), self.q)
        batch = {
            "image": torch.from_numpy(self.images[i]).permute(0, 3, 1, 2).float().div_(255.0),
            "question": torch.from_numpy(np.asarray(self.questions[i, j], dtype=np.float32)),
            "answer": torch.from_numpy(self.answers[i, j].astype(np.int64)),
            "qtype": torch.from_numpy(self.qtypes[i, j].astype(np.int64)),
            "image_index": torch.from_numpy(i),
            "question_index": torch.from_numpy(j),
        }
        if self.mask_fn is not None:
            batch["mask"] = torch.from_numpy(np.stack(
                [np.asarray(self.mask_fn(a, b), np.float32) for a, b in zip(i, j)]))[:, None]
        return batch

    def __len__(self) -> int:
        return self.answers.size

    def __getitem__(self, k: int) -> dict:
        i, j = divmod(int(k), self.q)
        item = {
            "image": torch.from_numpy(self.images[i]).permute(2, 0, 1).float().div_(255.0),
            "question": torch.from_numpy(np.asarray(self.questions[i, j], dtype=np.float32)),
            "answer": torch.tensor(int(self.answers[i, j]), dtype=torch.long),
            "qtype": int(self.qtypes[i, j]),
            "image_index": i,
            "question_index": j,
        }
        if self.mask_fn is not None:
            item["mask"] = torch.from_numpy(np.asarray(self.mask_fn(i, j), np.float32))[None]
        return item


#: Answers of the synthetic task: the quadrant (TL, TR, BL, BR) of the queried colour's square.
SYNTHETIC_ANSWERS = ("top-left", "top-right", "bottom-left", "bottom-right")


def synthetic_dataset(n_images: int = 64, *, questions_per_image: int = 3, image_size: int = 16,
                      seed: int = 0, masks: bool = True) -> QADataset:
    """A tiny separable task: three coloured squares (red, green, blue) in distinct quadrants;
    the question one-hot (11 dims, first three = colour) asks which quadrant holds that colour.

    The answer is a function of image and question, so a pixel network can learn it; the mask
    is the queried square (the oracle for this task). ``qtype`` is the colour (0..2). Each
    question also has a text ("Which quadrant holds the red square?") for ``question: text``.
    """
    rng = np.random.default_rng(seed)
    h = image_size // 2
    s = max(1, image_size // 5)
    images = np.zeros((n_images, image_size, image_size, 3), dtype=np.uint8)
    boxes = np.zeros((n_images, 3, 4), dtype=np.int64)
    for i in range(n_images):
        quads = rng.permutation(4)[:3]
        for c, quad in enumerate(quads):
            r0 = (quad // 2) * h + rng.integers(0, h - s + 1)
            c0 = (quad % 2) * h + rng.integers(0, h - s + 1)
            images[i, r0:r0 + s, c0:c0 + s, c] = 255
            boxes[i, c] = (r0, c0, quad, 0)
    colors = rng.integers(0, 3, size=(n_images, questions_per_image))
    questions = np.zeros((n_images, questions_per_image, 11), dtype=np.uint8)
    rows = np.arange(n_images)[:, None]
    cols = np.arange(questions_per_image)[None, :]
    questions[rows, cols, colors] = 1
    answers = boxes[rows, colors, 2].astype(np.int64)

    def mask_fn(i: int, j: int) -> np.ndarray:
        r0, c0 = boxes[i, colors[i, j], :2]
        m = np.zeros((image_size, image_size), np.float32)
        m[r0:r0 + s, c0:c0 + s] = 1.0
        return m

    words = ("red", "green", "blue")
    texts = [[f"Which quadrant holds the {words[c]} square?" for c in row] for row in colors]
    return QADataset(images, questions, answers, colors.astype(np.int8),
                     mask_fn if masks else None, texts=texts)


@dataclass(frozen=True)
class _OracleMasks:
    centers: tuple
    referred: tuple
    image_size: int
    sigma: float

    def __call__(self, i: int, j: int) -> np.ndarray:
        return oracle_mask(self.centers[i], self.referred[i][j], image_size=self.image_size,
                           sigma=self.sigma)


def sort_of_clevr_generated(generator: dict, split: str, *, masks: str = "oracle",
                            sigma: float | None = None) -> QADataset:
    """Generate a Sort-of-CLEVR split in memory (``generator``: ``SortOfClevrSettings`` fields);
    ``masks='oracle'`` adds oracle-referred-object masks (sigma defaults to the object size)."""
    from vqa_adapters.sort_of_clevr.generate import generate_split
    from vqa_adapters.sort_of_clevr.settings import SortOfClevrSettings

    settings = SortOfClevrSettings.from_dict(generator)
    data = generate_split(settings, split)
    mask_fn = None
    if masks == "oracle":
        mask_fn = _OracleMasks(tuple(s.centers() for s in data.scenes),
                               tuple(tuple(q.objects for q in qs) for qs in data.records),
                               settings.size, float(sigma or settings.object_size))
    elif masks != "none":
        raise SettingsError(f"in-memory Sort-of-CLEVR supports masks 'oracle' or 'none', got "
                            f"{masks!r}")
    return QADataset(data.images, data.questions, data.answers, data.question_types, mask_fn,
                     texts=[[q.text for q in qs] for qs in data.records])


def _load_synthetic(data, split: str) -> QADataset:
    offset = {"train": 0, "val": 1, "test": 2}[split]
    n = {"train": data.synthetic_train, "val": data.synthetic_eval,
         "test": data.synthetic_eval}[split]
    return synthetic_dataset(n, questions_per_image=data.synthetic_questions,
                             image_size=data.synthetic_size, seed=data.seed * 3 + offset,
                             masks=data.masks != "none")


class WithOracleMasks(Dataset):
    """Adds oracle-referred-object masks to a ``SortOfClevrDataset`` (from its scene graphs)."""

    def __init__(self, base, sigma: float | None = None):
        data = base.data
        self.base = base
        self.q = data.answers.shape[1]
        self.mask_fn = _OracleMasks(tuple(s.centers() for s in data.scenes),
                                    tuple(tuple(q.objects for q in qs) for qs in data.records),
                                    data.settings.size,
                                    float(sigma or data.settings.object_size))

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, k: int) -> dict:
        item = dict(self.base[k])
        i, j = divmod(int(k), self.q)
        item["mask"] = torch.from_numpy(self.mask_fn(i, j))[None]
        return item

    def get_batch(self, indices: np.ndarray) -> dict:
        batch = self.base.get_batch(indices)
        i, j = np.divmod(np.asarray(indices, dtype=np.int64), self.q)
        batch["mask"] = torch.from_numpy(np.stack([self.mask_fn(a, b) for a, b in zip(i, j)]))[:, None]
        return batch


def question_texts(dataset) -> list[list[str]]:
    """``texts[i][j]``: the natural-language question ``j`` of image ``i`` of a Sort-of-CLEVR
    dataset (generated in memory or read from disk, with or without a mask wrapper)."""
    seen = dataset
    while seen is not None:
        texts = getattr(seen, "texts", None)
        if texts is not None:
            return texts
        data = getattr(seen, "data", None)
        if data is not None and hasattr(data, "records"):
            return [[q.text for q in qs] for qs in data.records]
        seen = getattr(seen, "base", None)
    raise SettingsError("data.question: text needs question texts, and this dataset has none "
                        "(Sort-of-CLEVR and synthetic splits carry them); use data.question: "
                        "onehot")


class WithTokens(Dataset):
    """A question dataset whose ``question`` is replaced by token ids ``tokens[i, j]`` (int64,
    right-padded with 0) of its natural-language text; everything else is the base's."""

    def __init__(self, base, tokens: np.ndarray):
        self.base = base
        self.q = tokens.shape[1]
        self.tokens = torch.from_numpy(np.ascontiguousarray(tokens, dtype=np.int64))
        if tokens.shape[0] * self.q != len(base):
            raise DataError(f"{tokens.shape[0]} x {self.q} token rows for {len(base)} questions")

    def __len__(self) -> int:
        return len(self.base)

    def __getattr__(self, name):  # masks, data, has_masks ... of the base
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def __getitem__(self, k: int) -> dict:
        item = dict(self.base[k])
        i, j = divmod(int(k), self.q)
        item["question"] = self.tokens[i, j]
        return item

    def get_batch(self, indices: np.ndarray) -> dict:
        batch = self.base.get_batch(indices)
        i, j = np.divmod(np.asarray(indices, dtype=np.int64), self.q)
        batch["question"] = self.tokens[torch.from_numpy(i), torch.from_numpy(j)]
        return batch


def _load_sort_of_clevr(data, split: str):
    if data.root is None:
        return sort_of_clevr_generated(data.generator, split, masks=data.masks,
                                       sigma=data.mask_sigma)
    from vqa_adapters.sort_of_clevr.torch_data import SortOfClevrDataset

    if data.masks == "none":
        return SortOfClevrDataset(data.root, split, masks=None)
    if data.masks == "oracle":
        return WithOracleMasks(SortOfClevrDataset(data.root, split, masks=None),
                               sigma=data.mask_sigma)
    ds = SortOfClevrDataset(data.root, split, masks="auto")
    if ds.masks is None:
        raise SettingsError(f"data.masks is 'file' but {data.root}/masks/{split}.npz does not "
                            "exist; write masks there or use data.masks: oracle")
    return ds


def _load_clevr(data, split: str):
    from vqa_adapters.distill.clevr_data import load_clevr

    return load_clevr(data, split)


#: ``data.kind`` -> ``loader(data_settings, split)``; the extension point for new datasets.
LOADERS: dict[str, Callable] = {
    "synthetic": _load_synthetic,
    "sort_of_clevr": _load_sort_of_clevr,
    "clevr": _load_clevr,
}


def load_split(data, split: str):
    """The dataset for ``split`` under data settings ``data`` (see ``DataSettings``)."""
    if data.kind not in LOADERS:
        raise SettingsError(f"data.kind must be one of {sorted(LOADERS)}, got {data.kind!r}")
    return LOADERS[data.kind](data, split)

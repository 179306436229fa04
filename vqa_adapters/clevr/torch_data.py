"""Teacher inputs for CLEVR: vocabularies from the training split and a torch ``Dataset`` with masks.

One item per question::

    ds = ClevrMaskDataset(questions, scenes, "images/", masks, qvocab, avocab, size=(128, 128))
    item = ds[k]
    item["image"]         float32 (3, H, W) in [0, 1], the image resized to the mask size
    item["question"]      int64 (T,) token ids (``qvocab.encode``; pad with ``collate``)
    item["answer"]        int64 scalar, index in ``avocab`` (-1 if unknown or absent)
    item["mask"]          float32 (1, H, W) in [0, 1]
    item["masked_image"]  float32 (3, H, W) = image * mask, the external-mask teacher's input
    item["question_index"], item["image_index"]  ints

``masks`` is an ``(N, H, W)`` array (uint8 = value * 255, or float in [0, 1]) in the order of
``questions``, or the path of a ``vqa-masks`` ``masks.npz`` (matched by ``question_index``).
Vocabularies are plain Python (no torch); torch is imported only when a Dataset is built or
:func:`collate` runs, so ``import vqa_adapters.clevr`` never imports it. This module does not make
masks (see :mod:`vqa_adapters.psl`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from hlmrf.errors import DataError, require

from .io import Question, Scene

__all__ = ["Vocabulary", "tokenize", "build_vocabularies", "ClevrMaskDataset", "collate"]

PAD, UNK = "<pad>", "<unk>"
_TOKEN = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lower-case words and punctuation marks: ``"Is it red?"`` -> ``['is', 'it', 'red', '?']``."""
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Vocabulary:
    """Tokens in id order; for questions ids 0 and 1 are ``<pad>`` and ``<unk>``."""

    tokens: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def index(self) -> Mapping[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}

    def encode(self, text: str) -> list[int]:
        """Token ids of a question (unknown words -> ``<unk>``)."""
        idx = self.index
        unk = idx.get(UNK, -1)
        return [idx.get(t, unk) for t in tokenize(text)]

    def lookup(self, token: str) -> int:
        """Id of one token (an answer), or -1."""
        return self.index.get(token, -1)


def build_vocabularies(train: Iterable[Question]) -> tuple[Vocabulary, Vocabulary]:
    """``(question vocabulary, answer vocabulary)`` from the training questions, sorted tokens
    (deterministic); questions start with ``<pad>``, ``<unk>``."""
    words, answers = set(), set()
    for q in train:
        words.update(tokenize(q.text))
        if q.answer is not None:
            answers.add(q.answer)
    return Vocabulary((PAD, UNK, *sorted(words))), Vocabulary(tuple(sorted(answers)))


def _load_masks(masks: Any, questions: Sequence[Question]) -> np.ndarray:
    if isinstance(masks, (str, os.PathLike)):
        path = str(masks)
        try:
            with np.load(path, allow_pickle=False) as z:
                arr, qidx = z["masks"], z["question_index"]
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"not a vqa-masks masks.npz: {exc}", path) from None
        pos = {int(q): i for i, q in enumerate(qidx)}
        missing = [q.question_index for q in questions if q.question_index not in pos]
        if missing:
            raise DataError(f"no mask for question {missing[0]} ({len(missing)} missing)", path)
        return arr[[pos[q.question_index] for q in questions]]
    arr = np.asarray(masks)
    if arr.ndim != 3 or len(arr) != len(questions):
        raise DataError(f"masks have shape {arr.shape}; expected (N, H, W) with N = {len(questions)}",
                        "masks argument")
    return arr


class ClevrMaskDataset:
    """CLEVR questions with images, token ids, answers and masks (a ``torch.utils.data.Dataset``)."""

    def __init__(self, questions: Sequence[Question], scenes: Mapping[int, Scene],
                 images: str | os.PathLike, masks: Any, question_vocab: Vocabulary,
                 answer_vocab: Vocabulary):
        self.torch = require("torch", "torch")
        self.questions = tuple(questions)
        self.scenes = scenes
        self.images = Path(images)
        self.masks = _load_masks(masks, self.questions)
        self.size = (self.masks.shape[2], self.masks.shape[1])  # (width, height)
        self.question_vocab = question_vocab
        self.answer_vocab = answer_vocab
        self._cache: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.questions)

    def _image(self, image_index: int):
        t = self._cache.get(image_index)
        if t is None:
            from PIL import Image

            name = self.scenes[image_index].image_filename
            path = self.images / name
            try:
                img = Image.open(path).convert("RGB").resize(self.size, Image.BILINEAR)
            except OSError as exc:
                raise DataError(f"cannot read image: {exc}", str(path)) from None
            t = self.torch.from_numpy(np.asarray(img, np.float32) / 255.0).permute(2, 0, 1).contiguous()
            if len(self._cache) < 256:
                self._cache[image_index] = t
        return t

    def __getitem__(self, k: int) -> dict[str, Any]:
        torch = self.torch
        if not -len(self) <= k < len(self):
            raise IndexError(f"question {k} out of range for {len(self)} questions")
        q = self.questions[k]
        image = self._image(q.image_index)
        m = self.masks[k]
        m = m.astype(np.float32) / 255.0 if m.dtype == np.uint8 else m.astype(np.float32)
        mask = torch.from_numpy(m).unsqueeze(0)
        answer = self.answer_vocab.lookup(q.answer) if q.answer is not None else -1
        return {
            "image": image,
            "question": torch.tensor(self.question_vocab.encode(q.text), dtype=torch.int64),
            "answer": torch.tensor(answer, dtype=torch.int64),
            "mask": mask,
            "masked_image": image * mask,
            "question_index": q.question_index,
            "image_index": q.image_index,
        }


def collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack a batch; questions are right-padded with 0 (``<pad>``) and their lengths returned."""
    torch = require("torch", "torch")
    lengths = torch.tensor([len(it["question"]) for it in items], dtype=torch.int64)
    q = torch.zeros(len(items), int(lengths.max()) if len(items) else 0, dtype=torch.int64)
    for i, it in enumerate(items):
        q[i, : len(it["question"])] = it["question"]
    out = {k: torch.stack([it[k] for it in items]) for k in ("image", "mask", "masked_image", "answer")}
    out.update(question=q, question_length=lengths,
               question_index=[it["question_index"] for it in items],
               image_index=[it["image_index"] for it in items])
    return out

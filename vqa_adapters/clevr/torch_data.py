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
``questions``, or the path of a ``vqa-masks`` ``masks.npz`` (matched by ``question_index``) of
either layout: ``--store arrays`` (the masks are read from it) or ``--store objects`` (each item's
mask is rendered from its stored objects and its scene when the item is read, by
:func:`vqa_adapters.psl.io.render_stored_mask`, equal bit for bit to the stored array; nothing is
cached, each question being read once an epoch). Vocabularies are plain Python (no torch); torch
is imported only when a Dataset is built or :func:`collate` runs, so ``import vqa_adapters.clevr``
never imports it. This module does not make masks (see :mod:`vqa_adapters.psl`).
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


def _load_masks(masks: Any, questions: Sequence[Question]
                ) -> tuple[np.ndarray | None, Any, np.ndarray | None]:
    """``(array, None, None)`` for mask arrays; ``(None, stored, rows)`` for a ``--store objects``
    file: ``stored`` (:class:`vqa_adapters.psl.io.StoredMasks`) and each question's row in it."""
    if isinstance(masks, (str, os.PathLike)):
        from vqa_adapters.psl.io import read_masks_npz  # the PSL stage, only for a vqa-masks file

        stored = read_masks_npz(masks)
        path = stored.path
        pos = {int(q): i for i, q in enumerate(stored.question_index)}
        missing = [q.question_index for q in questions if q.question_index not in pos]
        if missing:
            raise DataError(f"no mask for question {missing[0]} ({len(missing)} missing)", path)
        rows = np.array([pos[q.question_index] for q in questions], np.int64)
        if stored.masks is not None:
            return stored.masks[rows], None, None
        other = [q for q, r in zip(questions, rows) if int(stored.image_index[r]) != q.image_index]
        if other:
            q = other[0]
            raise DataError(f"question {q.question_index} is about image {q.image_index} here but "
                            f"image {int(stored.image_index[pos[q.question_index]])} in the file: "
                            "masks of another question file", path)
        return None, stored, rows
    arr = np.asarray(masks)
    if arr.ndim != 3 or len(arr) != len(questions):
        raise DataError(f"masks have shape {arr.shape}; expected (N, H, W) with N = {len(questions)}",
                        "masks argument")
    return arr, None, None


class ClevrMaskDataset:
    """CLEVR questions with images, token ids, answers and masks (a ``torch.utils.data.Dataset``)."""

    def __init__(self, questions: Sequence[Question], scenes: Mapping[int, Scene],
                 images: str | os.PathLike, masks: Any, question_vocab: Vocabulary,
                 answer_vocab: Vocabulary):
        self.torch = require("torch", "torch")
        self.questions = tuple(questions)
        self.scenes = scenes
        self.images = Path(images)
        self.masks, self._stored, self._rows = _load_masks(masks, self.questions)
        """The masks array, or None when they are rendered per item (a ``--store objects`` file)."""
        if self.masks is not None:
            self.size = (self.masks.shape[2], self.masks.shape[1])  # (width, height)
        else:
            self.size = self._stored.size
        self._facts: dict[int, Any] = {}
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

    def _render(self, k: int, q: Question) -> np.ndarray:
        """Question ``k``'s uint8 mask from its stored objects (its scene's facts built once)."""
        from vqa_adapters.psl.facts import ObjectFacts, clevr_object_facts
        from vqa_adapters.psl.io import check_scene, render_stored_mask

        k = k % len(self)
        f = self._facts.get(q.image_index)
        if f is None:
            full = clevr_object_facts(self.scenes[q.image_index])
            # Only the geometry is kept (a training split has 70,000 scenes; their relation
            # matrices would be most of the cache).
            f = self._facts[q.image_index] = ObjectFacts({}, {}, {}, full.centres, full.radii,
                                                         full.image_size)
        check_scene(self._stored, int(self._rows[k]), f, q.question_index, q.image_index)
        try:
            return render_stored_mask(self._stored, int(self._rows[k]), f)
        except IndexError:
            raise DataError(f"question {q.question_index}: a chosen object is not in scene "
                            f"{q.image_index} ({f.n} objects): masks of another scene file",
                            self._stored.path) from None

    def __getitem__(self, k: int) -> dict[str, Any]:
        torch = self.torch
        if not -len(self) <= k < len(self):
            raise IndexError(f"question {k} out of range for {len(self)} questions")
        q = self.questions[k]
        image = self._image(q.image_index)
        m = self.masks[k] if self.masks is not None else self._render(k, q)
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

"""Generating one Sort-of-CLEVR split in memory: scenes, images, questions and their arrays.

Each split draws from its own ``numpy.random.Generator(PCG64(SeedSequence([seed, split_id])))``,
so a split's content depends only on the seed and the per-image settings, never on the other
splits' counts; images are drawn one after another, so the first ``k`` images of a split are the
same whatever its count. This module does not write files and does not print; progress is reported
through an optional callback.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .questions import Question, sample_questions
from .scene import Scene, _draw, place_objects
from .settings import SortOfClevrSettings, split_seed
from .vocab import NONREL_FLAG, QUESTION_DIM, REL_FLAG, SUBTYPE_OFFSET

__all__ = ["SortOfClevrSplit", "generate_split", "split_rng"]


@dataclass(frozen=True, eq=False)
class SortOfClevrSplit:
    """One split: arrays for training and the scene graphs and question records behind them.

    ``N`` images, ``Q`` questions per image, ``H = W = settings.size``.
    """

    #: "train", "val" or "test".
    split: str
    #: ``(N, H, W, 3)`` uint8 RGB, white background.
    images: np.ndarray
    #: ``(N, Q, 11)`` uint8 one-hot question vectors.
    questions: np.ndarray
    #: ``(N, Q)`` int64 answer indices into ``ANSWERS``.
    answers: np.ndarray
    #: ``(N, Q)`` int8 question subtype codes 0..5 (``QuestionType``).
    question_types: np.ndarray
    #: ``N`` scene graphs.
    scenes: tuple[Scene, ...]
    #: ``N`` tuples of ``Q`` question records (text, referred objects).
    records: tuple[tuple[Question, ...], ...]
    #: The settings that generated this split.
    settings: SortOfClevrSettings

    def __len__(self) -> int:
        return len(self.scenes)


def split_rng(settings: SortOfClevrSettings, split: str) -> np.random.Generator:
    """The generator that ``split`` draws from."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(split_seed(settings.seed, split))))


def generate_split(settings: SortOfClevrSettings, split: str,
                   on_progress: Callable[[int], None] | None = None,
                   progress_every: int = 256) -> SortOfClevrSplit:
    """Generate ``split`` under ``settings``; ``on_progress(k)`` is told of every ``k`` new images."""
    n = settings.count(split)
    size, q = settings.size, settings.questions_per_image
    n_rel = settings.n_relational
    rng = split_rng(settings, split)
    images = np.full((n, size, size, 3), 255, dtype=np.uint8)
    colors = np.empty((n, q), dtype=np.int64)
    codes = np.empty((n, q), dtype=np.int64)
    answers = np.empty((n, q), dtype=np.int64)
    scenes: list[Scene] = []
    records: list[tuple[Question, ...]] = []
    pending = 0
    for i in range(n):
        scene = place_objects(rng, size, settings.object_size)
        _draw(scene, images[i])
        qs = sample_questions(rng, scene, q - n_rel, n_rel)
        colors[i] = [x.color for x in qs]
        codes[i] = [x.qtype for x in qs]
        answers[i] = [x.answer for x in qs]
        scenes.append(scene)
        records.append(qs)
        pending += 1
        if on_progress is not None and pending >= progress_every:
            on_progress(pending)
            pending = 0
    if on_progress is not None and pending:
        on_progress(pending)
    # The one-hot layout of vocab: colour, then kind flag, then subtype.
    questions = np.zeros((n, q, QUESTION_DIM), dtype=np.uint8)
    img, row = np.indices((n, q))
    questions[img, row, colors] = 1
    questions[img, row, np.where(codes >= 3, REL_FLAG, NONREL_FLAG)] = 1
    questions[img, row, SUBTYPE_OFFSET + codes % 3] = 1
    qtypes = codes.astype(np.int8)
    return SortOfClevrSplit(split, images, questions, answers, qtypes, tuple(scenes),
                            tuple(records), settings)

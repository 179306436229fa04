"""Sort-of-CLEVR questions: drawing them for a scene, answering them from the scene graph, encoding.

A question is a value: its type, the colour of the object it is about (the X object), the fixed
text, the answer index and the objects it refers to (X first, then the nearest / farthest object,
or every other object of X's shape). Answers come from the scene graph alone, never from pixels.
Rules, written once:

- left / top: ``x < size / 2`` / ``y < size / 2`` (strict; ``y`` grows downwards);
- nearest / farthest: Euclidean distance between centres, over the other five objects; ties go to
  the object with the lowest colour index (as the public generator's ``list.index``);
- count: objects with X's shape, X included (1..6).

This module does not draw images and does not touch files.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scene import Scene
from .vocab import (
    ANSWER_INDEX,
    ANSWERS,
    COLORS,
    NONREL_FLAG,
    QUESTION_DIM,
    REL_FLAG,
    SHAPE_ANSWER,
    SUBTYPE_OFFSET,
    TEMPLATES,
    QuestionType,
)

__all__ = ["Question", "answer_question", "sample_questions", "encode_question"]


@dataclass(frozen=True)
class Question:
    """One question about one scene."""

    #: The subtype (code 0..5).
    qtype: QuestionType
    #: Index of the X object, which is also the index of its colour in ``COLORS``.
    color: int
    #: The fixed phrasing with the colour filled in.
    text: str
    #: Index of the answer in ``ANSWERS``.
    answer: int
    #: Referred objects: X first, then the nearest / farthest / other same-shape objects.
    objects: tuple[int, ...]

    @property
    def answer_word(self) -> str:
        return ANSWERS[self.answer]

    @property
    def vector(self) -> np.ndarray:
        """The standard 11-dim one-hot encoding (uint8)."""
        return encode_question(self.qtype, self.color)


def encode_question(qtype: QuestionType | int, color: int) -> np.ndarray:
    """6 colour one-hot, then the non-relational / relational flags, then the 3-way subtype."""
    qtype = QuestionType(qtype)
    v = np.zeros(QUESTION_DIM, dtype=np.uint8)
    v[color] = 1
    v[REL_FLAG if qtype.relational else NONREL_FLAG] = 1
    v[SUBTYPE_OFFSET + qtype.subtype] = 1
    return v


def answer_question(scene: Scene, qtype: QuestionType | int, color: int) -> Question:
    """Answer the question of type ``qtype`` about the object of colour index ``color``."""
    if type(qtype) is not QuestionType:
        qtype = QuestionType(qtype)
    objs = scene.objects
    me = objs[color]
    refs: tuple[int, ...] = (color,)
    if qtype is QuestionType.SHAPE:
        word = SHAPE_ANSWER[me.shape]
    elif qtype is QuestionType.LEFT:
        word = "yes" if 2 * me.x < scene.image_size else "no"
    elif qtype is QuestionType.TOP:
        word = "yes" if 2 * me.y < scene.image_size else "no"
    elif qtype is QuestionType.COUNT_SAME_SHAPE:
        refs = (color,) + tuple(j for j, o in enumerate(objs) if j != color and o.shape == me.shape)
        word = str(len(refs))
    else:
        # Squared integer distances: exact, so ties are real ties and break by index.
        others = [j for j in range(len(objs)) if j != color]
        d2 = [(objs[j].x - me.x) ** 2 + (objs[j].y - me.y) ** 2 for j in others]
        pick = min(d2) if qtype is QuestionType.NEAREST_SHAPE else max(d2)
        other = others[d2.index(pick)]
        refs = (color, other)
        word = SHAPE_ANSWER[objs[other].shape]
    return Question(qtype, color, TEMPLATES[qtype].format(color=COLORS[color]), ANSWER_INDEX[word], refs)


def sample_questions(rng: np.random.Generator, scene: Scene, n_nonrel: int, n_rel: int
                     ) -> tuple[Question, ...]:
    """Draw ``n_nonrel`` non-relational then ``n_rel`` relational questions, colour and subtype
    uniform and independent (repeats allowed, as in the public generator)."""
    n = n_nonrel + n_rel
    colors = rng.integers(len(COLORS), size=n).tolist()
    subtypes = rng.integers(3, size=n).tolist()
    return tuple(
        answer_question(scene, _TYPES[subtypes[i] + (3 if i >= n_nonrel else 0)], colors[i])
        for i in range(n)
    )


_TYPES = tuple(QuestionType)

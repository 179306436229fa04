"""The fixed vocabularies of Sort-of-CLEVR: colours, shapes, question types, answers, phrasings.

Everything here is a constant of the dataset format (Santoro et al. 2017, as the usual public
generator writes it); changing a value changes the meaning of files already on disk. This module
holds no randomness and does no geometry: answering questions is in :mod:`.questions`.

Spelling follows CLEVR's scene files (``color``), so one mask maker can read both.
"""
from __future__ import annotations

from enum import IntEnum

__all__ = [
    "COLORS",
    "COLOR_RGB",
    "SHAPES",
    "SHAPE_ANSWER",
    "ANSWERS",
    "ANSWER_INDEX",
    "QuestionType",
    "TEMPLATES",
    "QUESTION_DIM",
    "NONREL_FLAG",
    "REL_FLAG",
    "SUBTYPE_OFFSET",
]

#: The six object colours; an object's index in a scene is the index of its colour here.
COLORS: tuple[str, ...] = ("red", "green", "blue", "orange", "gray", "yellow")

#: RGB of each colour, as the public generator draws them (its BGR tuples, reordered).
COLOR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "orange": (255, 156, 0),
    "gray": (128, 128, 128),
    "yellow": (255, 255, 0),
}

#: Object shapes as the scene graph names them.
SHAPES: tuple[str, ...] = ("square", "circle")

#: The answer word for each shape (the standard vocabulary says "rectangle" for the square).
SHAPE_ANSWER: dict[str, str] = {"square": "rectangle", "circle": "circle"}

#: The standard 10-class answer vocabulary; an answer is stored as its index here.
ANSWERS: tuple[str, ...] = ("yes", "no", "rectangle", "circle", "1", "2", "3", "4", "5", "6")
ANSWER_INDEX: dict[str, int] = {word: i for i, word in enumerate(ANSWERS)}


class QuestionType(IntEnum):
    """The six question subtypes; the value is the code stored in ``question_types``.

    Codes 0-2 are non-relational (subtype ``code``), 3-5 relational (subtype ``code - 3``).
    """

    SHAPE = 0
    LEFT = 1
    TOP = 2
    NEAREST_SHAPE = 3
    FARTHEST_SHAPE = 4
    COUNT_SAME_SHAPE = 5

    @property
    def relational(self) -> bool:
        return self.value >= 3

    @property
    def subtype(self) -> int:
        """The 0..2 index within its kind, as the one-hot vector's last three entries encode it."""
        return self.value % 3


#: Fixed phrasing of each question type; ``{color}`` is the colour word of the X object.
TEMPLATES: dict[QuestionType, str] = {
    QuestionType.SHAPE: "What is the shape of the {color} object?",
    QuestionType.LEFT: "Is the {color} object on the left?",
    QuestionType.TOP: "Is the {color} object on the top?",
    QuestionType.NEAREST_SHAPE: "What is the shape of the object nearest to the {color} object?",
    QuestionType.FARTHEST_SHAPE: "What is the shape of the object farthest from the {color} object?",
    QuestionType.COUNT_SAME_SHAPE: "How many objects have the same shape as the {color} object?",
}

#: Layout of the question vector: 6 colour one-hot, non-relational flag, relational flag,
#: then the 3-way subtype one-hot.
QUESTION_DIM = 11
NONREL_FLAG = 6
REL_FLAG = 7
SUBTYPE_OFFSET = 8

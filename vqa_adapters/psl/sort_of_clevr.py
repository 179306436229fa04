"""Sort-of-CLEVR for the PSL mask pipeline: a reader for its six phrasings and its object facts.

:func:`parse_sort_of_clevr` reads the fixed templates of :data:`vqa_adapters.sort_of_clevr.TEMPLATES`
(any letter case, extra spaces) into the same :class:`~vqa_adapters.clevr.parser.QuestionParse` the
CLEVR parsers produce: "the X object" is a unique mention with ``color = X``; "the object
nearest to / farthest from the X object" is a unique mention related to it by ``nearest`` /
``farthest``; "objects [that] have the same shape as the X object" is a plural mention related to
it by ``same shape`` (the other objects of that shape; X itself is referred as the anchor).
:func:`sort_of_clevr_object_facts` states colours, shapes, the left/right and top/bottom halves
(attributes ``hpos``, ``vpos``) and the relations ``nearest``, ``farthest`` (ties to the lowest
colour index, as the generator) and ``same_shape``. Nothing here reads files.
"""
from __future__ import annotations

import re

import numpy as np

from ..clevr.parser import Mention, ParseFailure, QuestionKind, QuestionParse, Relation
from ..sort_of_clevr.scene import Scene
from ..sort_of_clevr.vocab import COLORS, SHAPES
from .facts import ObjectFacts

__all__ = ["parse_sort_of_clevr", "sort_of_clevr_object_facts", "SORT_OF_CLEVR_VALUES"]

#: Attribute vocabularies of the Sort-of-CLEVR facts.
SORT_OF_CLEVR_VALUES: dict[str, tuple[str, ...]] = {
    "color": COLORS,
    "shape": SHAPES,
    "hpos": ("left", "right"),
    "vpos": ("top", "bottom"),
}

_X = r"the (?P<color>\w+) object"
_FRAMES = [
    (re.compile(rf"what is the shape of {_X}\?"), "shape"),
    (re.compile(rf"is {_X} on the left\?"), "hpos"),
    (re.compile(rf"is {_X} on the top\?"), "vpos"),
    (re.compile(rf"what is the shape of the object nearest to {_X}\?"), "nearest"),
    (re.compile(rf"what is the shape of the object farthest from {_X}\?"), "farthest"),
    (re.compile(rf"how many objects (?:that )?have the same shape as {_X}\?"), "count"),
]


def parse_sort_of_clevr(text: str) -> QuestionParse | ParseFailure:
    """Read one Sort-of-CLEVR question; an unknown phrasing or colour is a :class:`ParseFailure`."""
    norm = " ".join(str(text).lower().split())
    if norm and not norm.endswith("?"):
        norm += "?"
    for pattern, kind in _FRAMES:
        m = pattern.fullmatch(norm)
        if m is None:
            continue
        color = m.group("color")
        if color not in COLORS:
            return ParseFailure(text, f"unknown colour {color!r} (known: {', '.join(COLORS)})",
                                "sort-of-clevr", m.start("color"))
        if kind in ("shape", "hpos", "vpos"):
            x = Mention(0, color=color, unique=True)
            return QuestionParse(text, QuestionKind.QUERY, (x,), (), (0,), attribute=kind,
                                 source="sort-of-clevr")
        x = Mention(1, color=color, unique=True)
        if kind == "count":
            other = Mention(0, plural=True)
            rel = Relation("same", "shape", 0, 1)
            return QuestionParse(text, QuestionKind.COUNT, (other, x), (rel,), (0,),
                                 source="sort-of-clevr")
        other = Mention(0, unique=True)
        return QuestionParse(text, QuestionKind.QUERY, (other, x), (Relation("spatial", kind, 0, 1),),
                             (0,), attribute="shape", source="sort-of-clevr")
    return ParseFailure(text, "not one of the six Sort-of-CLEVR phrasings", "sort-of-clevr", 0)


def sort_of_clevr_object_facts(scene: Scene, blob_scale: float = 2.0) -> ObjectFacts:
    """Object facts of a Sort-of-CLEVR scene; blob radius ``blob_scale * object size``."""
    objs = scene.objects
    n = len(objs)
    xy = np.asarray([(o.x, o.y) for o in objs], np.float64).reshape(n, 2)
    cols = {
        "color": [COLORS.index(o.color) for o in objs],
        "shape": [SHAPES.index(o.shape) for o in objs],
        "hpos": [0 if 2 * o.x < scene.image_size else 1 for o in objs],
        "vpos": [0 if 2 * o.y < scene.image_size else 1 for o in objs],
    }
    probs = {}
    for a, idx in cols.items():
        p = np.zeros((n, len(SORT_OF_CLEVR_VALUES[a])))
        p[np.arange(n), idx] = 1.0
        probs[a] = p
    d2 = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    eye = np.eye(n, dtype=bool)
    near = np.zeros((n, n), bool)
    far = np.zeros((n, n), bool)
    if n > 1:
        # argmin/argmax return the first (lowest index) of ties, as the generator's list.index.
        near[np.arange(n), np.argmin(np.where(eye, np.inf, d2), axis=1)] = True
        far[np.arange(n), np.argmax(np.where(eye, -np.inf, d2), axis=1)] = True
    shape = np.asarray(cols["shape"])
    same = (shape[:, None] == shape[None, :]) & ~eye
    return ObjectFacts(SORT_OF_CLEVR_VALUES, probs, {"nearest": near, "farthest": far, "same_shape": same},
                       xy, np.asarray([blob_scale * o.size for o in objs], np.float64),
                       (scene.image_size, scene.image_size))

"""Sort-of-CLEVR (Santoro et al. 2017), regenerated deterministically with its scene graphs.

Pipeline: :class:`SortOfClevrSettings` (validated) -> :func:`generate_split` (scenes, images,
questions in memory) -> :func:`write_dataset` / :func:`load_sort_of_clevr` (the on-disk format of
docs/sort_of_clevr.md). The torch ``Dataset`` lives in :mod:`.torch_data` and is not imported here,
so this package needs only numpy. Masks for distillation are made elsewhere (the PSL pipeline); the
scene JSON carries what they need (centres and sizes in pixels).
"""
from .generate import SortOfClevrSplit, generate_split
from .io import load_sort_of_clevr, write_dataset
from .questions import Question, answer_question, encode_question
from .scene import Scene, SceneObject, place_objects, render
from .settings import SPLITS, SortOfClevrSettings
from .vocab import ANSWERS, COLOR_RGB, COLORS, SHAPES, TEMPLATES, QuestionType

__all__ = [
    "ANSWERS",
    "COLORS",
    "COLOR_RGB",
    "Question",
    "QuestionType",
    "SHAPES",
    "SPLITS",
    "Scene",
    "SceneObject",
    "SortOfClevrSettings",
    "SortOfClevrSplit",
    "TEMPLATES",
    "answer_question",
    "encode_question",
    "generate_split",
    "load_sort_of_clevr",
    "place_objects",
    "render",
    "write_dataset",
]

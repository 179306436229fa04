"""CLEVR front end: read scenes and questions, execute programs, parse questions, score masks.

The stages, in pipeline order: :mod:`.io` (files -> typed values), :mod:`.executor` (program + scene
-> answer, node outputs, referred objects), :mod:`.parser` (question text or gold program -> mentions
and relations), :mod:`.metrics` (chosen vs referred objects -> precision/recall report). Nothing here
builds PSL rules or images; later stages consume these values.
"""
from .errors import ClevrDataError, ProgramExecutionError, QuestionParseError
from .executor import Execution, execute_program, referred_objects
from .io import (
    ProgramStep,
    Question,
    Scene,
    SceneObject,
    load_questions,
    load_scenes,
    normalize_answer,
)

__all__ = [
    "ClevrDataError",
    "ProgramExecutionError",
    "QuestionParseError",
    "SceneObject",
    "Scene",
    "ProgramStep",
    "Question",
    "load_scenes",
    "load_questions",
    "normalize_answer",
    "Execution",
    "execute_program",
    "referred_objects",
]

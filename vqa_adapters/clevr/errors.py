"""Errors of the CLEVR front end, each a subclass of the hlmrf hierarchy and of ``ValueError``.

Messages name the file (when there is one), the question or scene index and the offending value,
and say what would have been accepted. This module defines the classes only; it raises nothing.
"""
from __future__ import annotations

from hlmrf.errors import DataError, HlmrfError

__all__ = ["ClevrDataError", "ProgramExecutionError", "QuestionParseError"]


class ClevrDataError(DataError):
    """A malformed CLEVR scene or question file (unknown value, bad program, missing scene)."""


class ProgramExecutionError(DataError):
    """A well-formed program that cannot run on its scene (``unique`` on a set of size != 1, ...).

    ``node`` is the index of the failing program step, ``question_index`` the question (if known).
    """

    def __init__(
        self,
        message: str,
        node: int | None = None,
        question_index: int | None = None,
        path: str | None = None,
    ):
        self.detail = message
        self.node = node
        self.question_index = question_index
        where = []
        if question_index is not None:
            where.append(f"question {question_index}")
        if node is not None:
            where.append(f"program node {node}")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message, path=path)


class QuestionParseError(HlmrfError, ValueError):
    """Question text (or a program) that the parser cannot read; ``reason`` says why."""

    def __init__(self, reason: str, text: str | None = None):
        self.reason = reason
        self.text = text
        super().__init__(reason if text is None else f"{reason} (question: {text!r})")

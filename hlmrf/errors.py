"""The exception hierarchy of hlmrf.

Every error that hlmrf raises on purpose is an :class:`HlmrfError`, and each subclass also
inherits the builtin a caller would naturally catch (``ValueError`` for bad input, ``ImportError``
for a missing extra, ``RuntimeError`` for a solve that cannot succeed), after lark's
``ConfigurationError(LarkError, ValueError)``. Messages diagnose and prescribe: they say where the
problem is (file, line, column) and what would fix it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = [
    "HlmrfError",
    "RuleSyntaxError",
    "RuleError",
    "DataError",
    "GroundingError",
    "InfeasibleError",
    "SolverError",
    "SettingsError",
    "MissingDependencyError",
    "OutputError",
    "HlmrfWarning",
    "LearningWarning",
    "Span",
    "caret_excerpt",
]


class HlmrfError(Exception):
    """Base class of every error hlmrf raises on purpose."""


@dataclass(frozen=True)
class Span:
    """A place in a source text: 1-based line and column, and 0-based character offsets."""

    source: str
    line: int
    column: int
    start: int = 0
    end: int = 0

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}"


EXCERPT_WIDTH = 1000
"""Characters of a long source line shown in a caret excerpt: a line over
``CROP_LINES_OVER`` characters shows a window of this width around the column."""
CROP_LINES_OVER = 2000


def caret_excerpt(text: str, line: int, column: int, width: int = 1) -> str:
    """Return the 1-based ``line`` of ``text`` and a caret line under ``column``."""
    lines = text.splitlines() or [""]
    src = lines[line - 1] if 0 < line <= len(lines) else ""
    col, width = column - 1, max(1, width)
    if len(src) > CROP_LINES_OVER:  # show a window around the column, not a 20 MB line
        # The line's own start when the column is near it, so the caret stays at the column.
        start = 0 if col < EXCERPT_WIDTH - 100 else \
            max(0, min(col - EXCERPT_WIDTH // 2, len(src) - EXCERPT_WIDTH))
        end = start + EXCERPT_WIDTH
        left, right = ("..." if start > 0 else ""), ("..." if end < len(src) else "")
        src = left + src[start:end] + right
        col = col - start + len(left)
        width = max(1, min(width, end - (column - 1)))
    return f"    {src}\n    {' ' * col}{'^' * width}"


class RuleError(HlmrfError, ValueError):
    """A rule that parses but is not valid (unknown predicate, arity, unbound variable, ...).

    ``str(error)`` reads ``rules.psl:7:23: message`` followed by the offending line and a caret.
    """

    def __init__(self, message: str, span: Span | None = None, text: str | None = None):
        self.message = message
        self.span = span
        self.text = text
        super().__init__(self._render())

    def _render(self) -> str:
        if self.span is None:
            return self.message
        out = f"{self.span}: {self.message}"
        if self.text is not None:
            width = max(1, self.span.end - self.span.start) if self.span.end > self.span.start else 1
            lines = self.text.splitlines()
            if 0 < self.span.line <= len(lines):
                width = min(width, max(1, len(lines[self.span.line - 1]) - self.span.column + 1))
            out += "\n" + caret_excerpt(self.text, self.span.line, self.span.column, width)
        return out


class RuleSyntaxError(RuleError):
    """Rule text that does not parse."""


class DataError(HlmrfError, ValueError):
    """Bad facts: a malformed line, a value outside [0, 1], a wrong column count, a missing file."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.message = message
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)


class GroundingError(HlmrfError, ValueError):
    """A rule that cannot be grounded against the data (e.g. an open atom nobody declared)."""


class SettingsError(HlmrfError, ValueError):
    """An unknown or out-of-range setting."""


class SolverError(HlmrfError, RuntimeError):
    """A solver failed for a reason other than infeasibility."""


class InfeasibleError(SolverError):
    """The hard constraints cannot all hold at once."""


class OutputError(HlmrfError, OSError):
    """An output path that cannot be written (a file where a folder is wanted, an unwritable
    folder, ...), raised before anything is written; the message names the path and the fix."""

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        self.message = message
        self.path = None if path is None else os.fspath(path)
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)
        self.filename = self.path

    def __str__(self) -> str:  # OSError's own would print "[Errno None] None: path"
        return str(self.args[0])


class MissingDependencyError(HlmrfError, ImportError):
    """An optional dependency is missing; the message names the ``pip install`` that fixes it."""


class HlmrfWarning(UserWarning):
    """Base class of the warnings hlmrf issues: a result that was computed but is suspect.

    Library code reports such problems with ``warnings.warn(message, <subclass>)`` and never
    prints; the command-line tools show each one as a line ``<tool>: warning: message``. Filter
    them as any warning, e.g. ``warnings.simplefilter("error", hlmrf.HlmrfWarning)``.
    """


class LearningWarning(HlmrfWarning):
    """Weight learning finished but its weights are suspect (for example every learned weight
    is 0, so the MAP state under them is undetermined)."""


def require(module: str, extra: str):
    """Import an optional dependency or raise :class:`MissingDependencyError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"{module} is needed for this feature but is not installed. "
            f'Install it with: pip install "hlmrf[{extra}]"'
        ) from exc

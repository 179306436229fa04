"""The bundled PSL programs for mention grounding, and loading a program by name or path.

``default`` (``vqa_adapters/rules/default.psl``) is our program; ``noisy`` (``noisy.psl``) is
default with a perception's probabilities capping a mention's objects by their product;
``paper`` (``paper.psl``) holds the two rules of Aditya et al. (WACV 2019). Any other ``.psl`` file over the predicates of
:mod:`vqa_adapters.psl.facts` can be given by path. This module reads rule files; it does not
ground or solve.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hlmrf.api import load_rules
from hlmrf.errors import SettingsError
from hlmrf.language.ast import Program
from hlmrf.language.parser import parse_rules

__all__ = ["BUNDLED", "RuleSet", "load_program", "bundled_path"]

#: Bundled programs, and whether blocking (``build_facts(block=True)``) keeps each one's MAP
#: state: only a program with a hard negative-evidence rule (default, noisy) does.
BUNDLED: dict[str, bool] = {"default": True, "noisy": True, "paper": False}

#: Bundled programs that join facts on values only through ``candidate(M, O)`` and so may share
#: value constants across the questions of a chunk (see ``build_facts(scoped_values=...)``).
SHARED_VALUES = frozenset({"default", "noisy"})

#: Predicates that :func:`~vqa_adapters.psl.facts.build_facts` stores only when asked
#: (``match=True``), because computing them costs time the other programs would not use.
MATCH_PREDICATES = frozenset({"MATCH"})


@dataclass(frozen=True)
class RuleSet:
    """A parsed program, the name it was asked for by, whether blocking is safe for it and
    whether it needs question-scoped value constants."""

    name: str
    program: Program
    block: bool
    scoped_values: bool = True

    @property
    def match(self) -> bool:
        """Whether the program reads ``match`` (``build_facts(match=True)``)."""
        return bool(MATCH_PREDICATES & set(self.program.predicates()))


def bundled_path(name: str) -> Path:
    """The path of a bundled rule file (``default``, ``noisy`` or ``paper``)."""
    if name not in BUNDLED:
        raise SettingsError(f"no bundled rule file {name!r}; choose one of {', '.join(BUNDLED)} or give a path")
    return Path(str(resources.files("vqa_adapters").joinpath("rules", f"{name}.psl")))


def load_program(spec: str | os.PathLike, block: bool | None = None) -> RuleSet:
    """Load ``default``, ``noisy``, ``paper`` or a ``.psl`` file.

    ``block=None`` blocks for the bundled default program only (a user's file is not assumed to
    carry the negative-evidence rule that makes blocking exact).
    """
    s = str(spec)
    if s in BUNDLED:
        text = resources.files("vqa_adapters").joinpath("rules", f"{s}.psl").read_text(encoding="utf-8")
        program = parse_rules(text, f"vqa_adapters/rules/{s}.psl")
        safe = BUNDLED[s]
    else:
        program = load_rules(s)
        safe = False
    return RuleSet(s, program, safe if block is None else bool(block), s not in SHARED_VALUES)

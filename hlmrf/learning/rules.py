"""Put learned weights back into a rule program: as text (for a ``.psl`` file) or as a Program.

The text keeps the user's file as written (comments, spacing, each rule's own text) and replaces
only the number before each soft rule's ``:``; hard rules are untouched. Writing the file is the
caller's business (:func:`hlmrf.data.writer.write_atomic`).
"""
from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from hlmrf.errors import SettingsError
from hlmrf.language.ast import Program

_WEIGHT = re.compile(r"(\s*)([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(\s*:)")


def format_weight(x: float) -> str:
    """Shortest text that reads back as ``x`` to 6 significant digits."""
    return f"{float(x):.6g}"


def _check(program: Program, weights) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(program.rules),):
        raise SettingsError(f"{w.size} weights for {len(program.rules)} rules")
    return w


def program_with_weights(program: Program, weights) -> Program:
    """The same program with each soft rule's weight replaced (hard rules unchanged)."""
    w = _check(program, weights)
    rules = tuple(r if r.hard else replace(r, weight=float(wi)) for r, wi in zip(program.rules, w))
    return replace(program, rules=rules)


def rules_text(program: Program, weights) -> str:
    """The program's source text with every soft rule's weight replaced by ``weights[rule]``.

    Falls back to printing a rule from its syntax tree when its span cannot be located in the
    text (a program built in code).
    """
    w = _check(program, weights)
    text = program.text
    if not text:
        return str(program_with_weights(program, w))
    out, pos = [], 0
    for rule, wi in zip(program.rules, w):
        if rule.hard:
            continue
        span = rule.span
        m = _WEIGHT.match(text, span.start) if span is not None else None
        if m is None or m.start() < pos:
            raise SettingsError(f"cannot find the weight of rule `{rule.text or rule}` in the rule text")
        out.append(text[pos:m.start(2)])
        out.append(format_weight(wi))
        pos = m.end(2)
    out.append(text[pos:])
    return "".join(out)

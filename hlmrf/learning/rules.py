"""Put learned weights back into a rule program: as text (for a ``.psl`` file) or as a Program.

The text keeps the user's file as written (comments, spacing, each rule's own text) and replaces
only the number before each soft rule's ``:``; hard rules are untouched. Each weight is written
as the shortest decimal that reads back as the same float, and the text is parsed again before it
is returned, so a learned rule file always loads with exactly the learned weights. Weights a rule
file cannot hold (``nan``, infinite, negative) are an error, as is a program without rules (an
empty rule file does not parse). Writing the file is the caller's business
(:func:`hlmrf.data.writer.write_atomic`).
"""
from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np

from hlmrf.errors import RuleError, SettingsError
from hlmrf.language.ast import Program

#: A weight as the parser reads it (its NUMBER token), at the start of a soft rule's span.
_WEIGHT = re.compile(r"\s*(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)")


def format_weight(x: float) -> str:
    """The shortest text the rule parser reads back as exactly ``x`` (``repr``, without a
    trailing ``.0``): ``0.1`` -> ``0.1``, ``2.0`` -> ``2``, ``1e-300`` -> ``1e-300``."""
    x = float(x) + 0.0  # -0.0 -> 0.0: a rule file has no sign before a weight
    if not (math.isfinite(x) and x >= 0):
        raise SettingsError(f"a rule weight must be a finite number >= 0, not {x!r}")
    text = repr(x)
    return text[:-2] if text.endswith(".0") else text


def _check(program: Program, weights) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(program.rules),):
        raise SettingsError(f"{w.size} weights for {len(program.rules)} rules")
    return w


def _check_writable(program: Program, w: np.ndarray) -> None:
    if not program.rules:
        raise SettingsError("the program has no rules, and a rule file without rules does not "
                            "parse; there is nothing to write")
    for i, (rule, wi) in enumerate(zip(program.rules, w)):
        if rule.hard or (math.isfinite(wi) and wi >= 0):
            continue
        what = "negative" if math.isfinite(wi) else "not finite"
        fix = (" learn with nonnegative=True (hlmrf-learn: without --allow-negative)"
               if what == "negative" else " lower the learner's step size or add l2")
        raise SettingsError(f"rule {i + 1} (`{rule.text or rule}`) has the learned weight "
                            f"{float(wi)!r} ({what}), which a PSL rule file cannot hold (weights "
                            f"are finite and >= 0);{fix}")


def program_with_weights(program: Program, weights) -> Program:
    """The same program with each soft rule's weight replaced (hard rules unchanged)."""
    w = _check(program, weights)
    rules = tuple(r if r.hard else replace(r, weight=float(wi)) for r, wi in zip(program.rules, w))
    return replace(program, rules=rules)


def rules_text(program: Program, weights) -> str:
    """The program's source text with every soft rule's weight replaced by ``weights[rule]``.

    A program built in code (no text) is printed from its syntax tree. The result is parsed
    again and checked to hold exactly ``weights``.

    Raises
    ------
    SettingsError : a soft rule's weight is ``nan``, infinite or negative (a rule file cannot hold
        it), the program has no rules, or a rule's weight cannot be found in the text.
    """
    w = _check(program, weights)
    _check_writable(program, w)
    text = program.text
    if not text:
        out = str(program_with_weights(program, w))
    else:
        parts, pos = [], 0
        for rule, wi in zip(program.rules, w):
            if rule.hard:
                continue
            span = rule.span
            m = _WEIGHT.match(text, span.start) if span is not None else None
            if m is None or m.start() < pos or float(m.group(1)) != rule.weight:
                raise SettingsError(f"cannot find the weight of rule `{rule.text or rule}` in the "
                                    f"rule text")
            parts.append(text[pos:m.start(1)])
            parts.append(format_weight(wi))
            pos = m.end(1)
        parts.append(text[pos:])
        out = "".join(parts)
    _verify(program, w, out)
    return out


def _verify(program: Program, w: np.ndarray, text: str) -> None:
    """Parse ``text`` again: same rules, each soft rule with exactly its weight in ``w``."""
    from hlmrf.language.parser import parse_rules

    try:
        again = parse_rules(text, program.source or "<learned rules>")
    except RuleError as exc:
        raise RuleError(f"internal error: the rules with learned weights do not parse again "
                        f"({exc}); nothing should be written from them; please report this") from exc
    expect = [None if r.hard else float(wi) + 0.0 for r, wi in zip(program.rules, w)]
    got = [r.weight for r in again.rules]
    if got != expect:
        raise RuleError(f"internal error: the rules with learned weights read back as {got}, not "
                        f"{expect}; please report this")

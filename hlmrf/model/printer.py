"""Readable text for ground potentials: weight, exponent, the linear form with atom names.

Used by error messages (which constraints are violated) and by ``hlmrf-infer --ground-rules``.
"""
from __future__ import annotations

import numpy as np

from hlmrf.model.hlmrf import HLMRF
from hlmrf.model.terms import Kind


def describe_row(model: HLMRF, i: int) -> str:
    """E.g. ``20 * max(0, Knows(a, b) - Knows(b, a) + 0.0)^2   # rule 3: ...``."""
    A = model.A
    lo, hi = A.indptr[i], A.indptr[i + 1]
    parts = []
    for j, a in zip(A.indices[lo:hi], A.data[lo:hi]):
        name = model.index.atom_name(int(j)) if model.index.predicates else f"y[{j}]"
        coef = "" if abs(a) == 1 else f"{abs(a):g} * "
        parts.append(("- " if a < 0 else "+ ") + coef + name)
    expr = " ".join(parts).lstrip("+ ")
    c = float(model.c[i])
    if c:
        expr += f" {'-' if c > 0 else '+'} {abs(c):g}"
    kind = int(model.kind[i])
    rule = int(model.rule[i])
    texts = model.index.rule_texts
    src = f"   # rule {rule + 1}: {texts[rule]}" if rule < len(texts) else ""
    if kind == Kind.LEQ:
        return f"{expr} <= 0 .{src}"
    if kind == Kind.EQ:
        return f"{expr} = 0 .{src}"
    inner = f"max(0, {expr})" if kind == Kind.HINGE else f"({expr})"
    power = "^2" if model.p[i] == 2 else ""
    return f"{model.w[i]:g} * {inner}{power}{src}"


def write_ground_rules(model: HLMRF, out, limit: int | None = None) -> int:
    """Write one line per ground potential to the text stream ``out``; return how many."""
    m = model.m if limit is None else min(limit, model.m)
    for i in range(m):
        out.write(describe_row(model, i) + "\n")
    return m

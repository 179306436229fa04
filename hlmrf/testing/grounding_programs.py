"""Hypothesis strategies for random small programs with their data (tests only; needs hypothesis).

:func:`programs` draws a dataset (predicates ``P0``..``P3`` of arity 1 or 2, open or closed, over
the constants :data:`PRESENT`) and 1-3 rules over it: logical rules of 0-3 body literals with
negation, heads of 0-2 literals and comparisons (``!=``, ``==``, ``%``), and arithmetic rules,
with constants present in the data and absent from it (:data:`ABSENT`). ``programs(sums=True)``
also draws arithmetic rules with a summation atom and, sometimes, a filter clause on it.
:func:`store_of_data` builds the fact store. :func:`ground_outcome` and :func:`canonical_rows`
compare two groundings of one program: the same error, or the same rows in any order (the SQL
backends give a rule's rows in their substitutions' sorted order, not numpy's). Shared by the
grounding tests (against the reference grounder, and the DuckDB and Spark backends against the
numpy executor).
"""
from __future__ import annotations

import itertools

from hypothesis import strategies as st

from hlmrf.data.store import FactStore
from hlmrf.errors import HlmrfError
from hlmrf.testing.reference_grounder import Data

__all__ = ["PRESENT", "ABSENT", "VARS", "datasets", "rule_texts", "programs", "store_of_data",
           "ground_outcome", "canonical_rows"]

PRESENT = ["a", "b", "c"]  # the data's constants
ABSENT = ["zz", "q"]  # constants only the rules mention ('q' sorts between, for `%`)
VARS = ["X", "Y", "Z"]
@st.composite
def datasets(draw):
    """Predicates P0..P3 of arity 1 or 2, each open (with targets) or closed."""
    arity, observed, targets = {}, {}, {}
    for k in range(4):
        pred = f"P{k}"
        arity[pred] = draw(st.sampled_from([1, 2]))
        is_open = draw(st.booleans())
        observed[pred], targets[pred] = {}, set()
        domain = PRESENT[:draw(st.integers(2, 3))]
        for args in itertools.product(domain, repeat=arity[pred]):
            state = draw(st.sampled_from(["absent", "obs", "target", "target"] if is_open else
                                         ["absent", "obs", "obs"]))
            if state == "obs":
                observed[pred][args] = draw(st.sampled_from([0.0, 0.25, 0.5, 1.0]))
            elif state == "target":
                targets[pred].add(args)
    return Data(arity, observed, targets)


def _term(draw, constant_share=0.15):
    if draw(st.floats(0, 1)) < constant_share:
        return "'" + draw(st.sampled_from(PRESENT + ABSENT)) + "'"
    return draw(st.sampled_from(VARS + ["X", "Y"]))  # X and Y more often: rules share variables


def _atom(draw, data: Data) -> str:
    pred = draw(st.sampled_from(sorted(data.arity)))
    return f"{pred}({', '.join(_term(draw) for _ in range(data.arity[pred]))})"


def _literal(draw, data: Data) -> str:
    return ("!" if draw(st.booleans()) else "") + _atom(draw, data)


def _comparison(draw) -> str:
    op = draw(st.sampled_from(["!=", "==", "%"]))
    return f"({draw(st.sampled_from(VARS))} {op} {_term(draw, constant_share=0.4)})"


@st.composite
def rule_texts(draw, data: Data):
    weight = draw(st.sampled_from([None, 0.5, 1.0, 2.0]))
    tail = " ." if weight is None else (" ^2" if draw(st.booleans()) else " ^1")
    lead = "" if weight is None else f"{weight}: "
    if draw(st.floats(0, 1)) < 0.25:
        terms = [(draw(st.sampled_from([1, 2, -1, 0.5])), _atom(draw, data))
                 for _ in range(draw(st.integers(1, 3)))]
        expr = " + ".join(f"{k} * {a}" for k, a in terms).replace("+ -", "- ")
        op = draw(st.sampled_from(["<=", ">=", "="]))
        return f"{lead}{expr} {op} {draw(st.sampled_from([0, 0.5, 1, 1.5]))}{tail}"
    body = [_literal(draw, data) for _ in range(draw(st.integers(0, 3)))]
    if body and draw(st.booleans()):
        body[0] = body[0].lstrip("!")  # a positive body atom binds variables (safe rules, mostly)
    head = [_literal(draw, data) for _ in range(draw(st.integers(0 if body else 1, 2)))]
    if not head:
        head = [_atom(draw, data)]
    if body and draw(st.floats(0, 1)) < 0.3:
        body.append(_comparison(draw))
    core = f"{' & '.join(body)} -> {' | '.join(head)}" if body else " | ".join(head)
    return f"{lead}{core}{tail}"


@st.composite
def sum_rule_texts(draw, data: Data):
    """An arithmetic rule with a summation atom (``+S``), sometimes filtered (``{S: ...}``)."""
    binary = [p for p in sorted(data.arity) if data.arity[p] == 2]
    pred = draw(st.sampled_from(binary)) if binary else None
    if pred is None:
        return draw(rule_texts(data))
    first = draw(st.booleans())
    summed = f"{pred}(X, +S)" if first else f"{pred}(+S, X)"
    other = _atom(draw, data)
    coef = draw(st.sampled_from(["1", "0.5", "1 / |S|", "2"]))
    op = draw(st.sampled_from(["<=", ">=", "="]))
    rhs = draw(st.sampled_from(["1", "0.5", "|S| / 2"]))
    weight = draw(st.sampled_from([None, 1.0]))
    text = f"{'' if weight is None else f'{weight}: '}{coef} * {summed} + {other} {op} {rhs}"
    text += " ." if weight is None else " ^2"
    if draw(st.booleans()):
        cond = draw(st.sampled_from(sorted(data.arity)))
        args = "S" if data.arity[cond] == 1 else draw(st.sampled_from(["X, S", "S, S", "S, 'a'"]))
        neg = "!" if draw(st.booleans()) else ""
        extra = draw(st.sampled_from(["", " & (S != 'b')", " & (S != X)"]))
        text += f" {{S: {neg}{cond}({args}){extra}}}"
    return text


@st.composite
def programs(draw, sums: bool = False):
    data = draw(datasets())
    draw_rule = (lambda: draw(st.one_of(rule_texts(data), sum_rule_texts(data)))) if sums else \
        (lambda: draw(rule_texts(data)))
    rules = [draw_rule() for _ in range(draw(st.integers(1, 3)))]
    return data, "\n".join(rules)


def store_of_data(data: Data) -> FactStore:
    """The :class:`FactStore` of a drawn dataset."""
    s = FactStore()
    for pred, arity in data.arity.items():
        s.declare(pred, arity)
        if data.targets[pred]:
            s.add_targets(pred, sorted(data.targets[pred]))
        if data.observed[pred]:
            rows = sorted(data.observed[pred])
            s.add_observations(pred, rows, values=[data.observed[pred][r] for r in rows])
    return s




def ground_outcome(program, store, **kw):
    """``("model", model)`` of :func:`~hlmrf.grounding.ground.ground` with ``kw``, or, when it
    raises an :class:`~hlmrf.errors.HlmrfError`, ``(the error's class name, its message)``."""
    from hlmrf.grounding.ground import ground

    try:
        return "model", ground(program, store, **kw)
    except HlmrfError as exc:
        return type(exc).__name__, str(exc)


def canonical_rows(model) -> list[tuple]:
    """The model's rows as sorted tuples: (sorted (column, coefficient) pairs, c, w, p, kind, rule)."""
    A = model.A
    rows = []
    for i in range(model.m):
        lo, hi = A.indptr[i], A.indptr[i + 1]
        entries = tuple(sorted(zip(A.indices[lo:hi].tolist(), A.data[lo:hi].tolist())))
        rows.append((entries, float(model.c[i]), float(model.w[i]), int(model.p[i]), int(model.kind[i]),
                     int(model.rule[i])))
    return sorted(rows)

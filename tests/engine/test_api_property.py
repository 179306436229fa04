"""The whole Python API on random rule files and random facts directories: a correct answer or an
HlmrfError, never another exception, never a hang, never a non-finite value.

Rule texts come from a small PSL grammar (logical and arithmetic rules, weights from 0 to 1e309,
exponents, negation, comparisons, constants present and absent in the data, summations,
cardinalities, filters, hard rules), then are sometimes mutated (a character deleted, duplicated
or replaced), so both valid and broken programs are drawn. Facts are written as a psl-examples
facts directory (``<pred>_obs.txt``, ``_targets.txt``, ``_truth.txt``) with sometimes bad lines:
values outside [0, 1] or not numbers, wrong column counts, a target also observed, a byte-order
mark, non-UTF-8 bytes. Each example runs the pipeline a user runs: ``load_rules``,
``load_facts``, ``infer``, ``values``, ``metrics``, ``write``.

``API_EXAMPLES=5000 pytest tests/engine/test_api_property.py`` runs a longer search.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, event, given, settings, strategies as st

import hlmrf
from hlmrf.errors import HlmrfError
from hlmrf.inference.settings import AdmmSettings

EXAMPLES = int(os.environ.get("API_EXAMPLES", "300"))
PREDICATES = {"Smokes": 1, "Friends": 2, "Likes": 2, "Cancer": 1}
CONSTANTS = ["a", "b", "c", "zzz"]  # 'zzz' never appears in the facts
VARS = ["A", "B", "A", "B", "C"]
WEIGHTS = ["1", "0.5", "10", "0.01", "2.5e3"]
ODD_WEIGHTS = ["0", "1e-300", "1e308", "1e309", "-1"]
SETTINGS = AdmmSettings(max_iter=3000)
TIME_LIMIT = 20.0  # seconds for one whole example on the 2-core CI machine


def term(draw):
    if draw(st.booleans()):
        return draw(st.sampled_from(VARS))
    return f"'{draw(st.sampled_from(CONSTANTS))}'"


def atom(draw, plus: bool = False):
    pred = draw(st.sampled_from(sorted(PREDICATES)))
    arity = PREDICATES[pred] + (1 if draw(st.integers(0, 40)) == 17 else 0)  # now and then a wrong arity
    args = [term(draw) for _ in range(arity)]
    if plus and args and draw(st.booleans()):
        args[-1] = "+" + draw(st.sampled_from(["X", "Y"]))
    return f"{pred}({', '.join(args)})"


@st.composite
def logical_rule(draw):
    body = [("!" if draw(st.booleans()) else "") + atom(draw) for _ in range(draw(st.integers(0, 3)))]
    if body and draw(st.booleans()):
        body.append(f"({draw(st.sampled_from(VARS))} {draw(st.sampled_from(['!=', '==', '%']))} "
                    f"{term(draw)})")
    head = [("!" if draw(st.booleans()) else "") + atom(draw) for _ in range(draw(st.integers(1, 2)))]
    text = (" & ".join(body) + " -> " if body else "") + " | ".join(head)
    return finish(draw, text)


@st.composite
def arithmetic_rule(draw):
    terms, sums = [], []
    for _ in range(draw(st.integers(1, 3))):
        pred = draw(st.sampled_from(sorted(PREDICATES)))
        args = [term(draw) for _ in range(PREDICATES[pred])]
        if len(sums) < 2 and draw(st.booleans()):
            sums.append("XY"[len(sums)])
            args[-1] = "+" + sums[-1]
        coef = draw(st.sampled_from(["", "", "2 * ", "0.5 * ", "-1 * "]))
        if sums and args[-1] == "+" + sums[-1] and draw(st.booleans()):
            coef = draw(st.sampled_from([f"1 / |{sums[-1]}| * ", f"@Max[1, |{sums[-1]}|] * "]))
        if draw(st.integers(0, 40)) == 23:
            coef = "1e200 * 1e200 * "
        terms.append(coef + f"{pred}({', '.join(args)})")
    op = draw(st.sampled_from(["<=", ">=", "="]))
    text = " + ".join(terms) + f" {op} {draw(st.sampled_from(['1', '0', '0.5', '2']))}"
    if sums and draw(st.integers(0, 2)) == 1:
        v = draw(st.sampled_from(sums))
        pred = draw(st.sampled_from(["Likes", "Smokes"]))
        text += f" {{{v}: {pred}({v})}}" if pred == "Smokes" else f" {{{v}: Likes({v}, 'a')}}"
    return finish(draw, text)


def finish(draw, text: str) -> str:
    if draw(st.integers(0, 3)) == 2:
        return text + " ."
    weight = draw(st.sampled_from(ODD_WEIGHTS if draw(st.integers(0, 15)) == 7 else WEIGHTS))
    return f"{weight}: {text}" + draw(st.sampled_from(["", " ^1", " ^2", " ^2", " ^3"] if
                                                      draw(st.integers(0, 20)) == 9 else ["", " ^1", " ^2"]))


@st.composite
def rule_text(draw):
    rules = draw(st.lists(st.one_of(logical_rule(), arithmetic_rule()),
                          min_size=0 if draw(st.integers(0, 20)) == 11 else 1, max_size=3))
    text = "\n".join(rules) + "\n"
    if text.strip() and draw(st.integers(0, 5)) == 3:  # a typo somewhere
        i = draw(st.integers(0, len(text) - 1))
        kind = draw(st.sampled_from(["delete", "double", "replace"]))
        ch = draw(st.sampled_from(list("()!&|.:^+-*/{}'\",=<>% \n\x00é")))
        text = {"delete": text[:i] + text[i + 1:], "double": text[:i] + text[i] + text[i:],
                "replace": text[:i] + ch + text[i + 1:]}[kind]
    return text


VALUES = ["", "", "\t1", "\t0.3", "\t0.7", "\t1e-320"]
BAD_VALUES = ["\t1.5", "\t-0.1", "\tnan", "\tinf", "\tx"]


@st.composite
def facts(draw):
    """``{file name: bytes}`` of a facts directory."""
    files = {}
    for pred, arity in PREDICATES.items():
        low = pred.lower()
        rows = draw(st.lists(st.tuples(*[st.sampled_from(CONSTANTS[:3])] * arity), max_size=7, unique=True))
        if pred in ("Cancer", "Friends") or draw(st.integers(0, 4)) == 2:  # open
            targets = draw(st.lists(st.tuples(*[st.sampled_from(CONSTANTS[:3])] * arity), max_size=9, unique=True))
            files[f"{low}_targets.txt"] = "".join("\t".join(r) + "\n" for r in targets)
            truth_value = draw(st.sampled_from(VALUES))
            files[f"{low}_truth.txt"] = "".join("\t".join(r) + truth_value + "\n"
                                                for r in targets if draw(st.booleans()))
            rows = [r for r in rows if r not in targets]  # an atom is observed or a target
            if draw(st.integers(0, 20)) == 3 and targets:  # ... except by mistake
                rows = rows + [targets[0]]
        if draw(st.integers(0, 8)) > 0 or pred == "Smokes":
            value = draw(st.sampled_from(VALUES))  # one layout per file: with values or without
            lines = []
            for r in rows:
                cols = list(r)
                if draw(st.integers(0, 40)) == 9:
                    cols = cols[:-1] if draw(st.booleans()) else cols + ["extra"]
                bad = draw(st.integers(0, 60)) == 29
                lines.append("\t".join(cols) + (draw(st.sampled_from(BAD_VALUES)) if bad else value) + "\n")
            files[f"{low}_obs.txt"] = "".join(lines)
    out = {}
    for name, text in files.items():
        data = text.encode("utf-8")
        mangle = draw(st.integers(0, 60))
        if mangle == 17:
            data = b"\xef\xbb\xbf" + data  # a byte-order mark
        elif mangle == 18:
            data = data + b"\xff\xfe\n"  # not UTF-8
        out[name] = data
    return out


def check_finite(run) -> None:
    res = run.result
    assert np.all(np.isfinite(res.y)) and np.all((res.y >= 0) & (res.y <= 1))
    assert math.isfinite(res.energy) and math.isfinite(res.violation)
    # A lower bound exists exactly when the model is convex (every soft weight >= 0).
    assert math.isfinite(res.lower_bound) or (run.model.w < 0).any()
    if res.status.value == "converged" and math.isfinite(res.lower_bound):
        assert res.gap <= SETTINGS.gap_rel * abs(res.energy) + SETTINGS.gap_abs
        assert res.violation <= SETTINGS.constraint_tol
    assert np.all(np.isfinite(run.energy_by_rule()))
    for pred in run.model.index.predicates:
        assert all(math.isfinite(v) and 0 <= v <= 1 for v in run.values(pred).values())
    for stats in run.metrics().values():
        # Metrics a truth set cannot define (AUROC with one class, ...) are nan by convention.
        assert all(not isinstance(v, float) or not math.isinf(v) for v in stats.values())


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("API_EXAMPLES"),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=rule_text(), files=facts())
def test_the_api_answers_or_raises_an_hlmrf_error(text, files):
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "rules.psl").write_text(text, encoding="utf-8")
        facts_dir = tmp / "facts"
        facts_dir.mkdir()
        for name, data in files.items():
            (facts_dir / name).write_bytes(data)
        out = tmp / "out"
        try:
            program = hlmrf.load_rules(tmp / "rules.psl")
            store = hlmrf.load_facts(facts_dir, program)
            run = hlmrf.infer(program, store, SETTINGS)
            check_finite(run)
            event(f"solved: {run.result.status.value}, {run.model.m} ground rules"[:40])
            written = run.write(out)
            from hlmrf.infra.publish import MANIFEST  # the publisher's list of what it wrote
            assert {p.name for p in written} == {p.name for p in out.iterdir()} - {MANIFEST}
        except HlmrfError as exc:
            event(type(exc).__name__)
            assert str(exc).strip()  # a message, and a one-line cause first
            assert "Traceback" not in str(exc)
            assert not out.exists() or not any(out.iterdir())  # nothing half-written
    assert time.perf_counter() - t0 < TIME_LIMIT

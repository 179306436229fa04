"""The loaders' fast paths (``_object_fast``, ``_relation_fast``, ``_program_fast``) change no
result and no message: each scene and program, valid or broken in one place, gives the same value
or the same error with them as with the checked path alone (the fast paths switched off).
"""
from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from vqa_adapters.clevr import io as cio

from .conftest import GENERATED, TRAIN40, VAL_SCENES

SCENES = json.loads(VAL_SCENES.read_text())["scenes"][:40]
PROGRAMS = [q["program"] for q in json.loads(GENERATED.read_text())["questions"][:60]] + \
           [q["program"] for q in json.loads(TRAIN40.read_text())["questions"]]


def _outcome(fn, doc):
    try:
        return "ok", fn(doc)
    except cio.ClevrDataError as exc:
        return "error", str(exc)


def _both(monkeypatch, fn, doc):
    fast = _outcome(fn, copy.deepcopy(doc))
    with monkeypatch.context() as m:
        for name in ("_object_fast", "_relation_fast", "_program_fast"):
            m.setattr(cio, name, lambda *a: None)
        checked = _outcome(fn, copy.deepcopy(doc))
    return fast, checked


def _scene(d):
    return cio.scene_from_dict(d, path="s.json", where="scenes[0]")


def _program(d):
    return cio.program_from_list(d, where="question 0.program", path="q.json")


def _paths(doc, prefix=()):
    yield prefix
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for k, v in items:
        yield from _paths(v, prefix + (k,))


JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 50), st.sampled_from([10**400, -1, 480, 320, 0]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["red", "cube", "left", "large", "x", ""]),
    st.lists(st.integers(-2, 12), max_size=4), st.dictionaries(st.sampled_from(["a", "inputs"]), st.integers(), max_size=2),
)


def _mutate(doc, data):
    paths = [p for p in _paths(doc) if p]
    path = data.draw(st.sampled_from(paths))
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    if isinstance(parent, dict) and data.draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(JSON_VALUES)
    return doc


def test_valid_files_take_the_fast_paths_and_agree(monkeypatch):
    calls = {"object": 0, "program": 0}
    obj, prog = cio._object_fast, cio._program_fast
    monkeypatch.setattr(cio, "_object_fast", lambda *a: calls.__setitem__("object", calls["object"] + 1) or obj(*a))
    monkeypatch.setattr(cio, "_program_fast", lambda *a: calls.__setitem__("program", calls["program"] + 1) or prog(*a))
    for d in SCENES:
        fast, checked = _both(monkeypatch, _scene, d)
        assert fast == checked and fast[0] == "ok"
    for d in PROGRAMS:
        fast, checked = _both(monkeypatch, _program, d)
        assert fast == checked and fast[0] == "ok"
    assert calls["object"] > 0 and calls["program"] > 0


@pytest.mark.parametrize("fn, docs", [(_scene, SCENES[:8]), (_program, PROGRAMS[:20])], ids=["scene", "program"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_document_broken_in_one_place_gives_the_same_outcome(monkeypatch, fn, docs, data):
    doc = _mutate(copy.deepcopy(data.draw(st.sampled_from(docs))), data)
    fast, checked = _both(monkeypatch, fn, doc)
    assert fast == checked


@pytest.mark.parametrize("value", [10**400, float("nan"), True, "1.0"])
def test_odd_numbers_in_a_scene_are_reported_by_the_checked_path(monkeypatch, value):
    doc = copy.deepcopy(SCENES[0])
    doc["objects"][0]["pixel_coords"][0] = value
    fast, checked = _both(monkeypatch, _scene, doc)
    assert fast == checked and fast[0] == "error" and "scenes[0].objects[0].pixel_coords[0]" in fast[1]

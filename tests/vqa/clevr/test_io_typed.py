"""Typed validation of CLEVR scene and question files: every wrongly typed value is a
ClevrDataError naming the file and the JSON path of the value (issue 13), never a TypeError."""
from __future__ import annotations

import copy
import json
import os

import pytest

from vqa_adapters.clevr import load_questions, load_scenes
from vqa_adapters.clevr.errors import ClevrDataError

from .conftest import VAL7, VAL_SCENES

SCENES = json.loads(VAL_SCENES.read_text())
SCENES["scenes"] = SCENES["scenes"][:2]
QUESTIONS = json.loads(VAL7.read_text())


def _scene_file(tmp_path, edit):
    doc = copy.deepcopy(SCENES)
    edit(doc["scenes"])
    p = tmp_path / "s.json"
    p.write_text(json.dumps(doc))
    return p


def _set(path, value):
    def edit(scenes):
        target = scenes
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = value
    return edit


@pytest.mark.parametrize("path, value, needle", [
    ((1, "objects", 0), "cube", 'scenes[1].objects[0]: expected an object, got "cube"'),
    ((1, "objects", 0), None, "scenes[1].objects[0]: expected an object, got null"),
    ((1, "objects"), "cube", 'scenes[1].objects: expected a list, got "cube"'),
    ((0, "objects", 0, "color"), ["red"], 'scenes[0].objects[0].color: unknown color ["red"]'),
    ((0, "objects", 0, "rotation"), None, "scenes[0].objects[0].rotation: expected a number, got null"),
    ((0, "objects", 0, "rotation"), "abc", 'scenes[0].objects[0].rotation: expected a number, got "abc"'),
    ((0, "relationships"), [], "scenes[0].relationships: expected an object, got []"),
    ((0, "relationships", "left", 0), 3, "scenes[0].relationships.left[0]: expected a list, got 3"),
    ((0, "relationships", "left", 0), ["a"], 'relationships.left[0][0]: expected an integer, got "a"'),
    ((0, "image_index"), "0", 'scenes[0].image_index: expected an integer, got "0"'),
    ((0, "objects", 1, "pixel_coords"), [1, "abc", 3], 'pixel_coords[1]: expected a number, got "abc"'),
    ((0, "objects", 1, "pixel_coords"), [1, 2], "pixel_coords: expected a list of 3 numbers"),
    ((0, "objects", 1, "3d_coords"), {"x": 1}, "scenes[0].objects[1].3d_coords: expected a list"),
    ((1, "objects", 2, "pixel_coords"), [float("nan"), 10, 10], "scenes[1].objects[2].pixel_coords[0]: expected a finite number, got NaN"),
    ((1, "objects", 2, "pixel_coords"), [10, float("inf"), 10], "expected a finite number, got Infinity"),
    ((1, "objects", 2, "pixel_coords"), [10, 1e400, 10], "expected a finite number"),
    ((1, "objects", 2, "pixel_coords"), [10, 10, 0], "scenes[1].objects[2].pixel_coords: depth 0 must be > 0"),
    ((1, "objects", 2, "pixel_coords"), [10, 10, -3], "depth -3 must be > 0"),
    ((1, "objects", 2, "pixel_coords"), [5000, 10, 10], "centre (5000, 10) lies outside the 480x320"),
    ((1, "objects", 2, "pixel_coords"), [10, -1, 10], "lies outside the 480x320"),
    ((0, "objects", 0, "size"), True, "scenes[0].objects[0].size: unknown size true"),
    ((0, "split"), 7, "scenes[0].split: expected a string, got 7"),
])
def test_wrongly_typed_scene_values_name_file_and_path(tmp_path, path, value, needle):
    p = _scene_file(tmp_path, _set(path, value))
    with pytest.raises(ClevrDataError) as e:
        load_scenes(p)
    assert str(e.value).startswith(f"{p}: ") and needle in str(e.value), str(e.value)


def test_scene_entry_not_an_object(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"scenes": [SCENES["scenes"][0], 5]}))
    with pytest.raises(ClevrDataError, match=r"scenes\[1\]: expected an object, got 5"):
        load_scenes(p)


def _question_file(tmp_path, edit):
    doc = copy.deepcopy(QUESTIONS)
    edit(doc["questions"])
    p = tmp_path / "q.json"
    p.write_text(json.dumps(doc))
    return p


@pytest.mark.parametrize("path, value, needle", [
    ((0, "program", 1, "inputs"), 0, "questions[0].program[1].inputs: expected a list, got 0"),
    ((0, "program", 1), "scene", 'questions[0].program[1]: expected an object, got "scene"'),
    ((0, "program"), {"a": 1}, "questions[0].program: expected a list"),
    ((0, "program", 1, "value_inputs"), [3], "questions[0].program[1].value_inputs[0]: expected a string, got 3"),
    ((0, "program", 1, "function"), ["scene"], 'unknown function ["scene"]'),
    ((0, "question"), None, "questions[0].question: expected a string, got null"),
    ((0, "question_index"), "abc", 'questions[0].question_index: expected an integer, got "abc"'),
    ((2, "image_index"), 1.5, "questions[2].image_index: expected an integer, got 1.5"),
    ((0, "answer"), [1], "questions[0].answer: expected a string, bool or integer, got [1]"),
    ((0, "question_family_index"), "3", 'question_family_index: expected an integer, got "3"'),
    ((0,), None, "questions[0]: expected an object, got null"),
])
def test_wrongly_typed_question_values_name_file_and_path(tmp_path, path, value, needle):
    p = _question_file(tmp_path, _set(path, value))
    with pytest.raises(ClevrDataError) as e:
        load_questions(p)
    assert str(e.value).startswith(f"{p}: ") and needle in str(e.value), str(e.value)


def test_message_quotes_a_bounded_excerpt(tmp_path):
    p = _scene_file(tmp_path, _set((0, "objects", 0, "rotation"), "x" * 1_000_000))
    with pytest.raises(ClevrDataError) as e:
        load_scenes(p)
    assert len(str(e.value)) < 300 + len(str(p))


def test_folder_fifo_bad_bytes_bom_and_nesting(tmp_path):
    with pytest.raises(ClevrDataError, match="is a folder; expected a JSON scenes file"):
        load_scenes(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ClevrDataError, match="is not a regular file"):
        load_scenes(fifo)  # would block forever if opened
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"scenes":\n [\n"\xff"]}')
    with pytest.raises(ClevrDataError) as e:
        load_scenes(bad)
    assert e.value.line == 3 and "not UTF-8" in str(e.value)
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + VAL7.read_bytes())
    assert len(load_questions(bom)) == 7
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ClevrDataError, match="nested too deeply|not valid JSON"):
        load_scenes(deep)

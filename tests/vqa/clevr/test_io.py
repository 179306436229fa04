"""CLEVR I/O: both program formats, the test split, answer and family normalisation, bad input."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from vqa_adapters.clevr import ClevrDataError, load_questions, load_scenes, normalize_answer
from vqa_adapters.clevr.vocabulary import FAMILY_GROUPS, family_group, global_family_index

DATA = Path(__file__).resolve().parents[2] / "data" / "clevr"
VAL_SCENES = DATA / "CLEVR_val_scenes_000000-000499.json"
GENERATED = DATA / "CLEVR_val_000000-000032_generated_seed0.json"
VAL7 = DATA / "CLEVR_val_questions_img000000_7q.json"
TRAIN40 = DATA / "CLEVR_train_questions_first40.json"
TEST10 = DATA / "CLEVR_test_questions_first10.json"


def test_scene_fields_match_the_file(val_scenes):
    raw = json.loads(VAL_SCENES.read_text())["scenes"]
    assert len(val_scenes) == len(raw) == 500
    s0, r0 = val_scenes[0], raw[0]
    assert s0.image_filename == "CLEVR_val_000000.png"
    assert [o.index for o in s0.objects] == list(range(len(r0["objects"])))
    for o, ro in zip(s0.objects, r0["objects"]):
        assert (o.size, o.color, o.material, o.shape) == (
            ro["size"], ro["color"], ro["material"], ro["shape"])
        assert o.pixel_coords == tuple(ro["pixel_coords"])
        assert o.coords_3d == tuple(ro["3d_coords"])
        assert o.rotation == ro["rotation"]
    assert {r: [list(x) for x in v] for r, v in s0.relationships.items()} == r0["relationships"]
    # scenes have 3..10 objects; left/right and front/behind are exact complements
    for s in val_scenes.values():
        assert 3 <= len(s.objects) <= 10
        n = len(s.objects)
        for a, b in (("left", "right"), ("front", "behind")):
            for i in range(n):
                assert set(s.relationships[a][i]) | set(s.relationships[b][i]) == set(range(n)) - {i}
                assert not set(s.relationships[a][i]) & set(s.relationships[b][i])


def test_both_program_formats_read_alike():
    released = load_questions(VAL7)  # "function" / "value_inputs"
    generated = load_questions(GENERATED)  # "type" / "value_inputs" / "_output"
    q = released[0]
    assert q.text.startswith("Are there any other things")
    assert [s.function for s in q.program] == [
        "scene", "filter_size", "filter_material", "unique", "same_shape", "exist"]
    assert q.program[1].value_inputs == ("large",) and q.program[1].inputs == (0,)
    assert q.answer == "no" and q.family_index == 39 and q.outputs is None
    g = generated[0]
    assert g.program[1].function == "filter_size" and g.outputs[1] == (2, 4)
    assert g.template == "three_hop" and g.template_index == 0


def test_side_inputs_key_is_accepted(tmp_path):
    raw = json.loads(VAL7.read_text())
    for q in raw["questions"]:
        for n in q["program"]:
            n["side_inputs"] = n.pop("value_inputs")
            n["type"] = n.pop("function")
    p = tmp_path / "q.json"
    p.write_text(json.dumps(raw))
    assert load_questions(p) == load_questions(VAL7)


def test_raw_answers_are_normalised():
    assert normalize_answer(True) == "yes" and normalize_answer(False) == "no"
    assert normalize_answer(3) == "3" and normalize_answer("cube") == "cube"
    raw = json.loads(GENERATED.read_text())["questions"]
    qs = load_questions(GENERATED)
    kinds = Counter(type(r["answer"]).__name__ for r in raw)
    assert kinds["bool"] and kinds["int"]  # the file really holds raw values
    for r, q in zip(raw, qs):
        a = r["answer"]
        # (bool first: 0 == False in Python, so a dict lookup would mix them up)
        expected = ("yes" if a else "no") if isinstance(a, bool) else str(a)
        assert q.answer == expected


def test_test_split_has_no_program_answer_or_family():
    qs = load_questions(TEST10)
    assert len(qs) == 10
    assert all(q.program is None and q.answer is None and q.family_index is None for q in qs)
    assert all(q.split == "test" for q in qs)


def test_generator_family_indices_map_to_the_released_numbering():
    """A released question and a generated one with the same global family share the program
    skeleton (function sequence without filters), which checks the template-file offsets."""
    assert global_family_index("same_relate.json", 3) == 39
    assert global_family_index("simple_query.json", 0) is None
    assert [family_group(r.start) for _, r in FAMILY_GROUPS] == [n for n, _ in FAMILY_GROUPS]

    def skeleton(q):
        return tuple(s.function for s in q.program if not s.function.startswith("filter_"))

    generated = {}
    for q in load_questions(GENERATED):
        generated.setdefault(q.family_index, set()).add(skeleton(q))
    assert sorted(generated) == list(range(90))  # the 330 questions cover all 90 families
    checked = 0
    for q in load_questions(VAL7) + load_questions(TRAIN40):
        assert skeleton(q) in generated[q.family_index], (q.family_index, q.text)
        checked += 1
    assert checked == 47


def _write(tmp_path, name, obj):
    p = tmp_path / name
    p.write_text(json.dumps(obj))
    return p


def _one_question(**program_changes):
    raw = json.loads(VAL7.read_text())
    q = raw["questions"][0]
    for k, v in program_changes.items():
        q["program"][int(k[1:])].update(v)
    return {"info": raw["info"], "questions": [q]}


def test_question_without_scene_names_file_and_question(tmp_path):
    raw = json.loads(VAL7.read_text())
    raw["questions"][2]["image_index"] = 777
    qi = raw["questions"][2]["question_index"]
    p = _write(tmp_path, "q.json", raw)
    scenes = load_scenes(VAL_SCENES)
    with pytest.raises(ClevrDataError) as e:
        load_questions(p, scenes)
    msg = str(e.value)
    assert str(p) in msg and f"question {qi}:" in msg and "image_index 777" in msg
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize(
    "change, needle",
    [
        (dict(n1={"value_inputs": ["huge"]}), "unknown size \"huge\""),
        (dict(n1={"function": "filter_texture"}), "unknown function \"filter_texture\""),
        (dict(n2={"inputs": [5]}), "input 5 is not the index of an earlier node"),
        (dict(n4={"inputs": [3, 1]}), "takes 1 input(s), got 2"),
    ],
)
def test_malformed_program_names_file_question_and_node(tmp_path, change, needle):
    p = _write(tmp_path, "q.json", _one_question(**change))
    with pytest.raises(ClevrDataError) as e:
        load_questions(p)
    msg = str(e.value)
    assert str(p) in msg and "questions[0].program[" in msg and needle in msg


def test_unknown_attribute_in_scene_names_scene_and_object(tmp_path):
    raw = json.loads(VAL_SCENES.read_text())
    raw["scenes"] = raw["scenes"][:3]
    raw["scenes"][2]["objects"][1]["color"] = "magenta"
    p = _write(tmp_path, "s.json", raw)
    with pytest.raises(ClevrDataError) as e:
        load_scenes(p)
    assert str(p) in str(e.value) and "scenes[2].objects[1].color" in str(e.value) and "magenta" in str(e.value)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ClevrDataError, match="file not found"):
        load_scenes(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  \"scenes\": [ oops ]\n}")
    with pytest.raises(ClevrDataError) as e:
        load_scenes(bad)
    assert e.value.line == 2

"""The question parsers against the executed gold programs (the independent reference).

Three kinds of check: on every sample question the text parse says exactly what the program parse
says (canonical signature) and resolves to exactly the executor's referred objects; the program
parse's mentions equal the executor's node outputs; and hand-written phrasings of every template
variant (with hand-written programs) parse to their program's meaning.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vqa_adapters.clevr import (
    ParseFailure,
    ProgramStep,
    QuestionKind,
    QuestionParse,
    QuestionParseError,
    execute_program,
    load_questions,
    mention_objects,
    parse_program,
    parse_question,
    parse_signature,
    precision_recall_report,
    referred_mention_objects,
    referred_objects,
    require_parse,
)
from vqa_adapters.clevr.vocabulary import ATTRIBUTE_VALUES

TEST10 = Path(__file__).resolve().parents[2] / "data" / "clevr" / "CLEVR_test_questions_first10.json"
MEASURED = ("generated", "val7", "train40")


# --------------------------------------------------------------------------------------------
# The sample questions


def _measured(clevr_sets):
    for name in MEASURED:
        questions, scenes = clevr_sets[name]
        for q in questions:
            yield q, scenes[q.image_index]


def test_text_parser_reads_every_sample_question(clevr_sets):
    questions = list(_measured(clevr_sets))
    assert len(questions) == 377
    failures = [(q.text, p.reason) for q, _ in questions
                if isinstance(p := parse_question(q.text), ParseFailure)]
    assert failures == []


def test_text_parse_says_what_the_program_says(clevr_sets):
    for q, _ in _measured(clevr_sets):
        text = require_parse(parse_question(q.text))
        gold = require_parse(parse_program(q.program, q.text))
        assert parse_signature(text) == parse_signature(gold), q.text


def test_text_parse_precision_recall_is_perfect(clevr_sets):
    items = []
    for q, scene in _measured(clevr_sets):
        e = execute_program(q.program, scene)
        chosen = referred_mention_objects(require_parse(parse_question(q.text)), scene)
        items.append((chosen, referred_objects(q.program, e.outputs), q.family_index))
    report = precision_recall_report(items)
    row = report.overall
    assert row.questions == 377
    assert (row.micro_precision, row.micro_recall, row.macro_precision, row.macro_recall) == (1, 1, 1, 1)
    assert len(report.by_group) == 9 and len(report.by_family) == 90


def test_program_parse_mentions_are_the_executor_outputs(clevr_sets):
    n = 0
    for name, (questions, scenes) in clevr_sets.items():
        for q in questions:
            scene = scenes[q.image_index]
            e = execute_program(q.program, scene)
            gold = require_parse(parse_program(q.program, q.text))
            for m, objs in zip(gold.mentions, mention_objects(gold, scene)):
                assert objs == e.outputs[m.node], (q.text, m)
                n += 1
            assert referred_mention_objects(gold, scene) == referred_objects(q.program, e.outputs)
    assert n > 900


def test_single_object_questions_resolve_to_the_referred_object(clevr_sets):
    """The custom single-object set drops some filters from its text ("the object in the picture"),
    so only the resolved objects (not the signature) can agree with the program."""
    questions, scenes = clevr_sets["single_object"]
    for q in questions:
        scene = scenes[q.image_index]
        e = execute_program(q.program, scene)
        p = require_parse(parse_question(q.text))
        assert referred_mention_objects(p, scene) == referred_objects(q.program, e.outputs)


def test_test_split_questions_parse():
    for q in load_questions(TEST10):
        assert isinstance(parse_question(q.text), QuestionParse), q.text


# --------------------------------------------------------------------------------------------
# The parse value itself


def test_synonyms_number_and_spans():
    text = "Are there any tiny shiny balls that are left of the big matte block?"
    p = require_parse(parse_question(text))
    assert p.kind is QuestionKind.EXIST and p.source == "text"
    (t,) = p.targets
    m = p.mentions[t]
    assert m.values() == {"size": "small", "material": "metal", "shape": "sphere"}
    assert m.plural and not m.unique and m.referred
    assert text[m.span[0]:m.span[1]] == "any tiny shiny balls"
    (r,) = p.relations
    assert (r.kind, r.name, r.subject) == ("spatial", "left", t)
    o = p.mentions[r.object]
    assert o.values() == {"size": "large", "material": "rubber", "shape": "cube"}
    assert o.unique and not o.plural
    thing = require_parse(parse_question("What color is the large thing?")).mentions[0]
    assert thing.shape is None and thing.values() == {"size": "large"}


def test_union_members_are_not_referred():
    p = require_parse(parse_question("How many red things are cubes or big spheres?"))
    (t,) = p.targets
    outer = p.mentions[t]
    assert outer.color == "red" and len(outer.union) == 2 and outer.referred
    members = [p.mentions[i] for i in outer.union]
    assert {m.shape for m in members} == {"cube", "sphere"}
    assert not any(m.referred for m in members)


def test_mention_objects_by_hand(val_scenes):
    """Val scene 0: 0 large brown rubber cylinder, 1 large gray rubber cube, 2 small green rubber
    cylinder, 3 large purple metal sphere, 4 small gray metal cube; left[4] = [0, 1, 2, 3]."""
    s = val_scenes[0]
    p = require_parse(parse_question(
        "How many rubber things are to the left of the small metal cube?"))
    sets = mention_objects(p, s)
    assert sets[p.targets[0]] == {0, 1, 2}
    assert sets[p.relations[0].object] == {4}
    p = require_parse(parse_question("What number of other things are the same size as the ball?"))
    assert mention_objects(p, s)[p.targets[0]] == {0, 1}  # the other large objects


# --------------------------------------------------------------------------------------------
# Failures are values (or a specific error on request), never crashes


@pytest.mark.parametrize(
    "text, needle",
    [
        ("What is the meaning of life?", "unknown word 'meaning'"),
        ("Cube cube cube?", "no CLEVR question shape fits"),
        ("How many cubes are left of?", "no CLEVR question shape fits"),
        ("", "empty question"),
        ("Is the red blue cube big?", "no CLEVR question shape fits"),
    ],
)
def test_unreadable_questions_give_a_reason(text, needle):
    p = parse_question(text)
    assert isinstance(p, ParseFailure) and needle in p.reason
    with pytest.raises(QuestionParseError) as e:
        require_parse(p)
    assert needle in str(e.value) and isinstance(e.value, ValueError)


def test_unsupported_program_gives_a_reason():
    P = ProgramStep
    p = parse_program((P("scene", (), ()), P("filter_color", (0,), ("red",))), "x")
    assert isinstance(p, ParseFailure) and p.source == "program" and "gives no answer" in p.reason


_WORDS = sorted({"the", "a", "any", "other", "how", "many", "what", "is", "are", "there", "of",
                 "that", "and", "or", "both", "either", "same", "as", "size", "color", "it",
                 "left", "right", "behind", "in", "front", "to", "side", "on", "made", "number",
                 ";", "big", "red", "metal", "cube", "things", "spheres", "objects", "more",
                 "than", "fewer", "its", "have", "does", "do", "banana"})


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), max_size=25))
def test_any_word_salad_returns_a_value(words):
    p = parse_question(" ".join(words) + "?")
    assert isinstance(p, (QuestionParse, ParseFailure))


# --------------------------------------------------------------------------------------------
# Hand-written phrasings of every template variant, each with its hand-written program.
# Program notation: f[values](args); filter[v, ...] expands to one filter_<attribute> per value.

_VALUE_ATTR = {v: a for a, vs in ATTRIBUTE_VALUES.items() for v in vs}


def _program(expr: str) -> tuple[ProgramStep, ...]:
    toks = re.findall(r"[a-z_]+|[\[\](),]", expr)
    pos = 0
    steps: list[ProgramStep] = []

    def node() -> int:
        nonlocal pos
        name = toks[pos]
        pos += 1
        values: list[str] = []
        if pos < len(toks) and toks[pos] == "[":
            pos += 1
            while toks[pos] != "]":
                if toks[pos] != ",":
                    values.append(toks[pos])
                pos += 1
            pos += 1
        inputs: list[int] = []
        if pos < len(toks) and toks[pos] == "(":
            pos += 1
            while toks[pos] != ")":
                if toks[pos] != ",":
                    inputs.append(node())
                else:
                    pos += 1
            pos += 1
        if name == "filter":
            (k,) = inputs
            for v in values:
                steps.append(ProgramStep(f"filter_{_VALUE_ATTR[v]}", (k,), (v,)))
                k = len(steps) - 1
            return k
        steps.append(ProgramStep(name, tuple(inputs), tuple(values)))
        return len(steps) - 1

    node()
    return tuple(steps)


def _u(f: str) -> str:
    """unique(filter[...](scene)) for a comma-separated value list."""
    return f"unique(filter[{f}](scene))"


PHRASINGS = [
    # zero_hop
    ("zero_hop", "How many tiny red rubber balls are there?", "count(filter[small,red,rubber,sphere](scene))"),
    ("zero_hop", "Are any big cyan metal cubes visible?", "exist(filter[large,cyan,metal,cube](scene))"),
    ("zero_hop", "Is there a large cylinder?", "exist(filter[large,cylinder](scene))"),
    ("zero_hop", "The big shiny thing has what shape?", f"query_shape({_u('large,metal')})"),
    ("zero_hop", "There is a green object; what shape is it?", f"query_shape({_u('green')})"),
    ("zero_hop", "What is the big thing made of?", f"query_material({_u('large')})"),
    ("zero_hop", "The red cylinder has what size?", f"query_size({_u('red,cylinder')})"),
    ("zero_hop", "How big is the red cube?", f"query_size({_u('red,cube')})"),
    ("zero_hop", "What is the color of the matte block?", f"query_color({_u('rubber,cube')})"),
    # one_hop
    ("one_hop", "There is a big green cylinder; what number of rubber things are left of it?",
     f"count(filter[rubber](relate[left]({_u('large,green,cylinder')})))"),
    ("one_hop", "There is a small cube; are there any spheres to the left of it?",
     f"exist(filter[sphere](relate[left]({_u('small,cube')})))"),
    ("one_hop", "How many cylinders are on the left side of the small cube?",
     f"count(filter[cylinder](relate[left]({_u('small,cube')})))"),
    ("one_hop", "There is a purple object that is behind the gray metal object; how big is it?",
     f"query_size(unique(filter[purple](relate[behind]({_u('gray,metal')}))))"),
    ("one_hop", "The tiny thing on the right side of the red matte ball has what shape?",
     f"query_shape(unique(filter[small](relate[right]({_u('red,rubber,sphere')}))))"),
    ("one_hop", "What is the tiny thing to the right of the red ball made of?",
     f"query_material(unique(filter[small](relate[right]({_u('red,sphere')}))))"),
    ("one_hop", "There is a cylinder behind the cube; what is its material?",
     f"query_material(unique(filter[cylinder](relate[behind]({_u('cube')}))))"),
    ("one_hop", "The cylinder that is in front of the cube is what color?",
     f"query_color(unique(filter[cylinder](relate[front]({_u('cube')}))))"),
    # two_hop
    ("two_hop", "There is a cube that is left of the sphere; how many cylinders are in front of it?",
     f"count(filter[cylinder](relate[front](unique(filter[cube](relate[left]({_u('sphere')}))))))"),
    ("two_hop", "Is there a large cylinder that is behind the cube that is left of the red sphere?",
     f"exist(filter[large,cylinder](relate[behind](unique(filter[cube](relate[left]({_u('red,sphere')}))))))"),
    ("two_hop", "There is a thing behind the green rubber object; is there a big ball in front of it?",
     f"exist(filter[large,sphere](relate[front](unique(relate[behind]({_u('green,rubber')})))))"),
    ("two_hop", "What material is the large cylinder that is behind the cylinder that is on the right "
                "side of the blue cube made of?",
     f"query_material(unique(filter[large,cylinder](relate[behind](unique(filter[cylinder]"
     f"(relate[right]({_u('blue,cube')})))))))"),
    ("two_hop", "The cylinder left of the tiny object to the left of the large purple object is made "
                "of what material?",
     f"query_material(unique(filter[cylinder](relate[left](unique(filter[small]"
     f"(relate[left]({_u('large,purple')})))))))"),
    # three_hop
    ("three_hop", "There is a thing left of the red cube behind the yellow ball in front of the large "
                  "cylinder; what number of spheres are behind it?",
     f"count(filter[sphere](relate[behind](unique(relate[left](unique(filter[red,cube](relate[behind]"
     f"(unique(filter[yellow,sphere](relate[front]({_u('large,cylinder')})))))))))))"),
    ("three_hop", "The sphere that is behind the cube that is left of the cylinder that is in front of "
                  "the red thing is what size?",
     f"query_size(unique(filter[sphere](relate[behind](unique(filter[cube](relate[left](unique("
     f"filter[cylinder](relate[front]({_u('red')}))))))))))"),
    # single_and
    ("single_and", "What number of cylinders are both behind the red cube and in front of the sphere?",
     f"count(filter[cylinder](intersect(relate[behind]({_u('red,cube')}), relate[front]({_u('sphere')}))))"),
    ("single_and", "Are there any spheres that are both left of the red cube and right of the green "
                   "cylinder?",
     f"exist(filter[sphere](intersect(relate[left]({_u('red,cube')}), "
     f"relate[right]({_u('green,cylinder')}))))"),
    ("single_and", "Is there a cube that is left of the red cube and behind the big sphere?",
     f"exist(filter[cube](intersect(relate[left]({_u('red,cube')}), relate[behind]({_u('large,sphere')}))))"),
    ("single_and", "The rubber thing that is left of the cube and behind the cylinder has what shape?",
     f"query_shape(unique(filter[rubber](intersect(relate[left]({_u('cube')}), "
     f"relate[behind]({_u('cylinder')})))))"),
    ("single_and", "There is a small object that is both in front of the brown thing and behind the "
                   "cyan ball; what material is it made of?",
     f"query_material(unique(filter[small](intersect(relate[front]({_u('brown')}), "
     f"relate[behind]({_u('cyan,sphere')})))))"),
    ("single_and", "How big is the sphere that is both to the right of the cube and to the left of the "
                   "cylinder?",
     f"query_size(unique(filter[sphere](intersect(relate[right]({_u('cube')}), "
     f"relate[left]({_u('cylinder')})))))"),
    # single_or
    ("single_or", "How many things are either red cubes or small spheres?",
     "count(union(filter[red,cube](scene), filter[small,sphere](scene)))"),
    ("single_or", "What number of large objects are either cylinders or blue things?",
     "count(filter[large](union(filter[cylinder](scene), filter[blue](scene))))"),
    ("single_or", "How many rubber things are cubes or spheres?",
     "count(filter[rubber](union(filter[cube](scene), filter[sphere](scene))))"),
    ("single_or", "How many cylinders are red things or big things?",
     "count(filter[cylinder](union(filter[red](scene), filter[large](scene))))"),
    ("single_or", "How many things are cubes that are left of the sphere or cylinders behind the red "
                  "thing?",
     f"count(union(filter[cube](relate[left]({_u('sphere')})), "
     f"filter[cylinder](relate[behind]({_u('red')}))))"),
    ("single_or", "What number of objects are either big balls or red rubber things that are in front "
                  "of the cube?",
     f"count(union(filter[large,sphere](scene), filter[red,rubber](relate[front]({_u('cube')}))))"),
    # same_relate
    ("same_relate", "Is there anything else that has the same size as the red cube?",
     f"exist(same_size({_u('red,cube')}))"),
    ("same_relate", "Is there any other thing of the same color as the big sphere?",
     f"exist(same_color({_u('large,sphere')}))"),
    ("same_relate", "Are there any other things that are made of the same material as the cyan "
                    "cylinder?", f"exist(same_material({_u('cyan,cylinder')}))"),
    ("same_relate", "What number of other things are there of the same material as the sphere",
     f"count(same_material({_u('sphere')}))"),
    ("same_relate", "Is there another cube that has the same color as the small cylinder?",
     f"exist(filter[cube](same_color({_u('small,cylinder')})))"),
    ("same_relate", "Is there another sphere made of the same material as the cube?",
     f"exist(filter[sphere](same_material({_u('cube')})))"),
    ("same_relate", "How many other spheres are made of the same material as the red cube?",
     f"count(filter[sphere](same_material({_u('red,cube')})))"),
    ("same_relate", "How many other red things have the same shape as the cylinder?",
     f"count(filter[red](same_shape({_u('cylinder')})))"),
    ("same_relate", "What is the color of the other cylinder that is the same size as the cube?",
     f"query_color(unique(filter[cylinder](same_size({_u('cube')}))))"),
    ("same_relate", "There is another sphere that is made of the same material as the big cube; what "
                    "is its size?",
     f"query_size(unique(filter[sphere](same_material({_u('large,cube')}))))"),
    ("same_relate", "The other cube that is the same color as the red sphere is what size?",
     f"query_size(unique(filter[cube](same_color({_u('red,sphere')}))))"),
    ("same_relate", "There is another thing that is the same shape as the red cube; what is it made of?",
     f"query_material(unique(same_shape({_u('red,cube')})))"),
    # comparison
    ("comparison", "Is the size of the red cube the same as the blue cylinder?",
     f"equal_size(query_size({_u('red,cube')}), query_size({_u('blue,cylinder')}))"),
    ("comparison", "Is the red cube the same size as the blue cylinder?",
     f"equal_size(query_size({_u('red,cube')}), query_size({_u('blue,cylinder')}))"),
    ("comparison", "Does the red cube have the same color as the ball?",
     f"equal_color(query_color({_u('red,cube')}), query_color({_u('sphere')}))"),
    ("comparison", "Are the red cube and the blue sphere made of the same material?",
     f"equal_material(query_material({_u('red,cube')}), query_material({_u('blue,sphere')}))"),
    ("comparison", "Is the red cube made of the same material as the blue sphere?",
     f"equal_material(query_material({_u('red,cube')}), query_material({_u('blue,sphere')}))"),
    ("comparison", "There is a cube in front of the sphere; is its material the same as the cylinder?",
     f"equal_material(query_material(unique(filter[cube](relate[front]({_u('sphere')})))), "
     f"query_material({_u('cylinder')}))"),
    ("comparison", "There is a cube; is it made of the same material as the cylinder behind the sphere?",
     f"equal_material(query_material({_u('cube')}), "
     f"query_material(unique(filter[cylinder](relate[behind]({_u('sphere')})))))"),
    ("comparison", "Do the cube left of the sphere and the cylinder behind the red thing have the same "
                   "shape?",
     f"equal_shape(query_shape(unique(filter[cube](relate[left]({_u('sphere')})))), "
     f"query_shape(unique(filter[cylinder](relate[behind]({_u('red')})))))"),
    ("comparison", "Is the cube that is left of the sphere made of the same material as the cylinder?",
     f"equal_material(query_material(unique(filter[cube](relate[left]({_u('sphere')})))), "
     f"query_material({_u('cylinder')}))"),
    ("comparison", "Are the red cube and the cylinder that is behind the sphere made of the same "
                   "material?",
     f"equal_material(query_material({_u('red,cube')}), "
     f"query_material(unique(filter[cylinder](relate[behind]({_u('sphere')})))))"),
    ("comparison", "Is the color of the cube behind the sphere the same as the cylinder?",
     f"equal_color(query_color(unique(filter[cube](relate[behind]({_u('sphere')})))), "
     f"query_color({_u('cylinder')}))"),
    ("comparison", "There is a sphere behind the cube; is it the same color as the cylinder in front "
                   "of the red thing?",
     f"equal_color(query_color(unique(filter[sphere](relate[behind]({_u('cube')})))), "
     f"query_color(unique(filter[cylinder](relate[front]({_u('red')})))))"),
    ("comparison", "There is a big thing; is it the same color as the small sphere?",
     f"equal_color(query_color({_u('large')}), query_color({_u('small,sphere')}))"),
    # compare_integer
    ("compare_integer", "Are there an equal number of red cubes and blue spheres?",
     "equal_integer(count(filter[red,cube](scene)), count(filter[blue,sphere](scene)))"),
    ("compare_integer", "Is the number of cubes less than the number of spheres?",
     "less_than(count(filter[cube](scene)), count(filter[sphere](scene)))"),
    ("compare_integer", "Is the number of cubes greater than the number of big things?",
     "greater_than(count(filter[cube](scene)), count(filter[large](scene)))"),
    ("compare_integer", "Are there fewer spheres that are left of the cube than cylinders?",
     f"less_than(count(filter[sphere](relate[left]({_u('cube')}))), count(filter[cylinder](scene)))"),
    ("compare_integer", "Is the number of cubes that are behind the sphere the same as the number of "
                        "cylinders left of the red thing?",
     f"equal_integer(count(filter[cube](relate[behind]({_u('sphere')}))), "
     f"count(filter[cylinder](relate[left]({_u('red')}))))"),
    ("compare_integer", "Are there more spheres behind the cube than cylinders in front of the red "
                        "thing?",
     f"greater_than(count(filter[sphere](relate[behind]({_u('cube')}))), "
     f"count(filter[cylinder](relate[front]({_u('red')}))))"),
]


@pytest.mark.parametrize("group, text, program", PHRASINGS, ids=[f"{g}-{i}" for i, (g, _, _) in
                                                                  enumerate(PHRASINGS)])
def test_hand_written_phrasing(group, text, program):
    gold = require_parse(parse_program(_program(program), text))
    p = parse_question(text)
    assert isinstance(p, QuestionParse), p.reason
    assert parse_signature(p) == parse_signature(gold)


def test_phrasings_cover_all_nine_template_groups():
    assert len({g for g, _, _ in PHRASINGS}) == 9

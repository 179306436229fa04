"""The executor against the shared samples' answers and stored ``_output``s, and its errors."""
from __future__ import annotations

import pytest

from vqa_adapters.clevr import (
    ProgramExecutionError,
    ProgramStep,
    execute_program,
    output_matches,
    referred_objects,
)
from vqa_adapters.clevr.vocabulary import FUNCTIONS


@pytest.mark.parametrize("name", ["generated", "val7", "train40", "single_object"])
def test_every_answer_is_reproduced(clevr_sets, name):
    questions, scenes = clevr_sets[name]
    assert questions
    for q in questions:
        e = execute_program(q.program, scenes[q.image_index], q.question_index)
        assert e.answer == q.answer, (q.question_index, q.text)


@pytest.mark.parametrize("name", ["generated", "single_object"])
def test_every_stored_output_is_reproduced(clevr_sets, name):
    questions, scenes = clevr_sets[name]
    nodes = 0
    for q in questions:
        e = execute_program(q.program, scenes[q.image_index])
        assert len(e.outputs) == len(q.outputs)
        for k, (mine, stored) in enumerate(zip(e.outputs, q.outputs)):
            assert output_matches(mine, stored), (q.question_index, k, mine, stored)
            nodes += 1
    assert nodes > 100


def test_all_26_functions_are_exercised_by_the_samples(clevr_sets):
    used = {s.function for name in ("generated", "val7", "train40")
            for q in clevr_sets[name][0] for s in q.program}
    assert len(FUNCTIONS) == 26 and used == set(FUNCTIONS)


def test_referred_objects_hand_checked(val_scenes):
    """Val scene 0: 0 large brown rubber cylinder, 1 large gray rubber cube, 2 small green rubber
    cylinder, 3 large purple metal sphere, 4 small gray metal cube."""
    s = val_scenes[0]
    assert [(o.size, o.color, o.shape) for o in s.objects][3] == ("large", "purple", "sphere")
    P = ProgramStep
    # "Are there any other things that are the same shape as the big metallic object?"
    prog = (P("scene", (), ()), P("filter_size", (0,), ("large",)),
            P("filter_material", (1,), ("metal",)), P("unique", (2,), ()),
            P("same_shape", (3,), ()), P("exist", (4,), ()))
    e = execute_program(prog, s)
    assert e.answer == "no" and e.outputs[4] == frozenset()
    assert referred_objects(prog, e.outputs) == {3}
    # "How many things are left of the gray metal cube?" (j in left[i]: j is left of i)
    prog = (P("scene", (), ()), P("filter_color", (0,), ("gray",)),
            P("filter_material", (1,), ("metal",)), P("unique", (2,), ()),
            P("relate", (3,), ("left",)), P("count", (4,), ()))
    e = execute_program(prog, s)
    assert e.outputs[4] == frozenset(s.relationships["left"][4]) == {0, 1, 2, 3}
    assert e.answer == "4"
    assert referred_objects(prog, e.outputs) == {0, 1, 2, 3, 4}


def test_unique_on_a_non_singleton_raises(val_scenes):
    P = ProgramStep
    prog = (P("scene", (), ()), P("filter_material", (0,), ("rubber",)), P("unique", (1,), ()),
            P("query_color", (2,), ()))
    with pytest.raises(ProgramExecutionError) as e:
        execute_program(prog, val_scenes[0], question_index=12)
    assert "question 12" in str(e.value) and "program node 2" in str(e.value)
    assert "got 3" in str(e.value) and e.value.node == 2 and isinstance(e.value, ValueError)


def test_type_errors_are_execution_errors(val_scenes):
    P = ProgramStep
    # relate of a set (no unique before it), and a program that ends in a set
    with pytest.raises(ProgramExecutionError, match="single object"):
        execute_program((P("scene", (), ()), P("relate", (0,), ("left",)),
                         P("count", (1,), ())), val_scenes[0])
    with pytest.raises(ProgramExecutionError, match="ends in a set"):
        execute_program((P("scene", (), ()), P("filter_color", (0,), ("red",))), val_scenes[0])

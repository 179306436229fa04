"""Precision/recall metrics against hand-computed values."""
from __future__ import annotations

import pytest

from vqa_adapters.clevr import (
    FAMILY_GROUPS,
    ParseFailure,
    evaluate_parser,
    precision_recall_report,
    score_sets,
)


def test_score_sets_closed_form():
    s = score_sets({1, 2, 3}, {2, 3, 4, 5})
    assert (s.true_positives, s.chosen, s.referred) == (2, 3, 4)
    assert s.precision == pytest.approx(2 / 3) and s.recall == pytest.approx(2 / 4)
    # empty conventions: nothing chosen claims nothing false; nothing referred leaves nothing to find
    assert score_sets(set(), {1}).precision == 1.0 and score_sets(set(), {1}).recall == 0.0
    assert score_sets({1}, set()).precision == 0.0 and score_sets({1}, set()).recall == 1.0
    assert score_sets(set(), set()).precision == score_sets(set(), set()).recall == 1.0


def test_micro_pools_counts_and_macro_averages_questions():
    items = [
        ({1, 2}, {1}, 0),          # P 1/2, R 1     (compare_integer)
        ({1, 2, 3, 4}, {1, 2, 3, 4}, 10),  # P 1, R 1  (comparison)
        ({7}, {7, 8, 9}, 88),      # P 1, R 1/3     (zero_hop)
    ]
    r = precision_recall_report(items)
    o = r.overall
    assert o.questions == 3
    assert o.micro_precision == pytest.approx((1 + 4 + 1) / (2 + 4 + 1))
    assert o.micro_recall == pytest.approx((1 + 4 + 1) / (1 + 4 + 3))
    assert o.macro_precision == pytest.approx((0.5 + 1 + 1) / 3)
    assert o.macro_recall == pytest.approx((1 + 1 + 1 / 3) / 3)
    assert [g.group for g in r.by_group] == ["compare_integer", "comparison", "zero_hop"]
    assert [f.group for f in r.by_family] == ["compare_integer #0", "comparison #10", "zero_hop #88"]
    md = r.to_markdown()
    lines = md.splitlines()
    assert lines[0] == "| group | questions | micro P | micro R | macro P | macro R |"
    assert lines[2] == "| all | 3 | 0.857 | 0.750 | 0.833 | 0.778 |"
    assert len(lines) == 2 + 1 + 3
    assert len(r.to_markdown(families=True).splitlines()) == 2 + 1 + 3 + 3


def test_unknown_family_gets_its_own_group():
    r = precision_recall_report([({1}, {1}, None), ({1}, {2}, 40)])
    assert [g.group for g in r.by_group] == ["same_relate", "unknown"]
    assert len(r.by_family) == 1


def test_group_names_are_the_nine_template_files():
    assert [n for n, _ in FAMILY_GROUPS] == [
        "compare_integer", "comparison", "three_hop", "single_and", "same_relate",
        "single_or", "one_hop", "two_hop", "zero_hop"]
    assert sum(len(r) for _, r in FAMILY_GROUPS) == 90


def test_evaluate_parser_records_failures(clevr_sets):
    questions, scenes = clevr_sets["val7"]
    ev = evaluate_parser(questions, scenes, parse=lambda t: ParseFailure(t, "refuses"))
    assert (ev.total, ev.parsed, ev.parse_rate) == (7, 0, 0.0)
    assert ev.failures[0] == (questions[0].question_index, "refuses")
    ev = evaluate_parser(questions, scenes)
    assert ev.parse_rate == 1.0 and ev.report.overall.micro_recall == 1.0

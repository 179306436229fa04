"""The noisy perception of :mod:`vqa_adapters.clevr.noise`: its statistics against the rates it is
asked for, p = 0 as the identity, and PSL on exact probabilities against executed programs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vqa_adapters.clevr import execute_program, load_questions, load_scenes, referred_objects
from vqa_adapters.clevr.noise import VALUES, NoiseSettings, dirichlet_alpha, perceive, perceive_all
from vqa_adapters.clevr.vocabulary import ATTRIBUTES, RELATIONS

DATA = Path(__file__).resolve().parents[1] / "data" / "clevr"


@pytest.fixture(scope="module")
def scenes():
    return load_scenes(DATA / "CLEVR_val_scenes_000000-000499.json")


def _draws(scenes, settings, seeds):
    """Per attribute: (argmax correct, argmax probability) over every real detection."""
    ok = {a: [] for a in ATTRIBUTES}
    conf = {a: [] for a in ATTRIBUTES}
    for seed in seeds:
        for i, n in perceive_all(scenes, settings, seed).items():
            real = np.flatnonzero(n.source >= 0)
            for a in ATTRIBUTES:
                truth = [getattr(scenes[i].objects[n.source[j]], a) for j in real]
                ok[a].extend(getattr(n.scene.objects[j], a) == t for j, t in zip(real, truth))
                conf[a].extend(n.probs[a][real].max(1))
    return {a: np.asarray(v) for a, v in ok.items()}, {a: np.asarray(v) for a, v in conf.items()}


@pytest.mark.parametrize("p", [0.05, 0.2])
def test_argmax_error_rate_is_p_and_calibrated(scenes, p):
    ok, conf = _draws(scenes, NoiseSettings(p=p), seeds=(0, 1))
    for a in ATTRIBUTES:
        n = len(ok[a])
        se = np.sqrt(p * (1 - p) / n)
        # Sampling error of these draws plus the Monte-Carlo error of alpha (about 0.002).
        assert abs((1 - ok[a].mean()) - p) < 4 * se + 0.005, a
        # Calibration: the mean argmax probability is the accuracy, and so within confidence bins.
        assert abs(conf[a].mean() - ok[a].mean()) < 4 * se + 0.005, a
    c, k = np.concatenate(list(conf.values())), np.concatenate(list(ok.values()))
    edges = np.quantile(c, [0, 0.25, 0.5, 0.75, 1.0])
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (c >= lo) & (c <= hi)
        if sel.sum() < 500 or hi - lo < 1e-9:
            continue
        acc = k[sel].mean()
        assert abs(acc - c[sel].mean()) < 4 * np.sqrt(max(acc * (1 - acc), 0.01) / sel.sum()) + 0.01


def test_overconfident_shares_the_argmax_and_reports_the_confidence(scenes):
    some = dict(list(scenes.items())[:60])
    cal = perceive_all(some, NoiseSettings(p=0.3), seed=4)
    over = perceive_all(some, NoiseSettings(p=0.3, calibrated=False, confidence=0.9), seed=4)
    for i in some:
        for a in ATTRIBUTES:
            q = over[i].probs[a]
            assert np.array_equal(q.argmax(1), cal[i].probs[a].argmax(1))
            assert np.allclose(q.max(1), 0.9) and np.allclose(q.sum(1), 1.0)


def test_missed_and_spurious_rates(scenes):
    s = NoiseSettings(p=0.1, missed=0.2, spurious=0.15)
    missed = spurious = total = 0
    for seed in (0,):
        for i, n in perceive_all(scenes, s, seed).items():
            m = len(scenes[i].objects)
            total += m
            missed += int((~n.kept).sum())
            spurious += n.n_spurious
            assert len(n.scene.objects) == int(n.kept.sum()) + n.n_spurious
            assert np.array_equal(n.source[n.source >= 0], np.flatnonzero(n.kept))
            for r in RELATIONS:  # a valid scene: one list per detection, valid indices, no self
                rows = n.scene.relationships[r]
                assert len(rows) == len(n.scene.objects)
                assert all(0 <= j < len(rows) and j != k for k, js in enumerate(rows) for j in js)
    for rate, got in ((0.2, missed), (0.15, spurious)):
        assert abs(got / total - rate) < 4 * np.sqrt(rate * (1 - rate) / total)


def test_p_zero_leaves_the_scene_unchanged(scenes):
    for i, s in list(scenes.items())[:40]:
        n = perceive(s, NoiseSettings(p=0.0), np.random.default_rng(i))
        assert n.scene.objects == s.objects
        assert dict(n.scene.relationships) == dict(s.relationships)
        assert np.array_equal(n.source, np.arange(len(s.objects))) and n.kept.all()
        for a in ATTRIBUTES:
            onehot = np.zeros((len(s.objects), len(VALUES[a])))
            onehot[np.arange(len(s.objects)), [VALUES[a].index(getattr(o, a)) for o in s.objects]] = 1
            assert np.array_equal(n.probs[a], onehot)


def test_settings_are_checked():
    with pytest.raises(ValueError, match="coin"):
        NoiseSettings(p=0.5)
    with pytest.raises(ValueError, match="missed"):
        NoiseSettings(missed=1.5)
    assert dirichlet_alpha(0.0, 8) == 0.0
    assert dirichlet_alpha(0.1, 2) < dirichlet_alpha(0.2, 2)


@pytest.mark.parametrize("rules", ["default", "noisy"])
def test_psl_with_exact_probabilities_finds_the_executed_referred_objects(scenes, rules):
    from vqa_adapters.psl import PipelineSettings, clevr_pipeline

    qs = load_questions(DATA / "CLEVR_val_000000-000032_generated_seed0.json", scenes)[::15][:20]
    used = {q.image_index: scenes[q.image_index] for q in qs}
    noisy = perceive_all(used, NoiseSettings(p=0.0), seed=0)
    run = clevr_pipeline(qs, {i: n.scene for i, n in noisy.items()},
                         PipelineSettings(rules=rules, parser="program"),
                         probabilities={i: dict(n.probs) for i, n in noisy.items()}, reference=False)
    for r, q in zip(run.results, qs):
        ref = referred_objects(q.program, execute_program(q.program, scenes[q.image_index]).outputs)
        assert set(r.chosen) == set(ref), q.text

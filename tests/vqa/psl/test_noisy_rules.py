"""noisy.psl and its facts: soft same_* relations and match(M, O) against their formulas, the
product cap against the posterior of a unique referent, and exactness on exact scenes against
executed programs."""
from __future__ import annotations

import numpy as np
import pytest

from vqa_adapters.clevr import execute_program, referred_objects
from vqa_adapters.clevr.noise import VALUES
from vqa_adapters.clevr.parser import parse_question
from vqa_adapters.clevr.vocabulary import ATTRIBUTES
from vqa_adapters.psl import PipelineSettings, clevr_pipeline
from vqa_adapters.psl.choose import choose_objects
from vqa_adapters.psl.facts import build_facts, clevr_object_facts
from vqa_adapters.psl.pipeline import run_psl
from vqa_adapters.psl.rules import load_program


def _one_hot(scene) -> dict[str, np.ndarray]:
    out = {}
    for a in ATTRIBUTES:
        p = np.zeros((len(scene.objects), len(VALUES[a])))
        p[np.arange(len(scene.objects)), [VALUES[a].index(getattr(o, a)) for o in scene.objects]] = 1.0
        out[a] = p
    return out


def _random_probs(scene, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {a: rng.dirichlet(np.ones(len(VALUES[a])), len(scene.objects)) for a in ATTRIBUTES}


def test_soft_same_relations_are_the_probability_of_sharing_a_value(scenes):
    scene = scenes[3]
    probs = _random_probs(scene, 0)
    f = clevr_object_facts(scene, probs)
    n = len(scene.objects)
    for a in ATTRIBUTES:
        got = np.asarray(f.relations[f"same_{a}"])
        for i in range(n):
            for j in range(n):
                want = 0.0 if i == j else sum(probs[a][i, v] * probs[a][j, v] for v in range(len(VALUES[a])))
                assert got[i, j] == pytest.approx(want, abs=1e-12)
    # One-hot probabilities give back the exact relation of the scene file.
    exact = clevr_object_facts(scene)
    onehot = clevr_object_facts(scene, _one_hot(scene))
    for a in ATTRIBUTES:
        assert np.array_equal(np.asarray(onehot.relations[f"same_{a}"], float),
                              np.asarray(exact.relations[f"same_{a}"], float))


def test_same_consistent_atoms_carry_the_soft_values(scenes):
    scene = scenes[0]
    probs = _random_probs(scene, 1)
    p = parse_question("How many things are the same color as the large metal cube?")
    f = clevr_object_facts(scene, probs)
    st = build_facts([(p, f)]).store
    v = st.get("consistent").obs_values
    n = len(scene.objects)
    assert len(v) == n * n
    assert np.allclose(np.sort(v), np.sort(np.asarray(f.relations["same_color"]).ravel()))


def test_match_is_the_product_of_the_stated_values(scenes):
    scene = scenes[0]
    probs = _random_probs(scene, 2)
    p = parse_question("How many things are the same color as the large metal cube?")
    f = clevr_object_facts(scene, probs)
    chunk = build_facts([(p, f)], match=True)
    names = chunk.store.constants.names
    m = chunk.store.get("match")
    got = {(names[a], names[b]): v for (a, b), v in zip(m.obs_args, m.obs_values)}
    n = len(scene.objects)
    assert len(got) == len(p.mentions) * n  # no blocking: every pair
    for j, mention in enumerate(p.mentions):
        for i in range(n):
            want = 1.0
            for a in ATTRIBUTES:
                v = getattr(mention, a)
                if v is not None:
                    want *= probs[a][i, VALUES[a].index(v)]
            assert got[(f"q0:m{j}", f"q0:o{i}")] == pytest.approx(want, rel=1e-12)
    # Without match=True the other programs' facts are unchanged.
    assert build_facts([(p, f)]).store.get("match") is None


def _scene0_ambiguous(scene):
    """Scene 0 perceived so that objects 1 and 4 both have the argmax "large metal cube"; object 4
    is the more probable one (0.60 * 0.99 = 0.594 against 0.62 * 0.62 = 0.384), object 1 the
    one with the larger smallest probability (0.62 against 0.60)."""
    probs = _one_hot(scene)
    probs["size"][1] = [0.62, 0.38]  # VALUES["size"] = (large, small)
    probs["material"][1] = [0.62, 0.38]  # (metal, rubber); object 1 is rubber in truth
    probs["size"][4] = [0.60, 0.40]  # object 4 is small in truth
    probs["material"][4] = [0.99, 0.01]
    return probs


def test_match_cap_picks_the_most_probable_object_when_the_argmax_is_ambiguous(scenes):
    scene = scenes[0]
    assert VALUES["size"] == ("large", "small") and VALUES["material"] == ("metal", "rubber")
    p = parse_question("What color is the large metal cube?")
    f = clevr_object_facts(scene, _scene0_ambiguous(scene))
    # Independent calibrated attributes and one presupposed referent: P(object i is it) is
    # proportional to q_i * prod_{k != i} (1 - q_k), q_i = the product of its stated values.
    q = np.array([0, 0.62 * 0.62, 0, 0, 0.60 * 0.99])
    post = np.array([q[i] * np.prod(np.delete(1 - q, i)) for i in range(5)])
    best = int(post.argmax())
    assert best == 4
    picks = {}
    for rules in ("default", "noisy"):
        scores, _, conv, _ = run_psl([(p, f)], PipelineSettings(rules=rules))
        assert conv.all()
        picks[rules] = choose_objects(scores[0], p)
        if rules == "noisy":
            assert scores[0][0] == pytest.approx(q, abs=2e-3)  # capped at match, pushed up to it
        else:
            assert scores[0][0, [1, 4]] == pytest.approx([0.62, 0.60], abs=2e-3)  # the minimum
    assert picks["noisy"] == (best,)
    assert picks["default"] == (1, 4)  # the cap by the smallest value keeps both


@pytest.mark.parametrize("parser", ["text", "program"])
def test_noisy_rules_on_exact_scenes_find_the_executed_referred_objects(parser, scenes, shared_questions):
    probs = {i: _one_hot(scenes[i]) for i in {q.image_index for q in shared_questions}}
    for given in (None, probs):
        run = clevr_pipeline(shared_questions, scenes, PipelineSettings(rules="noisy", parser=parser),
                             probabilities=given, reference=False)
        assert not run.failures and run.converged.all()
        for r, q in zip(run.results, shared_questions):
            ref = referred_objects(q.program, execute_program(q.program, scenes[q.image_index]).outputs)
            assert set(r.chosen) == set(ref), q.text


def test_noisy_program_is_bundled_and_asks_for_match_facts():
    assert load_program("noisy").match and load_program("noisy").block
    assert not load_program("default").match and not load_program("paper").match

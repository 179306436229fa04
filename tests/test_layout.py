"""Layout checks of issue 19, item 8.

``build_facts`` was split into private stage functions; its output on the bundled CLEVR samples
must be byte-identical to the single function it replaced. The digests below were taken from that
function (commit d4b92e0) before the split; they pin the refactoring only. What the facts *mean* is
tested against executed CLEVR programs in ``tests/vqa/psl``.

Also: no test or benchmark edits ``sys.path`` (the package is installed; helpers live in
:mod:`hlmrf.testing`), and no benchmark imports from ``tests/``.
"""
from __future__ import annotations

import hashlib
import itertools
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CLEVR = ROOT / "tests" / "data" / "clevr"

#: ``(negatives, block, scoped_values)`` -> digest of the old ``build_facts`` output on the 330
#: generated + 7 official val questions (questions of one image share one ObjectFacts).
OLD_DIGESTS = {
    (True, True, True): "c092efeb95fcc9604a4104d48578793286342c016a207fcc7d1147f32c2d0939",
    (True, True, False): "0d84a3ffb3cccfeb55c622f16bbfa569b7f5fdd1e1ebac16caef41e572e9fc9e",
    (True, False, True): "bed064f9f9a997e1e8759dc7bf48b4b16dcd42f3a793c4045e697302206cf091",
    (True, False, False): "8f6ede5b2a49fb5a90dc3776cba62774f1c2cbc8f97c9b3151061d04e9b3478c",
    (False, True, True): "5b617418a7ba5f675db97f64f5cc964c752aa4ab3a6781f7c3ec6a7f75110a6b",
    (False, True, False): "ced914da6539cf9dc8d743c08b2ada202cfab4f29ce780bd848bcebfaa9aca9e",
    (False, False, True): "b6d25aaa3718009b941e8e88ea14cb932efa6bcb60a6c2a8861b6eeea521d2df",
    (False, False, False): "4f3c44008c128b1576b1cadef101a416d8956d8b317c284d3ac9059e60fca6f2",
    # The first 20 questions with prefix "x"; the first 30 with one ObjectFacts per question.
    "prefix": "2da50b2ece9a75e70d9c268409c288c0858d622c10680a62acb23d47ddff7a70",
    "unshared": "b6dd82273859e3789216cf87d6df617ca799cc96bac742d1908d8425a21e4f72",
}


def _digest(chunk) -> str:
    """SHA-256 over everything a FactChunk holds: constants, every predicate's atoms, the index."""
    h = hashlib.sha256()

    def add(a):
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())

    h.update("\n".join(chunk.store.constants.names).encode())
    for key, p in chunk.store.predicates.items():
        h.update(f"{key}/{p.name}/{p.arity}/{p.declared_open}".encode())
        for arr in (p.obs_args, p.obs_values, p.target_args, p.truth_args, p.truth_values):
            add(arr)
    for arr in (chunk.n_mentions, chunk.n_objects, chunk.offsets, chunk.pair_target,
                chunk.target_question, chunk.target_codes):
        add(arr)
    return h.hexdigest()


@pytest.fixture(scope="module")
def clevr_items():
    from vqa_adapters.clevr import load_questions, load_scenes
    from vqa_adapters.clevr.parser import parse_question
    from vqa_adapters.psl.facts import clevr_object_facts

    scenes = load_scenes(CLEVR / "CLEVR_val_scenes_000000-000499.json")
    qs = (load_questions(CLEVR / "CLEVR_val_000000-000032_generated_seed0.json", scenes)
          + load_questions(CLEVR / "CLEVR_val_questions_img000000_7q.json", scenes))
    cache: dict = {}
    items = [(parse_question(q.text),
              cache.setdefault(q.image_index, clevr_object_facts(scenes[q.image_index])))
             for q in qs]
    unshared = [(p, clevr_object_facts(scenes[q.image_index])) for (p, _), q in zip(items[:30], qs)]
    return items, unshared


@pytest.mark.parametrize("options", list(itertools.product([True, False], repeat=3)))
def test_build_facts_output_is_unchanged_by_the_split(clevr_items, options):
    from vqa_adapters.psl.facts import build_facts

    neg, blk, scoped = options
    chunk = build_facts(clevr_items[0], negatives=neg, block=blk, scoped_values=scoped)
    assert _digest(chunk) == OLD_DIGESTS[options]


def test_build_facts_prefix_and_unshared_scenes_are_unchanged(clevr_items):
    from vqa_adapters.psl.facts import build_facts

    items, unshared = clevr_items
    assert _digest(build_facts(items[:20], prefix="x")) == OLD_DIGESTS["prefix"]
    assert _digest(build_facts(unshared)) == OLD_DIGESTS["unshared"]


def _python_files(*folders: str):
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_no_sys_path_edits_in_tests_or_benchmarks():
    offenders = [str(p.relative_to(ROOT)) for p in _python_files("tests", "benchmarks")
                 if p.resolve() != Path(__file__).resolve()
                 and re.search(r"sys\.path\.(insert|append)", p.read_text())]
    assert not offenders, f"edit sys.path (use hlmrf.testing or importlib): {offenders}"


def test_benchmarks_do_not_import_from_tests():
    pattern = re.compile(r"^\s*(from|import)\s+(tests\b|test_\w+|lang_helpers|synthetic|"
                         r"random_models|psl_corpus|reference_grounder)\b", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in _python_files("benchmarks")
                 if pattern.search(p.read_text())]
    assert not offenders, f"benchmarks import from tests/: {offenders}"


def test_testing_helpers_are_installed_modules():
    import hlmrf.testing.psl_corpus as corpus
    import hlmrf.testing.random_models as rm

    assert corpus.NAMES and callable(rm.clevr_like_model)

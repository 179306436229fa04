"""The mask pipeline: questions -> parses -> facts -> one grounding per chunk -> solve -> choices -> masks.

:func:`run_psl` is the dataset-independent core (``(parse, object facts)`` pairs in, a score matrix
per question out, in chunks of ``chunk_size`` questions, each chunk one FactStore, one grounding
and one batched solve). :func:`clevr_pipeline` and :func:`sort_of_clevr_pipeline` wrap it with the
dataset's parser, object facts and referred objects (the reference for precision/recall), and
:func:`render_question_masks` turns choices into masks (:func:`render_question_mask` one question's,
from stored objects, the same way). A question the parser cannot read is
recorded with its reason (no scores, no objects, an empty mask) and counted in the report; it never
stops the run. Nothing here touches files or prints (see :mod:`vqa_adapters.cli.masks`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Mapping, Sequence

import numpy as np

from hlmrf.errors import SettingsError
from hlmrf.inference.settings import AdmmSettings

from ..clevr.errors import ClevrDataError
from ..clevr.executor import execute_program, referred_objects
from ..clevr.io import Question, Scene
from ..clevr.metrics import PrecisionRecallReport, PRRow, precision_recall_report, score_sets
from ..clevr.parser import ParseFailure, QuestionParse, parse_program, parse_question
from .choose import THRESHOLD, TIE, mention_picks, object_weights
from .facts import ObjectFacts, build_facts, clevr_object_facts
from .masks import MaskSpec, render_masks
from .rules import RuleSet, load_program
from .solve import DEFAULT_SETTINGS, check_device, resolve_solver, solve_chunk

__all__ = [
    "PipelineSettings",
    "QuestionResult",
    "PipelineResult",
    "run_psl",
    "clevr_pipeline",
    "sort_of_clevr_pipeline",
    "render_question_masks",
    "render_question_mask",
    "question_mask_spec",
    "mask_weights",
    "cached_parse_question",
]

PARSERS = ("text", "program")


@dataclass(frozen=True)
class PipelineSettings:
    """Every option of the pipeline, validated."""

    rules: str = "default"
    """``default``, ``noisy``, ``paper`` or a path to a ``.psl`` file."""
    parser: str = "text"
    """CLEVR: ``text`` (the question's words) or ``program`` (its gold program)."""
    block: bool | None = None
    """Blocking of impossible candidate pairs (None: on for the default rules only)."""
    negatives: bool = True
    """Store the 0.0 ``consistent`` atoms."""
    solver: str = "auto"
    """``numpy-batch`` (batched in numpy, per-question stopping), ``torch`` (the same in torch, any
    device), ``numpy`` (ADMM on each chunk's union) or ``auto`` (``numpy-batch`` on the CPU,
    ``torch`` on CUDA; see :func:`vqa_adapters.psl.solve.resolve_solver`)."""
    device: str = "cpu"
    """Torch device for the torch solver (``cpu``, ``cuda``)."""
    dtype: str = "float64"
    """Torch dtype (``float64`` or ``float32``)."""
    num_threads: int | None = 1
    """Torch CPU threads during the solve (None: torch's default; one is fastest, see
    :func:`vqa_adapters.psl.solve.torch_threads`)."""
    admm: AdmmSettings = DEFAULT_SETTINGS
    """ADMM settings (rho 0.1 by default, see :mod:`vqa_adapters.psl.solve`)."""
    chunk_size: int = 2000
    """Questions per FactStore / grounding / solve."""
    threshold: float = THRESHOLD
    """Score at which an object is chosen (see :mod:`vqa_adapters.psl.choose`)."""
    tie: float = TIE
    """A unique mention keeps the objects within this of its best score."""
    weighted: bool = False
    """Scale each blob by its object's score (else every chosen object's blob peaks at 1)."""

    def __post_init__(self) -> None:
        if self.parser not in PARSERS:
            raise SettingsError(f"unknown parser {self.parser!r}; choose one of {', '.join(PARSERS)}")
        if self.dtype not in ("float64", "float32"):
            raise SettingsError(f"unknown dtype {self.dtype!r}; choose one of float64, float32")
        for name in ("num_threads", "chunk_size"):
            v = getattr(self, name)
            if (v is not None or name == "chunk_size") and (
                    isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise SettingsError(f"{name} must be an integer >= 1{' or None' if name == 'num_threads' else ''}, "
                                    f"got {v!r}")
        for name in ("threshold", "tie"):
            if not isinstance(getattr(self, name), (int, float)) or not math.isfinite(getattr(self, name)):
                raise SettingsError(f"{name} must be a finite number, got {getattr(self, name)!r}")
        if not 0.0 < self.threshold <= 1.0:
            raise SettingsError(f"threshold must lie in (0, 1], got {self.threshold!r}")
        if self.tie < 0.0:
            raise SettingsError(f"tie must be >= 0, got {self.tie!r}")
        check_device(self.device)  # also under the numpy solvers: a typo is never silently ignored
        resolve_solver(self.solver, self.device)


@dataclass(frozen=True)
class QuestionResult:
    """What the pipeline decided for one question."""

    question_index: int
    image_index: int
    group: str | None
    """The reporting group: CLEVR's family index as a string, or a Sort-of-CLEVR type name."""
    family_index: int | None
    parse: QuestionParse | None
    failure: str | None
    """Why the parser could not read the question (then ``parse`` is None)."""
    scores: np.ndarray | None = field(default=None, compare=False)
    """``(mentions, objects)`` candidate scores."""
    mention_objects: tuple[tuple[int, ...], ...] = ()
    chosen: tuple[int, ...] = ()
    referred: tuple[int, ...] | None = None
    """The reference objects (executed program / stored record), when known."""


@dataclass(frozen=True)
class PipelineResult:
    """Per-question results, the run's settings and its timings (seconds per stage)."""

    results: tuple[QuestionResult, ...]
    settings: PipelineSettings
    timings: Mapping[str, float]
    solver_iterations: np.ndarray = field(compare=False)
    converged: np.ndarray = field(compare=False)

    @property
    def failures(self) -> list[tuple[int, str]]:
        return [(r.question_index, r.failure) for r in self.results if r.failure is not None]

    def report(self, by: str = "family") -> PrecisionRecallReport:
        """Precision/recall of chosen vs referred objects over the parsed questions with a
        reference; ``by="family"`` groups CLEVR's template files and families, ``by="group"``
        groups by :attr:`QuestionResult.group` (Sort-of-CLEVR's question types)."""
        scored = [r for r in self.results if r.parse is not None and r.referred is not None]
        if by == "family":
            return precision_recall_report((r.chosen, r.referred, r.family_index) for r in scored)
        groups: dict[str, list] = {}
        for r in scored:
            groups.setdefault(r.group or "unknown", []).append(score_sets(r.chosen, r.referred))
        overall = PRRow.of("all", [score_sets(r.chosen, r.referred) for r in scored])
        return PrecisionRecallReport(overall, tuple(PRRow.of(g, s) for g, s in groups.items()), ())


@lru_cache(maxsize=1 << 16)
def cached_parse_question(text: str) -> QuestionParse | ParseFailure:
    """:func:`~vqa_adapters.clevr.parser.parse_question`, memoised by text (parses are immutable,
    and real question sets repeat phrasings)."""
    return parse_question(text)


def run_psl(items: Sequence[tuple[QuestionParse, ObjectFacts]], settings: PipelineSettings,
            rules: RuleSet | None = None, on_chunk: Callable[[int], None] | None = None
            ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, dict[str, float]]:
    """Scores for every ``(parse, facts)`` pair: ``(scores, iterations, converged, timings)``.

    ``on_chunk(n)`` is called after each chunk of ``n`` questions (progress bars).
    """
    rules = rules or load_program(settings.rules, settings.block)
    scores: list[np.ndarray] = []
    its, conv = [], []
    t = {"facts": 0.0, "ground": 0.0, "solve": 0.0}
    for s in range(0, len(items), settings.chunk_size):
        part = items[s:s + settings.chunk_size]
        t0 = time.perf_counter()
        chunk = build_facts(part, negatives=settings.negatives, block=rules.block,
                            scoped_values=rules.scoped_values, match=rules.match)
        t["facts"] += time.perf_counter() - t0
        sol = solve_chunk(rules, chunk, settings.admm, solver=settings.solver, device=settings.device,
                          dtype=settings.dtype, num_threads=settings.num_threads)
        t["ground"] += sol.ground_seconds
        t["solve"] += sol.solve_seconds
        scores.extend(sol.scores)
        its.append(sol.iterations)
        conv.append(sol.converged)
        if on_chunk is not None:
            on_chunk(len(part))
    cat = (lambda a, d: np.concatenate(a) if a else np.zeros(0, d))
    return scores, cat(its, np.int64), cat(conv, bool), t


def _decide(parses, facts, scores, settings):
    out = []
    for p, f, s in zip(parses, facts, scores):
        picks = mention_picks(s, p, settings.threshold, settings.tie)
        chosen = tuple(sorted({i for q, m in zip(picks, p.mentions) if m.referred for i in q}))
        out.append((tuple(map(tuple, picks)), chosen))
    return out


def _assemble(meta, parsed, scores, decisions, referred):
    """Per-question results in input order from the parsed subset's outputs."""
    results = []
    it = iter(range(len(parsed)))
    for (qi, ii, group, fam, parse, failure), ref in zip(meta, referred):
        if parse is None:
            results.append(QuestionResult(qi, ii, group, fam, None, failure, None, (), (), ref))
            continue
        k = next(it)
        picks, chosen = decisions[k]
        results.append(QuestionResult(qi, ii, group, fam, parse, None, scores[k], picks, chosen, ref))
    return tuple(results)


def clevr_pipeline(questions: Sequence[Question], scenes: Mapping[int, Scene],
                   settings: PipelineSettings | None = None,
                   probabilities: Mapping[int, Mapping[str, np.ndarray]] | None = None,
                   on_chunk: Callable[[int], None] | None = None, reference: bool = True
                   ) -> PipelineResult:
    """Run the pipeline on CLEVR questions.

    Parameters
    ----------
    probabilities : optional per-image ``{attribute: (n, k)}`` perception scores (see
        :func:`~vqa_adapters.psl.facts.clevr_object_facts`).
    reference : execute each question's program (when it has one) for its referred objects.

    Raises
    ------
    ClevrDataError : a question whose ``image_index`` has no scene.
    ProgramExecutionError : a program that cannot run on its scene (with ``reference``).
    """
    settings = settings or PipelineSettings()
    t0 = time.perf_counter()
    facts_of: dict[int, ObjectFacts] = {}
    meta, parsed, facts, referred = [], [], [], []
    for q in questions:
        scene = scenes.get(q.image_index)
        if scene is None:
            raise ClevrDataError(f"question {q.question_index}: image_index {q.image_index} has no scene")
        if settings.parser == "text":
            p = cached_parse_question(q.text)
        elif q.program is None:
            p = ParseFailure(q.text, "the question has no program (test split?)", "program")
        else:
            p = parse_program(q.program, q.text)
        fam = q.family_index
        ref = None
        if reference and q.program is not None:
            ref = tuple(sorted(referred_objects(q.program, execute_program(q.program, scene,
                                                                           q.question_index).outputs)))
        referred.append(ref)
        if isinstance(p, ParseFailure):
            meta.append((q.question_index, q.image_index, None if fam is None else str(fam), fam, None,
                         p.reason))
            continue
        f = facts_of.get(q.image_index)
        if f is None:
            probs = probabilities.get(q.image_index) if probabilities else None
            f = facts_of[q.image_index] = clevr_object_facts(scene, probs)
        meta.append((q.question_index, q.image_index, None if fam is None else str(fam), fam, p, None))
        parsed.append(p)
        facts.append(f)
    return _solve_and_choose(meta, parsed, facts, referred, settings, on_chunk, t0)


def sort_of_clevr_pipeline(split, settings: PipelineSettings | None = None,
                           on_chunk: Callable[[int], None] | None = None) -> PipelineResult:
    """Run the pipeline on a loaded Sort-of-CLEVR split (``load_sort_of_clevr``/``generate_split``).

    Questions are numbered ``image * Q + k``; the reference is each record's stored ``objects``.
    """
    from .sort_of_clevr import parse_sort_of_clevr, sort_of_clevr_object_facts

    settings = settings or PipelineSettings()
    t0 = time.perf_counter()
    meta, parsed, facts, referred = [], [], [], []
    cache: dict[str, QuestionParse | ParseFailure] = {}
    for i, (scene, records) in enumerate(zip(split.scenes, split.records)):
        f = sort_of_clevr_object_facts(scene)
        for k, rec in enumerate(records):
            p = cache.get(rec.text)
            if p is None:
                p = cache[rec.text] = parse_sort_of_clevr(rec.text)
            qi = i * len(records) + k
            referred.append(tuple(sorted(rec.objects)))
            group = rec.qtype.name.lower()
            if isinstance(p, ParseFailure):
                meta.append((qi, i, group, None, None, p.reason))
                continue
            meta.append((qi, i, group, None, p, None))
            parsed.append(p)
            facts.append(f)
    return _solve_and_choose(meta, parsed, facts, referred, settings, on_chunk, t0)


def mask_weights(r: QuestionResult, weighted: bool) -> np.ndarray:
    """The blob weights of ``r``'s chosen objects, float32 (what :func:`render_masks` computes in):
    each object's score with ``weighted`` (:func:`~vqa_adapters.psl.choose.object_weights`), else 1.

    The objects format of ``masks.npz`` stores exactly these, because the weights cannot be rebuilt
    from its float16 scores bit for bit."""
    ch = list(r.chosen)
    if weighted and r.scores is not None:
        return np.asarray(object_weights(r.scores, r.parse, ch), np.float32)
    return np.ones(len(ch), np.float32)


_NO_CENTRES, _NO_RADII = np.zeros((0, 2)), np.zeros(0)


def question_mask_spec(facts: ObjectFacts, chosen: Sequence[int], weights: np.ndarray) -> MaskSpec:
    """The blobs of one question's mask: its chosen objects' centres and radii in ``facts`` (a
    scene's), with ``weights`` (one per chosen object). The one place a question becomes a
    :class:`~vqa_adapters.psl.masks.MaskSpec`, whether all masks are rendered at once
    (:func:`render_question_masks`) or one when it is read (:func:`render_question_mask`).

    Raises
    ------
    IndexError : a chosen object the scene does not have.
    """
    ch = [int(i) for i in chosen]
    if len(weights) != len(ch):
        raise ValueError(f"{len(ch)} chosen objects but {len(weights)} weights")
    return MaskSpec(facts.centres[ch] if ch else _NO_CENTRES, facts.radii[ch] if ch else _NO_RADII,
                    weights, facts.image_size)


def render_question_masks(result: PipelineResult, facts_of: Callable[[QuestionResult], ObjectFacts],
                          size: tuple[int, int], dtype: str = "uint8") -> np.ndarray:
    """One mask per question of ``result`` (an empty mask for an unread question).

    ``facts_of(r)`` gives a question's object facts (centres, radii, image size).
    """
    return render_masks(question_mask_specs(result, facts_of), size, dtype)


def question_mask_specs(result: PipelineResult, facts_of: Callable[[QuestionResult], ObjectFacts]) -> list:
    """Each question's :class:`~vqa_adapters.psl.masks.MaskSpec` (what renders its mask)."""
    w = result.settings.weighted
    return [question_mask_spec(facts_of(r), r.chosen, mask_weights(r, w)) for r in result.results]


def render_question_mask(facts: ObjectFacts, chosen: Sequence[int], weights: np.ndarray,
                         size: tuple[int, int], dtype: str = "uint8") -> np.ndarray:
    """One question's mask ``(height, width)``, rendered as :func:`render_question_masks` renders
    it among all the others (the same spec, the same :func:`render_masks`; equal bit for bit, which
    ``tests/vqa/test_mask_store.py`` checks): for masks stored as objects and rendered when read."""
    return render_masks([question_mask_spec(facts, chosen, weights)], size, dtype)[0]


def _solve_and_choose(meta, parsed, facts, referred, settings: "PipelineSettings", on_chunk,
                      t0: float) -> "PipelineResult":
    """The stages after parsing, shared by both datasets: PSL solve, decision rule, assembly."""
    t1 = time.perf_counter()
    scores, its, conv, t = run_psl(list(zip(parsed, facts)), settings, on_chunk=on_chunk)
    t2 = time.perf_counter()
    decisions = _decide(parsed, facts, scores, settings)
    timings = {"parse": t1 - t0, **t, "choose": time.perf_counter() - t2}
    return PipelineResult(_assemble(meta, parsed, scores, decisions, referred), settings, timings, its, conv)

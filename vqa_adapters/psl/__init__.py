"""PSL masks for VQA: which scene objects each question mention denotes, as spatial masks.

Pipeline, one module per stage: :mod:`.facts` (scenes and parses -> one FactStore per chunk of
questions, question-scoped constants), :mod:`.rules` (the bundled ``default``/``paper`` programs),
:mod:`.solve` (ground once per chunk, solve every question's block with hlmrf's batched ADMM),
:mod:`.choose` (scores -> chosen objects), :mod:`.masks` (chosen objects -> Gaussian heatmaps),
:mod:`.pipeline` (all of it for CLEVR and Sort-of-CLEVR, with precision/recall against the
referred objects), :mod:`.sort_of_clevr` (its question reader and object facts). Torch is imported
only by the torch solver; files are written only by :mod:`vqa_adapters.cli.masks`.
"""
from .choose import choose_mentions, choose_objects
from .facts import FactChunk, ObjectFacts, build_facts, clevr_object_facts
from .masks import MaskSpec, parse_size, quantize, render_masks
from .pipeline import (
    PipelineResult,
    PipelineSettings,
    QuestionResult,
    clevr_pipeline,
    render_question_masks,
    run_psl,
    sort_of_clevr_pipeline,
)
from .rules import RuleSet, load_program
from .solve import ChunkSolution, solve_chunk
from .sort_of_clevr import parse_sort_of_clevr, sort_of_clevr_object_facts

__all__ = [
    "ChunkSolution",
    "FactChunk",
    "MaskSpec",
    "ObjectFacts",
    "PipelineResult",
    "PipelineSettings",
    "QuestionResult",
    "RuleSet",
    "build_facts",
    "choose_mentions",
    "choose_objects",
    "clevr_object_facts",
    "clevr_pipeline",
    "load_program",
    "parse_size",
    "parse_sort_of_clevr",
    "quantize",
    "render_masks",
    "render_question_masks",
    "run_psl",
    "solve_chunk",
    "sort_of_clevr_object_facts",
    "sort_of_clevr_pipeline",
]

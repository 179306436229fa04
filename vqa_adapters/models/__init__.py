"""VQA networks (torch): Relation Networks, the Stacked Attention Network and the two teachers.

Importing this package does not import torch; the torch modules load on first attribute access,
so configs (:mod:`vqa_adapters.models.config`) can be validated without it.
"""
from __future__ import annotations

import importlib

from vqa_adapters.models.config import QUESTION_KINDS, MODEL_KINDS, ModelConfig, QuestionConfig

__all__ = [
    "ModelConfig", "QuestionConfig", "MODEL_KINDS", "QUESTION_KINDS",
    "RelationNetwork", "StateRelationNetwork", "AttentionRelationNetwork",
    "StackedAttentionNetwork", "ExternalMaskTeacher", "apply_mask", "build_model",
]

_LAZY = {
    "RelationNetwork": "vqa_adapters.models.rn",
    "StateRelationNetwork": "vqa_adapters.models.rn",
    "AttentionRelationNetwork": "vqa_adapters.models.rn",
    "StackedAttentionNetwork": "vqa_adapters.models.san",
    "ExternalMaskTeacher": "vqa_adapters.models.teachers",
    "apply_mask": "vqa_adapters.models.teachers",
    "build_model": "vqa_adapters.models.factory",
}


def __getattr__(name: str):
    if name in _LAZY:
        from hlmrf.errors import require

        require("torch", "vqa")
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vqa_adapters.models' has no attribute {name!r}")

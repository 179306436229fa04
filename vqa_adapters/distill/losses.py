"""The distillation loss of the seed paper, written once.

``L = (1 - pi) * l1(y, s) + pi * l2(t, s)`` where ``s`` are the student's logits, ``y`` the
ground-truth answers, ``t`` the teacher's logits (treated as constants), ``l1`` the cross-entropy
``mean_b -log softmax(s_b)[y_b]`` and ``l2`` either the soft-target cross-entropy
``mean_b -sum_k p_t[b,k] log softmax(s_b)[k]`` (``p_t = softmax(t / T)``, student at the same
temperature ``T``) or the squared Euclidean distance ``mean_b ||p_t[b] - softmax(s_b)||^2``.
The same form serves the teacher in iterative distillation (roles swapped). This module computes
numbers; it does not pick ``pi`` (see :mod:`vqa_adapters.distill.schedules`).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from hlmrf.errors import SettingsError
from vqa_adapters.distill.settings import SOFT_LOSSES

__all__ = ["distillation_loss", "soft_loss", "SOFT_LOSSES"]


def soft_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *,
              kind: str = "cross_entropy", temperature: float = 1.0) -> torch.Tensor:
    """``l2(t, s)``: soft-target cross-entropy or squared Euclidean distance of probabilities."""
    p_t = torch.softmax(teacher_logits.detach() / temperature, dim=1)
    if kind == "cross_entropy":
        return -(p_t * F.log_softmax(student_logits / temperature, dim=1)).sum(1).mean()
    if kind == "euclidean":
        p_s = torch.softmax(student_logits / temperature, dim=1)
        return ((p_t - p_s) ** 2).sum(1).mean()
    raise SettingsError(f"soft loss must be one of {SOFT_LOSSES}, got {kind!r}")


def distillation_loss(student_logits: torch.Tensor, target: torch.Tensor,
                      teacher_logits: torch.Tensor | None = None, *, pi: float = 0.0,
                      soft: str = "cross_entropy", temperature: float = 1.0) -> torch.Tensor:
    """``(1 - pi) * CE(y, s) + pi * l2(t, s)``; with no teacher (or ``pi == 0``) plain CE."""
    hard = F.cross_entropy(student_logits, target)
    if teacher_logits is None or pi == 0.0:
        return hard
    return (1.0 - pi) * hard + pi * soft_loss(student_logits, teacher_logits, kind=soft,
                                              temperature=temperature)

"""One epoch of training or evaluation, with or without a partner network to imitate.

:func:`train_epoch` minimises :func:`~vqa_adapters.distill.losses.distillation_loss` of a model
against the ground truth and, when a ``partner`` is given, the partner's soft predictions (the
teacher for a student; in iterative distillation also the student for the teacher). Networks that
``uses_mask`` get the batch's mask; an attention teacher with mask supervision adds its attention
loss. Shuffling and dropout are seeded per epoch (:func:`epoch_seed`), so epoch ``t`` is the same
whether or not the run was interrupted before it. Orchestrating stages, checkpoints and files is
:mod:`vqa_adapters.distill.runner`'s job; nothing here prints.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader

from vqa_adapters.distill.losses import distillation_loss

__all__ = ["forward", "train_epoch", "evaluate", "EvalResult", "epoch_seed", "make_loader",
           "set_lr", "RELATIONAL_FROM"]

#: Sort-of-CLEVR question types from this code on are relational (3-5: nearest, farthest, count).
RELATIONAL_FROM = 3

OnBatch = Callable[[int, float], None]


def epoch_seed(seed: int, stage: str, epoch: int) -> int:
    """A 63-bit seed for (run seed, stage name, epoch); epoch 0 seeds the initial weights."""
    digest = hashlib.sha256(f"{seed}/{stage}/{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def make_loader(dataset, *, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    """A single-process DataLoader whose shuffling is fixed by ``seed``."""
    g = torch.Generator()
    g.manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=g,
                      num_workers=0)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def forward(model: nn.Module, batch: dict) -> torch.Tensor:
    """Logits of ``model`` on ``batch``, passing the mask to networks that use one."""
    x = batch[getattr(model, "input_key", "image")]
    if getattr(model, "uses_mask", False):
        if "mask" not in batch:
            raise KeyError("this network needs masks but the batch has none; check data.masks")
        return model(x, batch["question"], batch["mask"])
    return model(x, batch["question"])


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loader, *,
                partner: nn.Module | None = None, pi: float = 0.0, soft: str = "cross_entropy",
                temperature: float = 1.0, on_batch: OnBatch | None = None) -> float:
    """One pass over ``loader``; returns the mean loss per question."""
    model.train()
    if partner is not None:
        partner.eval()
    total, count = 0.0, 0
    for batch in loader:
        target = batch["answer"]
        partner_logits = None
        if partner is not None and pi > 0:
            with torch.no_grad():
                partner_logits = forward(partner, batch)
        logits = forward(model, batch)
        loss = distillation_loss(logits, target, partner_logits, pi=pi, soft=soft,
                                 temperature=temperature)
        if getattr(model, "uses_mask", False) and hasattr(model, "attention_loss"):
            loss = loss + model.attention_loss(batch["mask"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        n = len(target)
        total += float(loss.detach()) * n
        count += n
        if on_batch is not None:
            on_batch(n, float(loss.detach()))
    return total / max(count, 1)


@dataclass(frozen=True)
class EvalResult:
    """Accuracy overall, by question type, and over relational / non-relational types."""

    accuracy: float
    n: int
    per_type: dict[int, float] = field(default_factory=dict)
    relational: float = float("nan")
    non_relational: float = float("nan")


@torch.no_grad()
def evaluate(model: nn.Module, loader, *, on_batch: OnBatch | None = None) -> EvalResult:
    """Accuracy of ``model`` on ``loader`` (items need ``answer`` and ``qtype``)."""
    model.eval()
    correct: dict[int, int] = {}
    seen: dict[int, int] = {}
    for batch in loader:
        pred = forward(model, batch).argmax(1)
        ok = (pred == batch["answer"]).tolist()
        for t, o in zip(torch.as_tensor(batch["qtype"]).tolist(), ok):
            seen[t] = seen.get(t, 0) + 1
            correct[t] = correct.get(t, 0) + int(o)
        if on_batch is not None:
            on_batch(len(ok), float("nan"))

    def share(types) -> float:
        n = sum(seen[t] for t in types)
        return sum(correct[t] for t in types) / n if n else float("nan")

    n = sum(seen.values())
    return EvalResult(
        accuracy=share(seen), n=n,
        per_type={t: correct[t] / seen[t] for t in sorted(seen)},
        relational=share([t for t in seen if t >= RELATIONAL_FROM]),
        non_relational=share([t for t in seen if t < RELATIONAL_FROM]),
    )

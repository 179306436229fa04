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
from vqa_adapters.models.rn import attention_kl

__all__ = ["forward", "train_epoch", "evaluate", "EvalResult", "epoch_seed", "make_loader",
           "set_lr", "RELATIONAL_FROM", "BatchLoader", "TYPE_NAMES"]

#: Sort-of-CLEVR question types from this code on are relational (3-5: nearest, farthest, count).
RELATIONAL_FROM = 3
#: Names of the Sort-of-CLEVR question types 0..5, as summaries report them (a dataset with
#: other types names them in its ``type_names``, e.g. CLEVR's).
TYPE_NAMES = ("shape", "horizontal", "vertical", "nearest", "farthest", "count")

OnBatch = Callable[[int, float], None]


def epoch_seed(seed: int, stage: str, epoch: int) -> int:
    """A 63-bit seed for (run seed, stage name, epoch); epoch 0 seeds the initial weights."""
    digest = hashlib.sha256(f"{seed}/{stage}/{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class BatchLoader:
    """Batches of a dataset that can gather many items at once (``dataset.get_batch(indices)``),
    in the order a shuffling ``DataLoader`` with the same seeded generator would give (the same
    batches), each gathered by one indexing step instead of collating single items."""

    def __init__(self, dataset, *, batch_size: int, shuffle: bool, seed: int = 0):
        self.dataset, self.batch_size, self.shuffle, self.seed = dataset, batch_size, shuffle, seed

    def __len__(self) -> int:
        return -(-len(self.dataset) // self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed)
            torch.empty((), dtype=torch.int64).random_(generator=g)  # DataLoader's base seed draw
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        for start in range(0, n, self.batch_size):
            yield self.dataset.get_batch(order[start:start + self.batch_size].numpy())


def make_loader(dataset, *, batch_size: int, shuffle: bool, seed: int = 0):
    """Batches in an order fixed by ``seed``: a :class:`BatchLoader` when the dataset gathers
    batches itself, else a single-process ``DataLoader``."""
    if hasattr(dataset, "get_batch"):
        return BatchLoader(dataset, batch_size=batch_size, shuffle=shuffle, seed=seed)
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


def to_device(batch: dict, device) -> dict:
    """The batch's tensors on ``device`` (``None``: unchanged)."""
    if device is None:
        return batch
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loader, *,
                partner: nn.Module | None = None, pi: float = 0.0, soft: str = "cross_entropy",
                temperature: float = 1.0, attention_weight: float = 0.0,
                on_batch: OnBatch | None = None, device=None) -> float:
    """One pass over ``loader``; returns the mean loss per question.

    ``attention_weight > 0`` adds ``attention_weight * KL(mask || attention)``
    (:func:`~vqa_adapters.models.rn.attention_kl`): the "where to look" term that pulls a
    network's own attention toward the batch's mask while its input stays unmasked.
    """
    model.train()
    if partner is not None:
        partner.eval()
    total, count = 0.0, 0
    for batch in loader:
        batch = to_device(batch, device)
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
        if attention_weight > 0:
            if "mask" not in batch:
                raise KeyError("the attention loss needs masks but the batch has none; check "
                               "data.masks")
            loss = loss + attention_weight * attention_kl(model, batch["mask"])
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
def evaluate(model: nn.Module, loader, *, on_batch: OnBatch | None = None,
             device=None, relational_from: int | None = RELATIONAL_FROM) -> EvalResult:
    """Accuracy of ``model`` on ``loader`` (items need ``answer`` and ``qtype``).

    Types ``>= relational_from`` are relational (Sort-of-CLEVR's 3-5); ``None``: the dataset has
    no such division (CLEVR) and both shares are NaN."""
    model.eval()
    correct: dict[int, int] = {}
    seen: dict[int, int] = {}
    for batch in loader:
        batch = to_device(batch, device)
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
        relational=share([] if relational_from is None
                         else [t for t in seen if t >= relational_from]),
        non_relational=share([] if relational_from is None
                             else [t for t in seen if t < relational_from]),
    )

"""Relation Networks (Santoro et al. 2017) as used by the seed paper, from pixels or from objects.

``RN(o, q) = f( sum_{i,j} g([o_i, o_j, q]) )`` over all ordered pairs of regions (i = j included),
each region carrying its (x, y) coordinates. The first g layer is linear in the concatenation, so it
is computed per region and broadcast over pairs (same function, O(R) instead of O(R^2) work).
The in-network attention teacher is the pixel RN with region attention
``v = tanh(W_I r_I + W_q q + b)``, ``a = softmax_r(w^T v)`` multiplied into the regions (times R, so
uniform attention leaves them unchanged). These modules return answer logits; losses, masks fed as
images (:mod:`vqa_adapters.models.teachers`) and training live elsewhere.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from vqa_adapters.models.config import ModelConfig
from vqa_adapters.models.encoders import QuestionEncoder, image_encoder, mlp, regions

__all__ = ["PairwiseG", "RelationNetwork", "StateRelationNetwork", "AttentionRelationNetwork"]


class PairwiseG(nn.Module):
    """``sum_{i,j} g([o_i, o_j, q])`` with g an MLP of ``units`` (ReLU after every layer)."""

    def __init__(self, object_dim: int, question_dim: int, units: tuple[int, ...]):
        super().__init__()
        self.first = nn.Linear(2 * object_dim + question_dim, units[0])
        self.object_dim = object_dim
        self.rest = mlp(units[0], tuple(units[1:])) if len(units) > 1 else nn.Identity()
        self.out_dim = units[-1]

    def forward(self, objects: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        d = self.object_dim
        w = self.first.weight
        left = objects @ w[:, :d].T                       # (B, R, u): the o_i part
        right = objects @ w[:, d:2 * d].T                 # (B, R, u): the o_j part
        qpart = q @ w[:, 2 * d:].T + self.first.bias      # (B, u)
        h = left.unsqueeze(2) + right.unsqueeze(1) + qpart[:, None, None, :]
        h = self.rest(F.relu(h))
        return h.sum(dim=(1, 2))


class _RNHead(nn.Module):
    def __init__(self, config: ModelConfig, object_dim: int):
        super().__init__()
        self.question = QuestionEncoder(config.question)
        self.g = PairwiseG(object_dim, self.question.out_dim, config.g_units)
        f = list(config.f_units)
        self.f = mlp(self.g.out_dim, tuple(f)) if f else nn.Identity()
        self.dropout = nn.Dropout(config.dropout)
        self.answer = nn.Linear(f[-1] if f else self.g.out_dim, config.n_answers)

    def forward(self, objects: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        q = self.question(question)
        return self.answer(self.dropout(self.f(self.g(objects, q))))


class RelationNetwork(nn.Module):
    """Pixel RN: conv encoder -> regions with coordinates -> pairwise g -> f -> answer logits."""

    input_key = "image"
    uses_mask = False

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = image_encoder(config)
        self.head = _RNHead(config, self.encoder.out_channels + 2)

    def objects(self, image: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) image -> (B, R, C_conv + 2) region vectors."""
        return regions(self.encoder(image))

    def forward(self, image: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        return self.head(self.objects(image), question)


class StateRelationNetwork(nn.Module):
    """State-description RN: reads (B, N, object_dim) object tensors (coordinates + attributes)."""

    input_key = "objects"
    uses_mask = False

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.head = _RNHead(config, config.object_dim)

    def forward(self, objects: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        return self.head(objects.float(), question)


class AttentionRelationNetwork(RelationNetwork):
    """In-network attention teacher: regions re-weighted by question-guided attention.

    With ``config.attention_supervision > 0`` the mask (when given) supervises the attention via
    :meth:`attention_loss`; that is the teacher's only use of privileged information.
    """

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        c = self.encoder.out_channels + 2
        self.w_image = nn.Linear(c, config.attention_dim)           # W_I and b
        self.w_question = nn.Linear(self.head.question.out_dim, config.attention_dim, bias=False)
        self.w_score = nn.Linear(config.attention_dim, 1, bias=False)
        self.uses_mask = config.attention_supervision > 0
        self.last_attention: torch.Tensor | None = None
        self._grid: tuple[int, int] | None = None

    def attention(self, objects: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """(B, R) attention over regions, softmax(w^T tanh(W_I r + W_q q + b))."""
        v = torch.tanh(self.w_image(objects) + self.w_question(q).unsqueeze(1))
        return torch.softmax(self.w_score(v).squeeze(-1), dim=1)

    def forward(self, image: torch.Tensor, question: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        feats = self.encoder(image)
        self._grid = tuple(feats.shape[-2:])
        objects = regions(feats)
        q = self.head.question(question)
        a = self.attention(objects, q)
        self.last_attention = a
        attended = objects * (a * a.shape[1]).unsqueeze(-1)
        return self.head.answer(self.head.dropout(self.head.f(self.head.g(attended, q))))

    def attention_loss(self, mask: torch.Tensor) -> torch.Tensor:
        """``weight * KL(mask_regions || attention)`` for the last forward pass; mask (B,1,H,W)."""
        if self.last_attention is None or self._grid is None:
            raise RuntimeError("attention_loss needs a forward pass first")
        target = F.adaptive_avg_pool2d(mask.float(), self._grid).flatten(1)
        target = (target + 1e-6) / (target + 1e-6).sum(1, keepdim=True)
        log_a = torch.log(self.last_attention.clamp_min(1e-12))
        kl = (target * (torch.log(target) - log_a)).sum(1).mean()
        return self.config.attention_supervision * kl

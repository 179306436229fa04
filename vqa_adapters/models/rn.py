"""Relation Networks (Santoro et al. 2017) as used by the seed paper, from pixels or from objects.

``RN(o, q) = f( sum_{i,j} g([o_i, o_j, q]) )`` over all ordered pairs of regions (i = j included),
each region carrying its (x, y) coordinates. The first g layer is linear in the concatenation, so it
is computed per region and broadcast over pairs (same function, O(R) instead of O(R^2) work).
The in-network attention teacher is the pixel RN with region attention (the paper's eq. 6,
``a = softmax(W_I vec(F) + W_q q + b)``, or a per-region scorer) multiplied into the regions
(times R, so uniform attention leaves them unchanged); :func:`attention_kl` is the loss that pulls
any network's attention toward a mask. These modules return answer logits; losses, masks fed as
images (:mod:`vqa_adapters.models.teachers`) and training live elsewhere.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from vqa_adapters.models.config import ModelConfig
from vqa_adapters.models.encoders import QuestionEncoder, image_encoder, mlp, regions

__all__ = ["PairwiseG", "RelationNetwork", "StateRelationNetwork", "AttentionRelationNetwork",
           "attention_kl", "mask_regions", "grid_side"]


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


def grid_side(image_size: int, layers: int) -> int:
    """Side of the feature map after ``layers`` 3x3 stride-2 convs with padding 1."""
    side = image_size
    for _ in range(layers):
        side = (side - 1) // 2 + 1
    return side


class AttentionRelationNetwork(RelationNetwork):
    """In-network attention teacher: regions re-weighted by question-guided attention.

    ``attention_form='eq6'`` (the seed paper's eq. 6): ``a = softmax(W_I vec(F) + W_q q + b)``,
    ``W_I`` mapping the whole flattened conv feature map ``F`` (C x h x w) to one logit per region,
    so it needs ``config.image_size``. ``attention_form='per_region'``: one scorer shared by all
    regions, ``a_r = softmax_r(w^T tanh(W_I r + W_q q + b))``. Either way the regions are multiplied
    by ``a * R`` (uniform attention leaves them unchanged) before the RN's g.

    With ``config.attention_supervision > 0`` the mask (when given) supervises the attention via
    :meth:`attention_loss`; that is the teacher's only use of privileged information.
    """

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        c = self.encoder.out_channels + 2
        q_dim = self.head.question.out_dim
        self.form = config.attention_form
        if self.form == "eq6":
            side = grid_side(config.image_size, len(config.conv_channels))
            r = side * side
            self.w_image = nn.Linear(self.encoder.out_channels * r, r)   # W_I and b
            self.w_question = nn.Linear(q_dim, r, bias=False)             # W_q
            self.w_score = None
            self._expected_grid = (side, side)
        else:
            self.w_image = nn.Linear(c, config.attention_dim)             # W_I and b
            self.w_question = nn.Linear(q_dim, config.attention_dim, bias=False)
            self.w_score = nn.Linear(config.attention_dim, 1, bias=False)
            self._expected_grid = None
        self.uses_mask = config.attention_supervision > 0
        self.last_attention: torch.Tensor | None = None
        self._grid: tuple[int, int] | None = None

    def attention(self, objects: torch.Tensor, q: torch.Tensor,
                  features: torch.Tensor | None = None) -> torch.Tensor:
        """(B, R) attention over regions (``features``: the (B, C, h, w) map, for ``eq6``)."""
        if self.form == "eq6":
            if features is None:
                raise ValueError("eq. 6 attention needs the feature map")
            return torch.softmax(self.w_image(features.flatten(1)) + self.w_question(q), dim=1)
        v = torch.tanh(self.w_image(objects) + self.w_question(q).unsqueeze(1))
        return torch.softmax(self.w_score(v).squeeze(-1), dim=1)

    def forward(self, image: torch.Tensor, question: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        feats = self.encoder(image)
        self._grid = tuple(feats.shape[-2:])
        if self._expected_grid is not None and self._grid != self._expected_grid:
            raise ValueError(f"eq. 6 attention was sized for {self.config.image_size}-pixel images "
                             f"(a {self._expected_grid} feature map) but got a {self._grid} map; "
                             "set model.image_size to the images' side")
        objects = regions(feats)
        q = self.head.question(question)
        a = self.attention(objects, q, feats)
        self.last_attention = a
        attended = objects * (a * a.shape[1]).unsqueeze(-1)
        return self.head.answer(self.head.dropout(self.head.f(self.head.g(attended, q))))

    def attention_loss(self, mask: torch.Tensor) -> torch.Tensor:
        """``weight * KL(mask_regions || attention)`` for the last forward pass; mask (B,1,H,W)."""
        return self.config.attention_supervision * attention_kl(self, mask)


def mask_regions(mask: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(B, 1, H, W) mask -> (B, h*w) distribution over regions (average-pooled, normalised)."""
    target = F.adaptive_avg_pool2d(mask.float(), grid).flatten(1)
    target = target + 1e-6
    return target / target.sum(1, keepdim=True)


def attention_kl(model: nn.Module, mask: torch.Tensor) -> torch.Tensor:
    """``KL(mask_regions || attention)`` of ``model``'s last forward pass, averaged over the batch
    (and over hops for a SAN). Any network with ``last_attention`` and ``_grid`` works: the
    attention RN (one map) or the SAN (one map per hop). The "where to look" loss a student
    gets from the PSL mask."""
    maps = model.last_attention
    grid = getattr(model, "_grid", None)
    if maps is None or grid is None or (isinstance(maps, list) and not maps):
        raise RuntimeError("attention_kl needs a forward pass of a network with attention first")
    maps = maps if isinstance(maps, list) else [maps]
    target = mask_regions(mask, grid)
    kl = [(target * (torch.log(target) - torch.log(a.clamp_min(1e-12)))).sum(1).mean()
          for a in maps]
    return sum(kl) / len(kl)

"""The Stacked Attention Network (Yang et al. 2016) in the CLEVR CNN+LSTM+SA form.

Regions v (projected to d) and question vector u (projected to d); per hop
``h = tanh(W_v v + W_u u)``, ``p = softmax_r(W_p h)``, ``v~ = sum_r p_r v_r``, ``u <- u + v~``;
then an MLP classifier on u. Returns logits only; it has no notion of masks (wrap it in
:class:`~vqa_adapters.models.teachers.ExternalMaskTeacher` for that).
"""
from __future__ import annotations

import torch
from torch import nn

from vqa_adapters.models.config import ModelConfig
from vqa_adapters.models.encoders import QuestionEncoder, image_encoder, mlp, regions

__all__ = ["StackedAttentionNetwork"]


class _Hop(nn.Module):
    def __init__(self, d: int, k: int):
        super().__init__()
        self.w_v = nn.Linear(d, k, bias=False)
        self.w_u = nn.Linear(d, k)
        self.w_p = nn.Linear(k, 1)

    def forward(self, v: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(self.w_v(v) + self.w_u(u).unsqueeze(1))
        p = torch.softmax(self.w_p(h).squeeze(-1), dim=1)
        return u + (p.unsqueeze(-1) * v).sum(1), p


class StackedAttentionNetwork(nn.Module):
    """Conv regions + question encoder + ``san_hops`` attention hops + MLP classifier."""

    input_key = "image"
    uses_mask = False

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = image_encoder(config)
        self.question = QuestionEncoder(config.question)
        d = config.san_dim
        self.project_v = nn.Linear(self.encoder.out_channels + 2, d)
        self.project_u = nn.Linear(self.question.out_dim, d)
        self.hops = nn.ModuleList(_Hop(d, config.attention_dim) for _ in range(config.san_hops))
        self.classifier = nn.Sequential(mlp(d, config.f_units), nn.Dropout(config.dropout),
                                        nn.Linear(config.f_units[-1] if config.f_units else d,
                                                  config.n_answers))
        self.last_attention: list[torch.Tensor] = []
        self._grid: tuple[int, int] | None = None

    def forward(self, image: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(image)
        self._grid = tuple(feats.shape[-2:])
        v = torch.tanh(self.project_v(regions(feats)))
        u = torch.tanh(self.project_u(self.question(question)))
        self.last_attention = []
        for hop in self.hops:
            u, p = hop(v, u)
            self.last_attention.append(p)
        return self.classifier(u)

"""The two encoders every VQA network here shares: a strided conv image encoder and a question
encoder that reads either a fixed one-hot vector or a token-id sequence.

Images go in as (B, C, H, W) floats; the conv encoder returns the feature map, and
:func:`regions` turns it into (B, R, C [+ 2]) region vectors with optional (x, y) coordinates in
[-1, 1]. It deliberately knows nothing about masks or answers.
"""
from __future__ import annotations

import torch
from torch import nn

from vqa_adapters.models.config import ModelConfig, QuestionConfig

__all__ = ["ConvEncoder", "QuestionEncoder", "regions", "mlp", "reverse_tokens"]


def mlp(in_dim: int, units: tuple[int, ...], *, final_activation: bool = True) -> nn.Sequential:
    """Linear layers of ``units`` sizes with ReLU between them (and after the last if asked)."""
    layers: list[nn.Module] = []
    for i, u in enumerate(units):
        layers.append(nn.Linear(in_dim, u))
        if final_activation or i < len(units) - 1:
            layers.append(nn.ReLU())
        in_dim = u
    return nn.Sequential(*layers)


class ConvEncoder(nn.Module):
    """3x3 stride-2 convs, each followed by ReLU and (optionally) batch norm, as in the RN paper."""

    def __init__(self, *, in_channels: int = 3, channels: tuple[int, ...] = (24, 24, 24, 24),
                 batch_norm: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for out in channels:
            layers += [nn.Conv2d(c, out, 3, stride=2, padding=1), nn.ReLU()]
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            c = out
        self.net = nn.Sequential(*layers)
        self.out_channels = c

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)


def regions(features: torch.Tensor, *, coordinates: bool = True) -> torch.Tensor:
    """(B, C, h, w) feature map -> (B, h*w, C [+ 2]) region vectors, row-major, with (x, y)."""
    b, c, h, w = features.shape
    out = features.flatten(2).transpose(1, 2)
    if not coordinates:
        return out
    ys = torch.linspace(-1.0, 1.0, h, dtype=features.dtype, device=features.device)
    xs = torch.linspace(-1.0, 1.0, w, dtype=features.dtype, device=features.device)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    coords = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1).expand(b, h * w, 2)
    return torch.cat([out, coords], dim=2)


def reverse_tokens(tokens: torch.Tensor) -> torch.Tensor:
    """Reverse each row's non-padding prefix (token id 0 is padding and stays at the end)."""
    lengths = (tokens != 0).sum(1)
    idx = torch.arange(tokens.shape[1], device=tokens.device).expand_as(tokens)
    rev = lengths.unsqueeze(1) - 1 - idx
    src = torch.where(rev >= 0, rev, idx)
    return torch.gather(tokens, 1, src)


class QuestionEncoder(nn.Module):
    """``onehot``: (B, input_dim) floats -> MLP/linear; ``tokens``: (B, T) ids -> LSTM last state."""

    def __init__(self, config: QuestionConfig):
        super().__init__()
        self.config = config
        self.out_dim = config.out_dim
        if config.kind == "onehot":
            self.net = nn.Sequential(mlp(config.input_dim, config.hidden),
                                     nn.Linear(config.hidden[-1] if config.hidden
                                               else config.input_dim, config.out_dim))
        else:
            self.embedding = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=0)
            self.lstm = nn.LSTM(config.embed_dim, config.out_dim, batch_first=True)

    def forward(self, question: torch.Tensor) -> torch.Tensor:
        if self.config.kind == "onehot":
            return self.net(question.float())
        tokens = question.long()
        if self.config.reverse:
            tokens = reverse_tokens(tokens)
        lengths = (tokens != 0).sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(tokens), lengths,
                                                   batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return h[-1]


def image_encoder(config: ModelConfig) -> ConvEncoder:
    """The conv encoder a :class:`ModelConfig` describes."""
    return ConvEncoder(in_channels=config.in_channels, channels=config.conv_channels,
                       batch_norm=config.batch_norm)

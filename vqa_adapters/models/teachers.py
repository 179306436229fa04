"""The external-mask teacher: a network whose image is multiplied by the PSL (or oracle) mask.

The mask is the teacher's privileged information: ``image * mask`` with mask (B, 1, H, W)
broadcast over channels and bilinearly resized when its size differs from the image's. The student
is the same network without the wrapper. This module does not produce masks (see
:mod:`vqa_adapters.distill.oracle` and the PSL mask pipeline) and does not train anything.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from hlmrf.errors import DataError, SettingsError

__all__ = ["ExternalMaskTeacher", "apply_mask"]


def apply_mask(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``image * mask`` with mask (B, 1, H', W') or (B, H', W') resized to the image's (H, W)."""
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != image.shape[0]:
        raise DataError(f"mask must be (B, 1, H, W) matching the image batch, got "
                         f"{tuple(mask.shape)} for image {tuple(image.shape)}")
    mask = mask.to(image.dtype)
    if mask.shape[-2:] != image.shape[-2:]:
        mask = F.interpolate(mask, size=image.shape[-2:], mode="bilinear", align_corners=False)
    return image * mask


class ExternalMaskTeacher(nn.Module):
    """Wraps any pixel network ``net(image, question)``; ``forward(image, question, mask)``."""

    uses_mask = True

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.config = getattr(net, "config", None)
        self.input_key = getattr(net, "input_key", "image")
        if self.input_key != "image":
            raise SettingsError("the external-mask teacher needs a network that reads pixels")

    def forward(self, image: torch.Tensor, question: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        return self.net(apply_mask(image, mask), question)

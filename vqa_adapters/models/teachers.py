"""The external-mask teachers: a network whose input carries the PSL (or oracle) mask.

The mask is the teacher's privileged information. For pixels, ``image * mask`` with mask
(B, 1, H, W) broadcast over channels and bilinearly resized when its size differs from the image's.
For state descriptions, each object's vector gets its mask weight appended as one more feature
(appended rather than multiplied in: a zeroed object would look like padding, and a PSL choice that
misses an object would erase it, where an appended weight only adds information). The student
is the same network without the wrapper. This module does not produce masks (see
:mod:`vqa_adapters.distill.oracle` and the PSL mask pipeline) and does not train anything.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from hlmrf.errors import DataError, SettingsError

__all__ = ["ExternalMaskTeacher", "ObjectMaskTeacher", "apply_mask"]


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


class ObjectMaskTeacher(nn.Module):
    """State-description teacher: ``forward(objects, question, mask)`` with objects (B, N, D) and
    per-object mask weights (B, N) appended as feature D + 1 of an RN over ``object_dim + 1``."""

    uses_mask = True
    input_key = "objects"

    def __init__(self, config):
        super().__init__()
        from dataclasses import replace

        from vqa_adapters.models.rn import StateRelationNetwork

        self.config = config
        self.net = StateRelationNetwork(replace(config, object_dim=config.object_dim + 1))

    def forward(self, objects: torch.Tensor, question: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        if mask.dim() != 2 or mask.shape != objects.shape[:2]:
            raise DataError(f"object mask must be (B, N) matching objects {tuple(objects.shape)}, "
                            f"got {tuple(mask.shape)}")
        return self.net(torch.cat([objects.float(), mask.to(objects.dtype).unsqueeze(-1)], -1),
                        question)

"""Oracle-referred-object masks: a stand-in for PSL masks built from the generator's ground truth.

For each question, every object the question refers to (the X object, plus the nearest/farthest
object or the other same-shape objects, as the Sort-of-CLEVR generator records them) contributes a
Gaussian blob ``exp(-||p - c||^2 / (2 sigma^2))`` at its centre ``c``, with ``sigma`` about the
object's size; blobs are unioned by pointwise max, so the mask lies in [0, 1] and peaks at 1 on
each referred centre. These masks come from the answer-generating scene graph, not from PSL
inference: experiments that use them must say "oracle-referred-object masks". This module does not
read files and does not know about torch.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hlmrf.errors import SettingsError

__all__ = ["oracle_masks", "oracle_mask"]


def oracle_mask(centers: np.ndarray, referred: Sequence[int], *, image_size: int,
                sigma: float) -> np.ndarray:
    """One (H, W) float32 mask: the max over ``referred`` of Gaussian blobs at ``centers[k]``.

    Parameters
    ----------
    centers : (n_objects, 2) array of (x, y) pixel centres (x rightwards, y downwards).
    referred : indices into ``centers``; empty gives an all-zero mask.
    image_size : side H = W of the square mask.
    sigma : blob standard deviation in pixels (about the object size).
    """
    if sigma <= 0:
        raise SettingsError(f"sigma must be > 0, got {sigma}")
    centers = np.asarray(centers, dtype=np.float64)
    # Pixel (r, c) covers [c, c+1) x [r, r+1); its centre is (c + 0.5, r + 0.5).
    grid = np.arange(image_size, dtype=np.float64) + 0.5
    out = np.zeros((image_size, image_size), dtype=np.float64)
    for k in referred:
        x, y = centers[int(k)]
        blob = np.exp(-((grid[None, :] - x) ** 2 + (grid[:, None] - y) ** 2) / (2 * sigma * sigma))
        np.maximum(out, blob, out=out)
    return out.astype(np.float32)


def oracle_masks(centers: np.ndarray, referred: Sequence[Sequence[int]], *, image_size: int,
                 sigma: float) -> np.ndarray:
    """(Q, H, W) float32 masks for ``Q`` questions about one image (see :func:`oracle_mask`)."""
    if len(referred) == 0:
        return np.zeros((0, image_size, image_size), dtype=np.float32)
    return np.stack([oracle_mask(centers, r, image_size=image_size, sigma=sigma)
                     for r in referred])

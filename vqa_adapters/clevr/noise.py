"""A noisy perception of CLEVR scenes: what a detector would hand a reasoner instead of the truth.

:func:`perceive` maps a ground-truth :class:`~vqa_adapters.clevr.io.Scene` to what a perception
network might output: for every detected object and every attribute (size, color, material, shape)
a probability vector over the attribute's values (columns in ``sorted(ATTRIBUTE_VALUES[a])``, the
order :func:`~vqa_adapters.psl.facts.clevr_object_facts` reads), the *argmax scene* built from
their argmaxes, and which true object each detection is (``source``; -1 for a spurious one).

Semantics, for an error rate ``p`` (the same for every attribute):

- **Calibrated** (``calibrated=True``): the true value ``y`` is drawn from a classifier that
  outputs ``q ~ Dirichlet(alpha * 1 + e_y)``. With a uniform prior over values this is exactly
  the posterior of a ``Dirichlet(alpha)`` perception, so ``P(value v is true | q) = q_v``: the
  probability on the argmax *is* the chance that it is right, per object, and a wrong argmax tends
  to come with low confidence and the true value as runner-up, as a real network's would.
  ``alpha`` is solved per attribute (by bisection on a fixed Monte-Carlo sample) so that the
  argmax is wrong with probability ``p`` (:func:`dirichlet_alpha`); ``p = 0`` gives one-hot
  vectors.
- **Overconfident** (``calibrated=False``): the *same* argmaxes (the same random draws), but the
  argmax is reported with probability ``confidence`` (0.9) whatever ``p`` is, the rest shared
  among the other values in proportion to the calibrated vector's (uniformly when those are 0).
  The argmax scene is therefore identical in both modes; only the soft evidence differs.
- **Missed objects**: each true object is dropped independently with probability ``missed``.
- **Spurious objects**: each true object independently adds one detection with probability
  ``spurious`` (so ``spurious`` is the expected number of false detections per true object); its
  "true" values are uniform over each vocabulary and are then perceived like any other object's;
  its position is uniform over the image (depth within the scene's range).

Real objects keep their exact positions and spatial relations (this model is about attributes
and detection, not localisation); a spurious object's relations to the others are read from the
pixel centres (left/right: smaller/larger x; front/behind: larger/smaller y), which agrees with
CLEVR's own relations for 99% (left/right) and 97% (front/behind) of object pairs in the val
scenes. The perceived ``size`` also sets the blob radius of a mask, as it would for a detector.
This module is numpy only and pure: it neither reads files nor answers questions.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Mapping

import numpy as np

from .io import IMAGE_SIZE, Scene, SceneObject
from .vocabulary import ATTRIBUTE_VALUES, ATTRIBUTES, RELATIONS

__all__ = ["NoiseSettings", "NoisyScene", "VALUES", "dirichlet_alpha", "perceive", "perceive_all"]

#: Each attribute's values in column order of the probability arrays.
VALUES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {a: tuple(sorted(ATTRIBUTE_VALUES[a])) for a in ATTRIBUTES})


@dataclass(frozen=True)
class NoiseSettings:
    """The perception's error model (see the module docstring)."""

    p: float = 0.0
    """Probability that an attribute's argmax is wrong (per object and attribute)."""
    calibrated: bool = True
    """Calibrated probabilities, else overconfident ones (argmax at ``confidence``)."""
    confidence: float = 0.9
    """The argmax probability of the overconfident perception."""
    missed: float = 0.0
    """Probability that a true object is not detected."""
    spurious: float = 0.0
    """Expected false detections per true object."""

    def __post_init__(self) -> None:
        for name in ("p", "missed", "spurious", "confidence"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be a number in [0, 1], got {v!r}")
        worst = min(1.0 - 1.0 / len(VALUES[a]) for a in ATTRIBUTES)
        if self.p >= worst:
            raise ValueError(f"p = {self.p:g} is not below {worst:g}: a binary attribute's argmax would "
                             f"be no better than a coin; choose p < {worst:g}")
        if not self.confidence > 0.5:
            raise ValueError(f"confidence must exceed 0.5 to stay the argmax, got {self.confidence:g}")


@dataclass(frozen=True)
class NoisyScene:
    """One perceived scene.

    Attributes
    ----------
    scene : the argmax scene (objects re-indexed 0..n-1; spurious ones after the kept ones).
    probs : attribute -> ``(n, k)`` probabilities, columns in :data:`VALUES` order.
    source : ``(n,)`` the true object index of each detection, -1 for a spurious one.
    kept : ``(n_true,)`` whether each true object was detected.
    """

    scene: Scene
    probs: Mapping[str, np.ndarray]
    source: np.ndarray
    kept: np.ndarray

    @property
    def n_spurious(self) -> int:
        return int((self.source < 0).sum())


_MC = 40_000  # Monte-Carlo draws behind dirichlet_alpha (error of the achieved rate about 0.002)


@lru_cache(maxsize=256)
def dirichlet_alpha(p: float, k: int) -> float:
    """The ``alpha`` for which ``argmax Dirichlet(alpha * 1 + e_y)`` differs from ``y`` with
    probability ``p`` (``k`` values); 0 for ``p = 0``.

    Bisection in ``log alpha``; each step estimates the error rate from ``_MC`` draws of one fixed
    seed, so the answer is deterministic and within Monte-Carlo error (about 0.002) of ``p``.
    """
    if p <= 0.0:
        return 0.0
    if not p < 1.0 - 1.0 / k:
        raise ValueError(f"p = {p:g} is not below {1 - 1 / k:g} for {k} values")

    def error(alpha: float) -> float:
        rng = np.random.default_rng(12345)
        x0 = rng.standard_gamma(1.0 + alpha, _MC)
        rest = rng.standard_gamma(alpha, (_MC, k - 1))
        return float((rest.max(1) > x0).mean())

    lo, hi = -12.0, 6.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if error(float(np.exp(mid))) < p:
            lo = mid
        else:
            hi = mid
    return float(np.exp(0.5 * (lo + hi)))


def _attribute_probs(truth: np.ndarray, k: int, s: NoiseSettings, rng: np.random.Generator
                     ) -> np.ndarray:
    """``(n, k)`` perceived probabilities for true value columns ``truth`` (see module doc)."""
    n = len(truth)
    alpha = dirichlet_alpha(float(s.p), k)
    shape = np.full((n, k), alpha)
    shape[np.arange(n), truth] += 1.0
    # Draw every entry even when alpha = 0 so the stream of draws does not depend on p.
    g = rng.standard_gamma(shape) if n else np.zeros((0, k))
    q = g / g.sum(1, keepdims=True) if n else g
    if s.calibrated:
        return q
    top = q.argmax(1)
    rest = q.copy()
    rest[np.arange(n), top] = 0.0
    tot = rest.sum(1, keepdims=True)
    uniform = np.full((n, k), 1.0 / (k - 1))
    uniform[np.arange(n), top] = 0.0
    share = np.where(tot > 0, rest / np.where(tot > 0, tot, 1.0), uniform)
    out = share * (1.0 - s.confidence)
    out[np.arange(n), top] = s.confidence
    return out


def _relations(pix: np.ndarray, source: np.ndarray, scene: Scene) -> dict[str, tuple]:
    """Relations of the perceived objects: the true ones between real objects, pixel order for
    any pair with a spurious object."""
    n = len(source)
    x, y = pix[:, 0], pix[:, 1]
    by_pixels = {"left": x[None, :] < x[:, None], "right": x[None, :] > x[:, None],
                 "front": y[None, :] > y[:, None], "behind": y[None, :] < y[:, None]}
    out = {}
    for r in RELATIONS:
        m = by_pixels[r].copy()
        true = np.zeros((len(scene.objects),) * 2, bool)
        for i, js in enumerate(scene.relationships[r]):
            true[i, list(js)] = True
        real = source >= 0
        idx = np.flatnonzero(real)
        m[np.ix_(idx, idx)] = true[np.ix_(source[idx], source[idx])]
        np.fill_diagonal(m, False)
        out[r] = tuple(tuple(int(j) for j in np.flatnonzero(m[i])) for i in range(n))
    return out


def perceive(scene: Scene, settings: NoiseSettings, rng: np.random.Generator) -> NoisyScene:
    """A noisy perception of ``scene`` under ``settings``, drawing from ``rng``.

    The draws are made in a fixed order and number (detections, spurious objects, then every
    attribute's probabilities), so two settings that differ only in ``p`` or in calibration see
    the same missed and spurious objects, and calibrated and overconfident settings the same
    argmaxes.
    """
    objs = scene.objects
    n_true = len(objs)
    kept = rng.random(n_true) >= settings.missed
    n_new = int((rng.random(n_true) < settings.spurious).sum())
    # Spurious objects: uniform values, uniform image position, a depth in the scene's range.
    new_vals = {a: rng.integers(0, len(VALUES[a]), n_new) for a in ATTRIBUTES}
    W, H = IMAGE_SIZE
    depths = np.asarray([o.pixel_coords[2] for o in objs]) if n_true else np.asarray([10.0])
    new_pix = np.column_stack([rng.uniform(0.05 * W, 0.95 * W, n_new),
                               rng.uniform(0.2 * H, 0.9 * H, n_new),
                               rng.uniform(depths.min(), depths.max(), n_new)])
    new_3d = np.column_stack([rng.uniform(-3, 3, (n_new, 2)), np.zeros(n_new)])
    new_rot = rng.uniform(0, 360, n_new)

    source = np.r_[np.flatnonzero(kept), -np.ones(n_new, np.int64)].astype(np.int64)
    truth = {a: np.r_[np.asarray([VALUES[a].index(getattr(objs[i], a)) for i in np.flatnonzero(kept)],
                                 np.int64), new_vals[a]].astype(np.int64) for a in ATTRIBUTES}
    probs = {a: _attribute_probs(truth[a], len(VALUES[a]), settings, rng) for a in ATTRIBUTES}
    top = {a: probs[a].argmax(1) for a in ATTRIBUTES}

    new_objects, pix = [], []
    for i, src in enumerate(source):
        vals = {a: VALUES[a][top[a][i]] for a in ATTRIBUTES}
        if src >= 0:
            o = objs[src]
            geo = (o.pixel_coords, o.coords_3d, o.rotation)
        else:
            j = i - int(kept.sum())
            z = 0.7 if vals["size"] == "large" else 0.35
            geo = (tuple(map(float, new_pix[j])), (float(new_3d[j, 0]), float(new_3d[j, 1]), z),
                   float(new_rot[j]))
        new_objects.append(SceneObject(index=i, pixel_coords=geo[0], coords_3d=geo[1], rotation=geo[2],
                                       **vals))
        pix.append(geo[0][:2])
    pix_arr = np.asarray(pix, np.float64).reshape(len(source), 2)
    noisy = Scene(image_index=scene.image_index, image_filename=scene.image_filename,
                  objects=tuple(new_objects),
                  relationships=MappingProxyType(_relations(pix_arr, source, scene)), split=scene.split)
    return NoisyScene(noisy, MappingProxyType(probs), source, kept)


def perceive_all(scenes: Mapping[int, Scene], settings: NoiseSettings, seed: int
                 ) -> dict[int, NoisyScene]:
    """:func:`perceive` every scene, each from its own stream ``(seed, image_index)`` so a scene's
    perception does not depend on which other scenes are perceived."""
    return {i: perceive(s, settings, np.random.default_rng([seed, i])) for i, s in scenes.items()}

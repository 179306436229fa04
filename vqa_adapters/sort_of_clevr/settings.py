"""The settings of the Sort-of-CLEVR generator, validated before anything is drawn.

One frozen dataclass holds every knob, with its default and a one-line doc. Validation happens in
the constructor and includes an analytic feasibility check of the object placement, so impossible
settings fail at once with the reason and the fix instead of looping in the sampler. This module
draws nothing and touches no files.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from hlmrf.errors import SettingsError

from .vocab import COLORS

__all__ = ["SortOfClevrSettings", "SPLITS", "split_seed"]

#: Split names in the order they are generated; the position is part of each split's seed.
SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class SortOfClevrSettings:
    """Everything that determines a generated dataset (same settings, same bytes)."""

    #: Base seed; split ``s`` draws from ``PCG64(SeedSequence([seed, SPLITS.index(s)]))``.
    seed: int = 0
    #: Number of training images.
    train: int = 9800
    #: Number of validation images.
    val: int = 200
    #: Number of test images.
    test: int = 200
    #: Image side in pixels (images are square).
    size: int = 75
    #: Half the side of a square and the radius of a circle, in pixels; centres are >= 2x apart.
    object_size: int = 5
    #: Questions per image (non-relational first, then relational).
    questions_per_image: int = 10
    #: Fraction of each image's questions that are relational (rounded half up per image).
    relational_share: float = 0.5

    def __post_init__(self) -> None:
        for name in ("seed", "train", "val", "test", "size", "object_size", "questions_per_image"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SettingsError(f"{name} must be an integer, got {value!r}")
        for name in ("seed", "train", "val", "test", "questions_per_image"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.object_size < 1:
            raise SettingsError(f"object_size must be >= 1 pixel, got {self.object_size}")
        if self.size < 1:
            raise SettingsError(f"size must be >= 1 pixel, got {self.size}")
        share = self.relational_share
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
            raise SettingsError(f"relational_share must be a number in [0, 1], got {share!r}")
        _check_placement(self.size, self.object_size, len(COLORS))

    @property
    def n_relational(self) -> int:
        """Relational questions per image: ``floor(questions_per_image * relational_share + 0.5)``."""
        return int(math.floor(self.questions_per_image * self.relational_share + 0.5))

    def count(self, split: str) -> int:
        """Number of images in ``split``."""
        if split not in SPLITS:
            raise SettingsError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        return getattr(self, split)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "SortOfClevrSettings":
        """Build from a mapping; unknown keys are an error that lists them and the known ones."""
        from hlmrf.infra import settings_from_mapping

        return settings_from_mapping(cls, values, what="Sort-of-CLEVR setting")


def split_seed(seed: int, split: str) -> tuple[int, int]:
    """The entropy of ``split``'s generator: independent of the other splits' counts."""
    return (seed, SPLITS.index(split))


def _check_placement(size: int, object_size: int, n_objects: int) -> None:
    """Reject sizes under which ``n_objects`` cannot be placed, or not without risk of stalling.

    Centres are integers in ``[s, size - s]`` (``s = object_size``) at pairwise distance ``>= 2s``.
    A square grid of pitch ``2s`` fits ``(span // 2s + 1) ** 2`` centres; we accept only settings
    where that grid holds every object. This is sufficient, not necessary (a hexagonal packing can
    hold a few more), and is deliberately conservative: near the packing limit random placement
    almost always jams, so accepting those settings would only move the failure into the sampler.
    """
    s, d = object_size, 2 * object_size
    span = size - 2 * s
    k = math.ceil(math.sqrt(n_objects))
    if span < 0:
        raise SettingsError(
            f"a {size}x{size} image leaves no room for objects of size {s} (each spans {d} px); "
            f"use size >= {d} (and >= {2 * k * s} for {n_objects} objects) or a smaller object_size"
        )
    per_axis = span // d + 1
    if per_axis * per_axis < n_objects:
        raise SettingsError(
            f"{n_objects} objects of size {s} need centres at least {d} px apart inside "
            f"[{s}, {size - s}], but a {size}x{size} image only guarantees room for "
            f"{per_axis * per_axis} ({per_axis}x{per_axis} grid); use size >= {2 * k * s}"
            + (f" or object_size <= {size // (2 * k)}" if size >= 2 * k else "")
        )

"""Per-epoch schedules: the imitation weight ``pi`` and the learning-rate warm-up.

Epochs are counted from 1 (``t = 1`` is the first epoch). ``pi`` is either fixed or
``pi_t = min(pi, 1 - pi**t)``: at ``t = 1`` it is ``min(pi, 1 - pi)``, and it rises towards
``pi`` as ``pi**t`` vanishes, so early epochs lean on the ground truth while the teacher is
(in iterative distillation) still weak. The warm-up starts at ``start`` and doubles every ``every``
epochs up to ``max`` (the CLEVR RN recipe: 5e-6 doubling every 20 epochs up to 5e-4). Pure
functions of the epoch number; nothing here touches an optimizer's state beyond setting its lr.
"""
from __future__ import annotations

from dataclasses import dataclass

from hlmrf.errors import SettingsError

__all__ = ["PiSchedule", "LrWarmup", "PI_SCHEDULES"]

PI_SCHEDULES = ("fixed", "min")


@dataclass(frozen=True)
class PiSchedule:
    """``pi`` (fixed) or ``min(pi, 1 - pi**t)`` (``kind='min'``) for 1-based epoch ``t``."""

    pi: float = 0.5
    """The imitation weight (the paper's best: 0.575 sequential, 0.9 iterative)."""
    kind: str = "fixed"
    """``fixed`` or ``min``."""

    def __post_init__(self):
        if not 0.0 <= self.pi <= 1.0:
            raise SettingsError(f"pi must be in [0, 1], got {self.pi}")
        if self.kind not in PI_SCHEDULES:
            raise SettingsError(f"pi schedule must be one of {PI_SCHEDULES}, got {self.kind!r}")

    def __call__(self, epoch: int) -> float:
        if epoch < 1:
            raise SettingsError(f"epochs are 1-based, got {epoch}")
        if self.kind == "fixed":
            return self.pi
        return min(self.pi, 1.0 - self.pi ** epoch)


@dataclass(frozen=True)
class LrWarmup:
    """``lr_t = min(max, start * 2**((t - 1) // every))`` for 1-based epoch ``t``."""

    start: float = 5e-6
    """Learning rate of the first epoch."""
    max: float = 5e-4
    """Cap."""
    every: int = 20
    """Double after this many epochs."""

    def __post_init__(self):
        if not 0 < self.start <= self.max:
            raise SettingsError(f"warm-up needs 0 < start <= max, got {self.start}, {self.max}")
        if self.every < 1:
            raise SettingsError(f"warm-up every must be >= 1, got {self.every}")

    def __call__(self, epoch: int) -> float:
        if epoch < 1:
            raise SettingsError(f"epochs are 1-based, got {epoch}")
        return min(self.max, self.start * 2.0 ** ((epoch - 1) // self.every))

"""Validation accuracy per epoch for baseline, teacher and student, drawn with pillow alone.

A small hand-drawn line chart in the spirit of the seed paper's Figure 4: axes with ticks (epochs
on x, accuracy in % on y), one coloured polyline with point markers per series, a legend and a
title. matplotlib is deliberately not used (it is not a dependency). The output is a deterministic
PNG for the same inputs. This module draws; it computes no metrics.
"""
from __future__ import annotations

import math
import io
from pathlib import Path
from typing import Mapping, Sequence

from PIL import Image, ImageDraw, ImageFont

__all__ = ["plot_accuracy", "PALETTE"]

PALETTE = {"baseline": (31, 119, 180), "teacher": (214, 39, 40), "student": (44, 160, 44)}
_EXTRA = [(148, 103, 189), (255, 127, 14), (140, 86, 75), (23, 190, 207)]


def _nice_step(span: float, target: int = 5) -> float:
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def plot_accuracy(series: Mapping[str, Sequence[tuple[int, float]]], path: str | Path, *,
                  title: str = "Validation accuracy per epoch", size: tuple[int, int] = (640, 420)
                  ) -> Path:
    """Write :func:`accuracy_png` to ``path`` atomically."""
    from hlmrf.infra import atomic_write

    path = Path(path)
    atomic_write(path, accuracy_png(series, title=title, size=size))
    return path


def accuracy_png(series: Mapping[str, Sequence[tuple[int, float]]], *,
                 title: str = "Validation accuracy per epoch", size: tuple[int, int] = (640, 420)
                 ) -> bytes:
    """A PNG line chart of ``{name: [(epoch, accuracy in [0, 1]), ...]}``, as bytes."""
    w, h = size
    left, right, top, bottom = 60, 20, 36, 50
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    points = [(e, a) for s in series.values() for e, a in s if a == a]
    max_epoch = max([e for e, _ in points], default=1)
    lo = min([a for _, a in points], default=0.0) * 100
    hi = max([a for _, a in points], default=1.0) * 100
    step = _nice_step(max(hi - lo, 1.0))
    y0 = max(0.0, math.floor(lo / step) * step)
    y1 = min(100.0, math.ceil(hi / step) * step)
    if y1 <= y0:
        y1 = min(100.0, y0 + step)
        y0 = y1 - step
    x_min, x_max = 1, max(max_epoch, 2)

    def px(epoch: float, acc: float) -> tuple[float, float]:
        x = left + (epoch - x_min) / (x_max - x_min) * (w - left - right)
        y = h - bottom - (acc * 100 - y0) / (y1 - y0) * (h - top - bottom)
        return x, y

    # Axes, grid and ticks.
    d.line([(left, top), (left, h - bottom), (w - right, h - bottom)], fill="black", width=1)
    v = y0
    while v <= y1 + 1e-9:
        _, y = px(x_min, v / 100)
        d.line([(left + 1, y), (w - right, y)], fill=(225, 225, 225))
        d.line([(left - 4, y), (left, y)], fill="black")
        label = f"{v:g}"
        d.text((left - 8 - d.textlength(label, font=font), y - 6), label, fill="black", font=font)
        v += step
    xstep = max(1, int(_nice_step(x_max - x_min, 8)))
    for e in range(x_min, x_max + 1):
        if (e - x_min) % xstep and e != x_max:
            continue
        x, _ = px(e, y0 / 100)
        d.line([(x, h - bottom), (x, h - bottom + 4)], fill="black")
        label = str(e)
        d.text((x - d.textlength(label, font=font) / 2, h - bottom + 7), label, fill="black",
               font=font)
    d.text(((w - d.textlength("epoch", font=font)) / 2, h - 20), "epoch", fill="black", font=font)
    d.text((6, top - 22), "accuracy (%)", fill="black", font=font)
    d.text(((w - d.textlength(title, font=font)) / 2, 8), title, fill="black", font=font)

    # Series and legend.
    ly = top + 6
    for k, (name, pts) in enumerate(series.items()):
        color = PALETTE.get(name, _EXTRA[k % len(_EXTRA)])
        xy = [px(e, a) for e, a in pts if a == a]
        if len(xy) > 1:
            d.line(xy, fill=color, width=2)
        for x, y in xy:
            d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
        lx = w - right - 110
        d.line([(lx, ly + 6), (lx + 20, ly + 6)], fill=color, width=2)
        d.text((lx + 26, ly), name, fill="black", font=font)
        ly += 16
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()

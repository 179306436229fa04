"""The accuracy plot (matplotlib, Agg): a valid, deterministic PNG with one colour per series."""
from __future__ import annotations

import pytest

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from vqa_adapters.distill.plot import PALETTE, plot_accuracy  # noqa: E402

SERIES = {"baseline": [(1, 0.5), (2, 0.6), (3, 0.7)],
          "teacher": [(1, 0.7), (2, 0.85), (3, 0.95)],
          "student": [(1, 0.55), (2, 0.66), (3, float("nan"))]}


def test_plot_is_a_deterministic_png_with_each_series(tmp_path):
    a = plot_accuracy(SERIES, tmp_path / "a.png")
    b = plot_accuracy(SERIES, tmp_path / "b.png")
    assert a.read_bytes() == b.read_bytes()
    with Image.open(a) as opened:
        img = opened.convert("RGB")
    assert img.size == (640, 420)
    colors = {c for _, c in img.getcolors(maxcolors=1 << 20)}
    for name in SERIES:
        assert PALETTE[name] in colors


def test_plot_handles_a_single_epoch(tmp_path):
    p = plot_accuracy({"baseline": [(1, 0.4)]}, tmp_path / "one.png")
    with Image.open(p) as img:
        assert img.size == (640, 420)

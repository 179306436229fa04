"""The matplotlib accuracy plot: same bytes for the same data, a valid PNG, the figure restylable,
and a clear error without the ``plot`` extra."""
from __future__ import annotations

import math
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")

from vqa_adapters.distill.plot import PALETTE, accuracy_figure, accuracy_png  # noqa: E402

SERIES = {"baseline": [(1, 0.5), (2, 0.6), (3, 0.7)],
          "teacher": [(1, 0.7), (2, 0.85), (3, 0.95)],
          "student": [(1, 0.55), (2, 0.66), (3, float("nan"))]}


def test_the_same_data_gives_the_same_bytes():
    a = accuracy_png(SERIES)
    b = accuracy_png({k: list(v) for k, v in SERIES.items()})
    assert a == b
    assert a != accuracy_png({**SERIES, "baseline": [(1, 0.5), (2, 0.6), (3, 0.71)]})


def test_it_is_a_png_of_the_asked_size_without_software_or_date_metadata():
    from PIL import Image
    import io

    png = accuracy_png(SERIES, size=(500, 300))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(png)) as img:
        img.load()
        assert img.size == (500, 300)
        assert not {"Software", "Creation Time", "date:create"} & set(img.info)
        colors = {c for _, c in img.convert("RGB").getcolors(maxcolors=1 << 20)}
    for name in SERIES:
        assert PALETTE[name] in colors


def test_the_figure_holds_one_line_per_series_and_drops_nan_epochs():
    fig = accuracy_figure(SERIES, title="val accuracy")
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines) == list(SERIES)
    assert list(lines["student"].get_xdata()) == [1, 2]
    assert all(not math.isnan(y) for y in lines["student"].get_ydata())
    assert list(lines["teacher"].get_ydata()) == pytest.approx([70, 85, 95])
    assert ax.get_title() == "val accuracy" and ax.get_ylabel() == "accuracy (%)"
    assert "matplotlib.pyplot" not in sys.modules  # no global figure state touched


def test_without_matplotlib_the_error_names_the_plot_extra():
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from hlmrf.errors import MissingDependencyError\n"
            "from vqa_adapters.distill.plot import accuracy_png\n"
            "try:\n    accuracy_png({'baseline': [(1, 0.5)]})\n"
            "except MissingDependencyError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert 'pip install "hlmrf[plot]"' in out.stdout


def test_one_epoch_gets_whole_number_epoch_ticks():
    ax = accuracy_figure({"baseline": [(1, 0.4)]}).axes[0]
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert ticks == [1, 2]
    assert ax.get_ylim()[1] - ax.get_ylim()[0] >= 10

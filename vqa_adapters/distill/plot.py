"""Validation accuracy per epoch for baseline, teacher and student, drawn with matplotlib.

A line chart in the spirit of the seed paper's Figure 4: epochs on x, accuracy in % on y, one
coloured line with point markers per series, a legend and a title. :func:`accuracy_figure` returns
the matplotlib ``Figure`` (to restyle or save in another format); :func:`accuracy_png` renders it
to PNG bytes that are the same for the same inputs, so a training run's files can be compared and
published as one snapshot. This module draws; it computes no metrics.

matplotlib is an optional dependency (the ``plot`` extra), imported only when a figure is drawn;
the figure is built on the Agg canvas directly, so pyplot's global state and the user's backend are
never touched.
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_accuracy", "accuracy_png", "accuracy_figure", "PALETTE"]

#: RGB colour of each named series (matplotlib's tab10 blue, red, green); other names take
#: :data:`_EXTRA` in turn.
PALETTE = {"baseline": (31, 119, 180), "teacher": (214, 39, 40), "student": (44, 160, 44)}
_EXTRA = [(148, 103, 189), (255, 127, 14), (140, 86, 75), (23, 190, 207)]

#: Pixels per inch of the rendered PNG: ``size`` is in pixels, the figure in inches.
DPI = 100

# Settings that would otherwise come from the user's matplotlibrc and change the bytes. The
# svg.hashsalt fixes the ids of an SVG saved from the returned figure.
_RC = {"svg.hashsalt": "hlmrf", "font.family": "DejaVu Sans", "font.size": 9,
       "axes.grid": True, "grid.color": "#e1e1e1", "grid.linewidth": 0.8}


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
    """A PNG line chart of ``{name: [(epoch, accuracy in [0, 1]), ...]}``, as bytes.

    ``size`` is in pixels. The PNG carries no software or date metadata, so the same inputs (and
    the same matplotlib) give the same bytes.
    """
    fig = accuracy_figure(series, title=title, size=size)  # raises without matplotlib
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def accuracy_figure(series: Mapping[str, Sequence[tuple[int, float]]], *,
                    title: str = "Validation accuracy per epoch", size: tuple[int, int] = (640, 420)
                    ) -> "Figure":
    """The accuracy chart as a matplotlib ``Figure`` on an Agg canvas (not registered with pyplot).

    NaN accuracies (an epoch not evaluated) are left out and the line joins the points around them.

    Raises
    ------
    MissingDependencyError : matplotlib is not installed (``pip install "hlmrf[plot]"``).
    """
    from hlmrf.errors import require

    mpl = require("matplotlib", "plot")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    with mpl.rc_context(_RC):
        fig = Figure(figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for k, (name, pts) in enumerate(series.items()):
            rgb = PALETTE.get(name, _EXTRA[k % len(_EXTRA)])
            kept = [(e, a * 100) for e, a in pts if not math.isnan(a)]
            ax.plot([e for e, _ in kept], [a for _, a in kept], color=[c / 255 for c in rgb],
                    linewidth=2, marker="o", markersize=5, label=name)
        # Epochs start at 1; a run of one epoch still gets an axis from 1 to 2 and whole-number
        # ticks, and a flat curve a y range of 10 points (as the pillow version drew them).
        epochs = [e for pts in series.values() for e, _ in pts] or [1]
        x_max = max(max(epochs), 2)
        pad = 0.04 * (x_max - 1)
        ax.set_xlim(1 - pad, x_max + pad)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ys = [a * 100 for pts in series.values() for _, a in pts if not math.isnan(a)]
        if ys and max(ys) - min(ys) < 1.0:
            mid = (max(ys) + min(ys)) / 2
            lo = min(max(mid - 5.0, 0.0), 90.0)
            ax.set_ylim(lo - 0.5, lo + 10.5)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(title)
        if series:
            ax.legend(loc="lower right", frameon=False)
        fig.tight_layout()
    return fig

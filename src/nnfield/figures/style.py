"""One house style for every figure, and reproducible saving (no timestamps in PDF/PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import Formatter

from nnfield.engine.atomic import atomic_path, describe_write_failure
from nnfield.engine.store import DataFileError

RC = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 7,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.3,
    "errorbar.capsize": 2,
    "svg.hashsalt": "nnfield",
}
COLORS = {"4": "#1f77b4", "6": "#d62728", "floor": "0.45", "exact": "black"}


def apply() -> None:
    plt.rcParams.update(RC)


TICK_LABEL_GAP_PX = 2.0
"""Least gap (pixels at the figure's dpi) between neighbouring tick labels of one axis."""


class _Blanked(Formatter):
    """``inner`` with the labels at ``blank`` (tick locations) left empty."""

    def __init__(self, inner: Formatter, blank) -> None:
        self.inner = inner
        self.blank = np.asarray(sorted(blank), dtype=float)

    def set_axis(self, axis) -> None:
        super().set_axis(axis)
        self.inner.set_axis(axis)

    def set_locs(self, locs) -> None:
        super().set_locs(locs)
        self.inner.set_locs(locs)

    def __call__(self, x, pos=None) -> str:
        if np.isclose(x, self.blank, rtol=1e-9, atol=0.0).any():
            return ""
        return self.inner(x, pos)

    def get_offset(self) -> str:
        return self.inner.get_offset()

    def format_data(self, value) -> str:
        return self.inner.format_data(value)

    def format_data_short(self, value) -> str:
        return self.inner.format_data_short(value)


def _shown_labels(axis, ticks, renderer):
    """(location, extents) of the tick labels of ``ticks`` that are drawn: inside the view
    interval, visible, not empty."""
    low, high = sorted(axis.get_view_interval())
    out = []
    for tick in ticks:
        loc = tick.get_loc()
        if loc is None or not (low <= loc <= high or np.isclose(loc, [low, high]).any()):
            continue
        boxes = [
            label.get_window_extent(renderer)
            for label in (tick.label1, tick.label2)
            if label.get_visible() and label.get_text()
        ]
        if boxes:
            out.append((loc, boxes))
    return out


def _untangle(axis, renderer, gap: float) -> None:
    """Blank every tick label that comes closer than ``gap`` pixels to one kept before it:
    major labels first, then minor ones, each from the low end of the axis."""
    kept, blank = [], {"major": set(), "minor": set()}
    for which, ticks in (("major", axis.get_major_ticks()), ("minor", axis.get_minor_ticks())):
        for loc, boxes in sorted(_shown_labels(axis, ticks, renderer), key=lambda t: t[0]):
            grown = [box.padded(gap / 2) for box in boxes]
            if any(a.overlaps(b) for a in grown for b in kept):
                blank[which].add(loc)
            else:
                kept += grown
    if blank["major"]:
        axis.set_major_formatter(_Blanked(axis.get_major_formatter(), blank["major"]))
    if blank["minor"]:
        axis.set_minor_formatter(_Blanked(axis.get_minor_formatter(), blank["minor"]))


def layout(fig, rect=None, gap: float = TICK_LABEL_GAP_PX) -> None:
    """``fig.tight_layout(rect=rect)``, then leave empty each tick label that would touch a
    neighbour on its axis (matplotlib labels ticks without looking; on a log axis spanning
    about a decade its minor labels, "3 x 10^0" next to "4 x 10^0", collide).  Which labels
    stay is decided at the figure's dpi and holds for every saved format: tick locations do
    not change with the dpi, and text and spacing scale together."""
    from nnfield.figures.textcheck import all_axes

    fig.tight_layout(rect=rect)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in all_axes(fig):
        for axis in (ax.xaxis, ax.yaxis):
            if ax.get_visible() and axis.get_visible():
                _untangle(axis, renderer, gap)


def save(fig, paths, subject: str = "", before_rename=None) -> None:
    """Save ``fig`` to each path (format from the suffix) atomically, without timestamps;
    ``subject`` goes into the metadata (PDF Subject, PNG Description); ``before_rename`` is
    a last check (nnfield.engine.atomic)."""
    for path in map(Path, paths):
        fmt = path.suffix.lstrip(".")
        pdf = {"CreationDate": None, "ModDate": None, "Producer": "nnfield", "Subject": subject}
        metadata = {"pdf": pdf, "png": {"Software": "nnfield", "Description": subject}}.get(fmt, {})
        try:
            with atomic_path(path, before_rename=before_rename) as tmp:
                fig.savefig(tmp, format=fmt, metadata=metadata)
        except OSError as err:
            raise DataFileError(describe_write_failure(path, err)) from err
    plt.close(fig)

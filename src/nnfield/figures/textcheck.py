"""Text layout check for figures: texts that overlap, leave the canvas, or print a NaN.

:func:`problems` draws a figure on its (Agg) canvas, records every text matplotlib actually
draws (titles, axis labels, tick labels inside the view, offset texts, legend entries and
titles, annotations, the suptitle) with its extent in display pixels, and reports

* two texts whose extents overlap (tick labels of one axis colliding with each other too),
* a text that leaves the figure canvas, in part or wholly,
* a text that prints a non-number: ``nan`` or ``inf`` as a word, any case,
* a legend box without any entry.

Each problem names the figure, the panel (its title, else its place in the grid) and the
texts.  Extents are the ones matplotlib reports (``Text.get_window_extent``): the ink box of
the string with its font's ascent and descent, which is what a reader sees collide.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from itertools import combinations

import matplotlib.text as mtext
from matplotlib.axes import Axes
from matplotlib.transforms import Bbox

NOT_A_NUMBER = re.compile(r"(?<![\w.])[-+]?(nan|inf)(?![\w])", re.IGNORECASE)
"""``nan``/``inf`` as a word: a float formatted without a check (not "infinite", "nanometre")."""

TOLERANCE_PX = 0.5
"""Overlaps and overhangs up to this many pixels (at the figure's dpi) are rounding, not
defects."""


@contextmanager
def _recording(drawn: list):
    """Record ``(text, extent)`` for every Text drawn with a non-empty string while active."""
    original = mtext.Text.draw

    def draw(self, renderer):
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append((self, self.get_window_extent(renderer)))

    mtext.Text.draw = draw
    try:
        yield
    finally:
        mtext.Text.draw = original


def all_axes(fig) -> list[Axes]:
    """The figure's axes and, after each, its insets (which ``fig.get_axes`` leaves out)."""
    out: list[Axes] = []

    def add(ax):
        out.append(ax)
        for child in ax.child_axes:
            add(child)

    for ax in fig.get_axes():
        add(ax)
    return out


def _roles(fig) -> dict[int, tuple[str, Axes | None]]:
    """What each known text is, by id: its role ('title', 'x tick label', 'legend entry', ...)
    and the axes it belongs to (None: the figure's own)."""
    roles: dict[int, tuple[str, Axes | None]] = {}
    for name in ("_suptitle", "_supxlabel", "_supylabel"):
        text = getattr(fig, name, None)
        if text is not None:
            roles[id(text)] = (name.lstrip("_").replace("sup", "super "), None)
    for legend in fig.legends:
        for text in [*legend.get_texts(), legend.get_title()]:
            roles[id(text)] = ("legend entry", None)
    for ax in all_axes(fig):
        for text in (ax.title, getattr(ax, "_left_title", None), getattr(ax, "_right_title", None)):
            if text is not None:
                roles[id(text)] = ("title", ax)
        for letter, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            roles[id(axis.label)] = (f"{letter} label", ax)
            roles[id(axis.offsetText)] = (f"{letter} offset text", ax)
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                roles[id(tick.label1)] = roles[id(tick.label2)] = (f"{letter} tick label", ax)
        legend = ax.get_legend()
        if legend is not None:
            for text in legend.get_texts():
                roles[id(text)] = ("legend entry", ax)
            roles[id(legend.get_title())] = ("legend title", ax)
    return roles


def _grid_place(ax: Axes, fig) -> str:
    """'row 2, column 3' in the grid of subplots, with the title of that column's top panel."""
    spec = ax.get_subplotspec()
    if spec is None:
        return "axes"
    rows, cols = spec.rowspan, spec.colspan
    row = f"{rows.start + 1}" if len(rows) == 1 else f"{rows.start + 1}-{rows.stop}"
    col = f"{cols.start + 1}" if len(cols) == 1 else f"{cols.start + 1}-{cols.stop}"
    place = f"row {row}, column {col}"
    for other in fig.get_axes():
        other_spec = other.get_subplotspec()
        if other.get_title() and other_spec is not None and other_spec.colspan == cols:
            return f"{place} (column of '{other.get_title()}')"
    return place


def _panel(ax: Axes | None, fig) -> str:
    """A name for the panel ``ax`` belongs to: its title, else its place in the grid; an inset
    or a twin (twinx, twiny) is named after its host; 'figure' for figure-level texts."""
    if ax is None:
        return "figure"
    host = next((o for o in all_axes(fig) if ax in o.child_axes), None)
    if host is not None:
        return f"inset of {_panel(host, fig)}"
    if ax.get_title():
        return f"'{ax.get_title()}'"
    siblings = ax.get_shared_x_axes().get_siblings(ax) + ax.get_shared_y_axes().get_siblings(ax)
    box = ax.get_position().bounds
    for other in fig.get_axes():  # the first axes in that box is the host of its twins
        if other is ax:
            break
        if other in siblings and other.get_position().bounds == box:
            return f"twin of {_panel(other, fig)}"
    return _grid_place(ax, fig)


def _describe(text, roles: dict, fig) -> str:
    kind = "annotation" if isinstance(text, mtext.Annotation) else "text"
    role, ax = roles.get(id(text), (kind, text.axes))
    content = re.sub(r"\\mathdefault\{(.*)\}", r"\1", text.get_text()).replace("\n", " / ")
    if len(content) > 70:
        content = content[:67] + "..."
    return f"panel {_panel(ax, fig)}: {role} '{content}'"


def _overlap(a: Bbox, b: Bbox, tol: float) -> bool:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return width > tol and height > tol


def drawn_texts(fig) -> list[tuple[mtext.Text, Bbox]]:
    """Draw ``fig`` on its canvas; every non-empty text drawn, with its extent in pixels."""
    drawn: list = []
    with _recording(drawn):
        fig.canvas.draw()
    seen, unique = set(), []
    for text, box in drawn:
        if id(text) not in seen:
            seen.add(id(text))
            unique.append((text, box))
    return unique


def problems(fig, name: str = "figure", tolerance: float = TOLERANCE_PX) -> list[str]:
    """Every text-layout problem of ``fig`` (an empty list if none), one sentence each."""
    texts = drawn_texts(fig)
    roles = _roles(fig)
    canvas = fig.bbox
    out = []
    legends = [(None, legend) for legend in fig.legends]
    legends += [(ax, ax.get_legend()) for ax in all_axes(fig) if ax.get_visible()]
    for ax, legend in legends:
        if legend is not None and legend.get_visible():
            if not any(t.get_text().strip() for t in legend.get_texts()):
                out.append(f"{name}: panel {_panel(ax, fig)}: a legend box without any entry")
    for text, _box in texts:
        if NOT_A_NUMBER.search(text.get_text()):
            out.append(f"{name}: {_describe(text, roles, fig)} prints a non-number")
    for text, box in texts:
        over = {
            "left": canvas.x0 - box.x0,
            "right": box.x1 - canvas.x1,
            "bottom": canvas.y0 - box.y0,
            "top": box.y1 - canvas.y1,
        }
        sides = [f"{side} by {px:.0f} px" for side, px in over.items() if px > tolerance]
        if sides:
            out.append(
                f"{name}: {_describe(text, roles, fig)} leaves the canvas ({', '.join(sides)})"
            )
    for (a, box_a), (b, box_b) in combinations(texts, 2):
        if _overlap(box_a, box_b, tolerance):
            out.append(f"{name}: {_describe(a, roles, fig)} overlaps {_describe(b, roles, fig)}")
    return out

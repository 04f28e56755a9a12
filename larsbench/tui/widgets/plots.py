"""Plotext plots that redraw only when their data changed (plotext builds are not cheap)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from textual_plotext import PlotextPlot

from larsbench.live.series import Curve

# Line colours by series; rank lines after the global one.
COLORS = ("cyan", "orange", "green", "magenta", "blue", "red", "yellow", "white")


@dataclass(frozen=True)
class Line:
    """One series of a plot."""

    label: str
    curve: Curve
    color: str = "cyan"


class _RedrawOnChange(PlotextPlot):
    """A plotext plot that builds a figure only when what it shows changed."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._key: tuple[object, ...] | None = None

    def _begin(self, key: tuple[object, ...]) -> bool:
        """False when `key` is drawn already; else clear the figure for a new drawing."""
        if key == self._key:
            return False
        self._key = key
        self.plt.clear_data()
        self.plt.clear_figure()
        return True


class CurvePlot(_RedrawOnChange):
    """Lines over a shared x axis; `show()` ignores calls that would draw the same thing."""

    def __init__(self, title: str = "", xlabel: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._title = title
        self._xlabel = xlabel
        self._last: tuple[tuple[Line, ...], str | None, bool, str, bool, bool] | None = None

    def on_resize(self) -> None:
        # The thinning depends on the width: what was drawn before the first layout (or at
        # another size) is drawn again at the size the plot really has.
        if self._last is not None:
            self.show(*self._last)

    def show(
        self,
        lines: Sequence[Line],
        title: str | None = None,
        ylog: bool = False,
        empty: str = "no data yet",
        from_zero: bool = False,
        legend: bool = False,
    ) -> None:
        """Draw the lines; `from_zero` starts the y axis at 0 and leaves the top quarter free
        for the legend (throughput: the scale of a drop matters more than its detail); a
        legend shows when there are several lines, or always with `legend`."""
        self._last = (tuple(lines), title, ylog, empty, from_zero, legend)
        # Braille plots hold two points per cell: more points only cost plotext time.
        limit = max(32, 2 * (self.size.width or 80))
        key = (
            limit,
            title,
            ylog,
            from_zero,
            legend,
            tuple((ln.label, ln.color, ln.curve.version, len(ln.curve.xs)) for ln in lines),
            tuple(id(ln.curve) for ln in lines),
        )
        if not self._begin(key):
            return
        plt = self.plt
        plt.title(title if title is not None else self._title)
        if self._xlabel:
            plt.xlabel(self._xlabel)
        drawn = False
        top = 0.0
        for ln in lines:
            xs, ys = thin(ln.curve.xs, limit), thin(ln.curve.ys, limit)
            if ylog:
                pairs = [(x, math.log10(y)) for x, y in zip(xs, ys, strict=True) if y > 0]
                xs, ys = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
            if not xs:
                continue
            top = max(top, *ys)
            label = ln.label if legend or len(lines) > 1 else None
            if len(xs) == 1:
                plt.scatter(list(xs), list(ys), color=ln.color, label=label, marker="dot")
            else:
                plt.plot(list(xs), list(ys), color=ln.color, label=label, marker="braille")
            drawn = True
        if not drawn:
            plt.title(empty)
        elif from_zero and top > 0:
            plt.ylim(0, top * (1.35 if len(lines) > 1 else 1.05))
        self.refresh()


def thin(values: Sequence[float], limit: int) -> list[float]:
    """At most `limit` values: means of equal consecutive buckets (the last value kept)."""
    n = len(values)
    if n <= limit:
        return list(values)
    out = []
    for i in range(limit):
        lo, hi = i * n // limit, (i + 1) * n // limit
        chunk = values[lo:hi]
        out.append(sum(chunk) / len(chunk))
    out[-1] = values[-1]
    return out


@dataclass(frozen=True)
class Point:
    """One run in the scatter: speed, accuracy, label, on the frontier or not."""

    label: str
    x: float
    y: float
    frontier: bool
    marker: str = "o"


def place_labels(
    points: Sequence[Point],
    cols: int,
    rows: int,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
) -> list[int]:
    """Per point, where its label goes: 1 right of the marker, -1 left of it, 0 nowhere.

    On a canvas of `cols` x `rows` cells, a label never covers another point's marker (a
    neighbouring cell counts, as the canvas size is an estimate) nor a label already placed;
    frontier points are labelled first. A point left without a label is still in the table.
    """

    def cell(p: Point) -> tuple[int, int]:
        fx = (p.x - xlim[0]) / ((xlim[1] - xlim[0]) or 1.0)
        fy = (p.y - ylim[0]) / ((ylim[1] - ylim[0]) or 1.0)
        return round(fy * (rows - 1)), round(fx * (cols - 1))

    cells = [cell(p) for p in points]
    taken = {(r, c + d) for r, c in cells for d in (-1, 0, 1)}
    sides = [0] * len(points)
    order = sorted(range(len(points)), key=lambda i: (not points[i].frontier, -points[i].y))
    for i in order:
        r, c = cells[i]
        own = {(r, c + d) for d in (-1, 0, 1)}
        n = len(points[i].label)
        for side in (1, -1):
            span = {(r, c + side * (1 + k)) for k in range(n)}
            inside = all(0 <= col < cols for _, col in span)
            if inside and not (span & (taken - own)):
                sides[i] = side
                taken |= span
                break
    return sides


class ScatterPlot(_RedrawOnChange):
    """Top-1 against img/s, one labelled point per run, the frontier as a line; for a
    throughput sweep (no accuracy), one bar of img/s per run (`show_speeds`)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._last: tuple[Sequence[Point], str] | None = None

    def on_resize(self) -> None:
        # Where labels fit depends on the size: draw again at the size the plot really has.
        if self._last is not None:
            self.show(*self._last)

    def show_speeds(self, speeds: Sequence[tuple[str, float]], title: str) -> None:
        """One horizontal bar of img/s per (run id, img/s), in the order given."""
        self._last = None  # bars do not depend on the size the way labels do
        if not self._begin(("speeds", title, tuple(speeds))):
            return
        plt = self.plt
        plt.title(title if speeds else f"{title}: no measured runs yet")
        if speeds:
            # plotext draws the first bar at the bottom: reversed, the first run is on top.
            plt.bar(
                [run for run, _ in reversed(speeds)],
                [ips for _, ips in reversed(speeds)],
                orientation="horizontal",
                width=0.4,
            )
            plt.xlabel("img/s")
        self.refresh()

    def show(self, points: Sequence[Point], title: str) -> None:
        self._last = (points, title)
        width, height = self.size.width or 80, self.size.height or 24
        if not self._begin((title, tuple(points), width, height)):
            return
        plt = self.plt
        plt.title(title)
        plt.xlabel("img/s")
        if not points:
            plt.title(f"{title}: no measured runs yet")
            self.refresh()
            return
        xs = [p.x for p in points]
        ys = [p.y for p in points]
        dx = (max(xs) - min(xs)) or max(xs) * 0.1 or 1.0
        dy = (max(ys) - min(ys)) or 1.0
        xlim = (min(xs) - 0.08 * dx, max(xs) + 0.5 * dx)  # room for the labels
        ylim = (min(ys) - 0.12 * dy, max(ys) + 0.12 * dy)
        front = sorted((p for p in points if p.frontier), key=lambda p: p.x)
        if len(front) > 1:
            plt.plot([p.x for p in front], [p.y for p in front], color="orange")
        # The canvas is the widget less the y tick labels, the frame, title, x ticks and label.
        cols = max(width - max(len(f"{v:.1f}") for v in ylim) - 3, 10)
        rows = max(height - 5, 3)
        step = (xlim[1] - xlim[0]) / (cols - 1)
        for p, side in zip(points, place_labels(points, cols, rows, xlim, ylim), strict=True):
            if side:
                align = "left" if side > 0 else "right"
                plt.text(p.label, x=p.x + side * step, y=p.y, color="white", alignment=align)
        for marker, char, color in (("o", "●", "cyan"), ("^", "▲", "magenta"), ("x", "×", "red")):
            group = [p for p in points if p.marker == marker]
            if group:
                plt.scatter([p.x for p in group], [p.y for p in group], color=color, marker=char)
        plt.xlim(*xlim)
        plt.ylim(*ylim)
        self.refresh()

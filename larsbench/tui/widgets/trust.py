"""LARC trust ratios: a layer x time heatmap of the applied factor (log) and a clipping table."""

from __future__ import annotations

import math

from rich.style import Style
from rich.text import Text
from textual.widget import Widget
from textual.widgets import DataTable

from larsbench.format import NA, finite, pct
from larsbench.live.trust_history import TrustView

# Low factor (LARC shrinks the step a lot) -> high factor (1: the plain SGD step).
PALETTE = (
    (48, 18, 59),
    (70, 107, 227),
    (40, 187, 236),
    (50, 241, 152),
    (164, 252, 60),
    (237, 208, 58),
    (251, 128, 34),
    (200, 40, 3),
)
SHADES = " ░▒▓█"
LOG_FLOOR = -4.0  # factors below 1e-4 share the darkest colour


def color_at(frac: float) -> tuple[int, int, int]:
    """Interpolated palette colour for 0..1."""
    frac = min(1.0, max(0.0, frac))
    pos = frac * (len(PALETTE) - 1)
    i = min(int(pos), len(PALETTE) - 2)
    f = pos - i
    a, b = PALETTE[i], PALETTE[i + 1]
    return tuple(round(a[k] + (b[k] - a[k]) * f) for k in range(3))  # type: ignore[return-value]


LEVELS = 32  # colour steps: a Style per step, built once
_STYLES = [Style(color=f"rgb{color_at(k / (LEVELS - 1))}") for k in range(LEVELS)]
_SHADE_AT = [
    SHADES[min(len(SHADES) - 1, 1 + int(k / (LEVELS - 1) * (len(SHADES) - 1)))]
    for k in range(LEVELS)
]


def _rows_to_show(n_layers: int, rows: int) -> list[int]:
    """All layers when they fit, else an even sample over depth (first and last kept)."""
    if n_layers <= rows:
        return list(range(n_layers))
    if rows <= 1:
        return [0]
    return sorted({round(i * (n_layers - 1) / (rows - 1)) for i in range(rows)})


def _resample(values: list[float], cells: int) -> list[float]:
    """Columns to `cells`: means of log values when shrinking, repeats when stretching."""
    n = len(values)
    if n == 0 or cells <= 0:
        return []
    out = []
    for c in range(cells):
        lo = c * n // cells
        hi = max(lo + 1, (c + 1) * n // cells)
        chunk = [v for v in values[lo:hi] if v == v]
        out.append(sum(chunk) / len(chunk) if chunk else math.nan)
    return out


def render_heatmap(view: TrustView | None, width: int, height: int) -> Text:
    """The heatmap as text: a name column, coloured cells over time, last factor and clip %."""
    if view is None or not view.layers:
        return Text("no trust-ratio snapshots yet (optimizer.stats_every)", style="dim")
    rows = max(1, height - 1)
    shown = _rows_to_show(len(view.layers), rows)
    name_w = min(24, max(len(view.layers[i]) for i in shown))
    tail_w = 12
    cells = max(4, width - name_w - tail_w - 2)
    known = [v for col in view.log_factors for v in col if v == v]
    hi = max(0.0, max(known)) if known else 0.0
    lo = max(LOG_FLOOR, min(known)) if known else -1.0
    if hi - lo < 1e-9:
        lo = hi - 1.0
    out = []
    for i in shown:
        stat = view.stats[i]
        line = Text(no_wrap=True, overflow="crop")
        name = view.layers[i]
        if len(name) > name_w:
            name = "…" + name[-(name_w - 1) :]
        line.append(f"{name:<{name_w}} ")
        series = [col[i] if i < len(col) else math.nan for col in view.log_factors]
        run_level, run_len = -1, 0  # runs of one colour become one span
        for v in _resample(series, cells):
            level = -1 if v != v else round((max(lo, v) - lo) / (hi - lo) * (LEVELS - 1))
            if level != run_level and run_len:
                _append_run(line, run_level, run_len)
                run_len = 0
            run_level = level
            run_len += 1
        if run_len:
            _append_run(line, run_level, run_len)
        f = stat.last_factor
        clip = stat.clipped_share
        line.append(f" {_factor(f):>5}")
        line.append(f" {pct(clip * 100 if finite(clip) else clip):>5}", style="dim")
        out.append(line)
    legend = Text(no_wrap=True, overflow="crop", style="dim")
    first = view.steps[0] if view.steps else 0
    last = view.steps[-1] if view.steps else 0
    shown_text = (
        f"{len(shown)} of {len(view.layers)} layers" if len(shown) < len(view.layers) else ""
    )
    scale = Text(no_wrap=True, overflow="crop")
    scale.append(f"step {first:.0f} → {last:.0f}   factor {10**lo:.2g} ")
    for k in range(0, LEVELS, LEVELS // 8):
        scale.append("█", style=_STYLES[k])
    scale.append(f" {10**hi:.2g} (log)  last clip%")
    # Under the cells when it fits there; else from the left edge (a narrow panel).
    fits = name_w + 1 + scale.cell_len <= width
    legend.append(f"{shown_text:<{name_w}} " if fits else f"{shown_text} " if shown_text else "")
    legend.append_text(scale)
    out.append(legend)
    return Text("\n", no_wrap=True, overflow="crop").join(out)


def _factor(f: float) -> str:
    """A factor in at most 5 characters: 1, 0.41, 0.011, 7e-03."""
    if not finite(f):
        return NA
    return f"{f:.0e}" if 0 < f < 0.01 else f"{f:.2g}"


def _append_run(line: Text, level: int, n: int) -> None:
    if level < 0:
        line.append(" " * n)
    else:
        line.append(_SHADE_AT[level] * n, style=_STYLES[level])


class TrustHeatmap(Widget):
    """Renders the latest TrustView to fit the widget's size."""

    # Lines are fitted to the width; one that is not (the legend) is cut, never wrapped.
    DEFAULT_CSS = "TrustHeatmap { height: 1fr; text-wrap: nowrap; text-overflow: clip; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._view: TrustView | None = None

    def show(self, view: TrustView | None) -> None:
        if view is self._view:
            return
        self._view = view
        self.refresh()

    def render(self) -> Text:
        size = self.content_region.size
        return render_heatmap(self._view, size.width, size.height)


TABLE_COLUMNS = ("layer", "clipped", "factor", "min factor", "local lr", "|w|", "|g|")


class TrustTable(DataTable):
    """Layers sorted by how often clipping bites, then by the smallest factor."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._version: tuple[object, ...] | None = None

    def on_mount(self) -> None:
        self.add_columns(*TABLE_COLUMNS)

    def show(self, view: TrustView | None) -> None:
        key = (id(view), view.version if view else None)
        if key == self._version:
            return
        self._version = key
        self.clear()
        if view is None:
            return
        stats = sorted(
            view.stats,
            key=lambda s: (
                -(s.clipped_share if finite(s.clipped_share) else -1),
                s.min_factor if finite(s.min_factor) else math.inf,
            ),
        )
        for s in stats:
            self.add_row(
                s.name,
                Text(pct(s.clipped_share, 0, fraction=True), justify="right"),
                Text(_g(s.last_factor), justify="right"),
                Text(_g(s.min_factor), justify="right"),
                Text(_g(s.local_lr), justify="right"),
                Text(_g(s.weight_norm), justify="right"),
                Text(_g(s.grad_norm), justify="right"),
            )


def _g(v: float) -> str:
    return f"{v:.3g}" if finite(v) else NA

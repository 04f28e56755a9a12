"""The results screen's comparison chart: the selected runs' curves, overlaid (tui/compare.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.containers import Container
from textual.message import Message

from larsbench.live.sweepview import SweepView
from larsbench.tui.compare import (
    METRICS,
    NO_GROUP,
    SMOOTHING,
    CompareSet,
    CurveLoader,
    color_index,
    key_label,
    overlay,
    swept_keys,
)
from larsbench.tui.widgets.plots import COLORS, CurvePlot, Line

RELOAD_INTERVAL = 2.0  # seconds between reloads of a running selected run's curves


def compare_title(metric: str, runs: int, smoothing: float, ylog: bool, group_key: str) -> str:
    """The chart's border title: what it shows and how (m, s, y, g change it)."""
    parts = [f"Compare {runs} run{'s' if runs != 1 else ''}: {METRICS[metric]}"]
    if smoothing:
        parts.append(f"smooth {smoothing:g}")
    if ylog:
        parts.append("log y")
    if group_key:
        parts.append(f"by {key_label(group_key)}")
    return "  ".join(parts)


class CurvesLoaded(Message):
    """The loader thread folded the selected runs; a newer load replaces an unhandled older one."""

    def __init__(self, root: Path, compare: CompareSet) -> None:
        super().__init__()
        self.root = root
        self.compare = compare

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, CurvesLoaded)


class CompareChart(Container):
    """The selected runs' curves: loads them on a thread worker, draws the chosen metric."""

    class ColorsChanged(Message):
        """The runs' line colours may have changed (configs loaded, another grouping)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.selected: tuple[str, ...] = ()
        self.metric = "top1"
        self.smoothing = 0.0
        self.ylog = False
        self.group_key = NO_GROUP
        self.compare: CompareSet | None = None
        self._view: SweepView | None = None
        self._loader: CurveLoader | None = None
        self._loaded_key: tuple[Any, ...] | None = None
        self._loaded_at = -1e9
        self._reload_armed = False

    def compose(self) -> ComposeResult:
        yield CurvePlot(xlabel="epoch", id="compare-plot")

    def show(self, view: SweepView, selected: tuple[str, ...]) -> None:
        """Show these runs of this snapshot (hidden when none is selected)."""
        changed = selected != self.selected
        self._view, self.selected = view, selected
        self.display = bool(selected)
        if selected:
            self._load()
            if changed:
                self._draw()

    def color(self, run_id: str) -> str:
        """The colour of a run's line (for the table's marker)."""
        order = [r.run_id for r in self._view.runs] if self._view else [run_id]
        return COLORS[color_index(run_id, order, self.compare, self.group_key) % len(COLORS)]

    # --- loading ----------------------------------------------------------------------------

    def _load(self) -> None:
        """Fold the selected runs in a thread: when the selection or the results changed, and
        every RELOAD_INTERVAL seconds at most while a selected run is running."""
        view = self._view
        if view is None or not self.selected:
            return
        key = (view.root, self.selected, view.results_seq)
        running = any(view.state_of(r) == "running" for r in self.selected)
        wait = self._loaded_at + RELOAD_INTERVAL - time.monotonic()
        if key == self._loaded_key and not (running and wait <= 0):
            if running and not self._reload_armed:  # news came too soon: read it a bit later
                self._reload_armed = True
                self.set_timer(wait, self._reload)
            return
        self._loaded_key = key
        self._loaded_at = time.monotonic()
        if self._loader is None or self._loader.root != view.root:
            self._loader = CurveLoader(view.root, view.is_sweep)
            self.compare = None
        loader, ids, root = self._loader, list(self.selected), view.root
        all_ids = [r.run_id for r in view.runs]

        def load() -> None:
            self.post_message(CurvesLoaded(root, loader.load(ids, all_ids)))

        self.run_worker(load, group="compare", thread=True, exclusive=True)

    def _reload(self) -> None:
        self._reload_armed = False
        self._load()

    def on_curves_loaded(self, message: CurvesLoaded) -> None:
        message.stop()
        if self._view is None or message.root != self._view.root:
            return
        first = self.compare is None
        self.compare = message.compare
        if first:
            self.post_message(self.ColorsChanged())
        self._draw()

    # --- drawing ----------------------------------------------------------------------------

    def _draw(self) -> None:
        view, compare = self._view, self.compare
        if view is None or compare is None or not self.selected:
            return
        order = [r.run_id for r in view.runs]
        lines = overlay(compare, self.selected, order, self.metric, self.smoothing, self.group_key)
        self.border_title = compare_title(
            self.metric, len(self.selected), self.smoothing, self.ylog, self.group_key
        )
        empty = "no LARC run selected" if self.metric == "trust" else "no points yet"
        title = METRICS[self.metric] + ("  (log10 y)" if self.ylog else "")
        self.query_one(CurvePlot).show(
            [Line(ln.label, ln.curve, COLORS[ln.color % len(COLORS)]) for ln in lines],
            title=title,
            ylog=self.ylog,
            empty=empty,
            legend=True,  # which run a lone line is
        )

    def cycle_metric(self, delta: int) -> None:
        names = list(METRICS)
        self.metric = names[(names.index(self.metric) + delta) % len(names)]
        self._draw()

    def cycle_smoothing(self) -> None:
        i = SMOOTHING.index(self.smoothing) if self.smoothing in SMOOTHING else 0
        self.smoothing = SMOOTHING[(i + 1) % len(SMOOTHING)]
        self._draw()

    def toggle_log_y(self) -> None:
        self.ylog = not self.ylog
        self._draw()

    def group_keys(self) -> list[str]:
        """The keys `g` cycles through: none, then each key the sweep's runs differ in."""
        configs = self.compare.configs.values() if self.compare else ()
        return [NO_GROUP, *swept_keys(configs)]

    def cycle_group(self) -> bool:
        """The next grouping; False when there is nothing to group by (no configs yet)."""
        keys = self.group_keys()
        if len(keys) == 1:
            return False
        i = keys.index(self.group_key) if self.group_key in keys else 0
        self.group_key = keys[(i + 1) % len(keys)]
        self.post_message(self.ColorsChanged())
        self._draw()
        return True

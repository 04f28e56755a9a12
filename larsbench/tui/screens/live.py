"""The live screen: progress, hardware, throughput, training curves, LARC trust ratios, log.

Below COMPACT_BELOW columns the screen starts compact: one overview panel (hardware,
throughput and training, a line each) above the trust heatmap, so that the three live
streams fit 80x24 at once; `z` switches between that and the full panels at any size.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from larsbench.format import NA, count, eta, finite, num, pct, si
from larsbench.live.sweepview import SweepView
from larsbench.live.views import RunView
from larsbench.tui import runner_control
from larsbench.tui.screens.dialogs import ConfirmDialog
from larsbench.tui.widgets.devices import DevicePanel, panel_title
from larsbench.tui.widgets.logtail import LogTailView
from larsbench.tui.widgets.overview import OverviewPanel, overview_title
from larsbench.tui.widgets.plots import COLORS, CurvePlot, Line
from larsbench.tui.widgets.text import set_text
from larsbench.tui.widgets.trust import TrustHeatmap, TrustTable

if TYPE_CHECKING:
    from larsbench.tui.host import ScreenHost

PLOT_INTERVAL = 2.0  # seconds between plot redraws (plotext builds dominate the CPU cost)
STALE_SECONDS = 120  # a running run with no event for this long gets a warning
COMPACT_BELOW = 120  # columns: narrower terminals start with the compact overview


def header_text(view: SweepView | None) -> Text:
    """One line: sweep, run i/n, state, epoch, step, ETAs, and whether this is a replay."""
    t = Text()
    t.append(" larsbench ", style="bold reverse")
    if view is None:
        t.append("  waiting for the first read…", style="dim")
        return t
    if view.error:
        t.append(f"  {view.error}", style="bold red")
        return t
    t.append(f"  sweep {view.name}" if view.is_sweep else "  run dir", style="bold")
    if view.unreadable:
        t.append(f"  {view.unreadable_note}", style="bold yellow")
    run = view.run
    if run is None:
        t.append("  no runs yet", style="dim")
        return t
    if view.is_sweep:
        t.append(f"  run {view.index_of(run.run_id)}/{view.total} ({view.done} done)")
    t.append(f"  {run.run_id}", style="bold cyan")
    t.append(f" [{run.status}]", style=_state_style(run.status))
    if run.epochs:
        t.append(f"  epoch {run.epoch}/{run.epochs}")
    if run.total_steps:
        t.append(f"  step {count(run.step)}/{count(run.total_steps)}")
    if view.live and view.following:
        t.append(f"  ETA run {eta(run.eta_seconds)}, sweep {eta(view.eta_sweep())}")
        if finite(run.last_event_t) and view.now - run.last_event_t > STALE_SECONDS:
            t.append(f"  no events for {eta(view.now - run.last_event_t)}", style="bold yellow")
    elif not view.following:
        t.append("  replay (f: follow)", style="yellow")
    elif view.finished and view.is_sweep:
        t.append(f"  sweep {view.runner_state or 'done'} {view.done}/{view.total}", style="dim")
    return t


def _state_style(state: str) -> str:
    return {
        "running": "bold green",
        "completed": "green",
        "failed": "bold red",
        "diverged": "bold red",
        "stopped": "yellow",
    }.get(state, "dim")


def training_text(run: RunView | None) -> Text:
    """loss, lr, top-1 (best), top-5, img/s, per rank."""
    t = Text(no_wrap=False)
    if run is None:
        return t
    t.append("loss ", style="dim")
    t.append(num(run.loss, ".4g"), style="bold")
    t.append("  lr ", style="dim")
    t.append(num(run.lr, ".4g"), style="bold")
    t.append(f" (peak {num(run.peak_lr, '.4g')})", style="dim")
    t.append("  top-1 ", style="dim")
    t.append(pct(run.top1, 2), style="bold green")
    if finite(run.best_top1):
        t.append(f" (best {pct(run.best_top1, 2)}, ep {run.best_epoch})", style="dim")
    t.append("  top-5 ", style="dim")
    t.append(pct(run.top5, 2))
    t.append("\n")
    t.append(f"{run.model or NA}  {run.optimizer or NA}", style="dim")
    if run.trust_coefficient is not None:
        t.append(f" tc {run.trust_coefficient:g}", style="dim")
    t.append(
        f"  batch {run.batch_size} = {run.world_size} x {run.per_rank_batch}  {run.device or NA}",
        style="dim",
    )
    if run.reason:
        t.append(f"\n{run.reason}", style="bold red")
    return t


def throughput_text(run: RunView | None) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    if run is None:
        return t
    t.append("global ", style="dim")
    t.append(si(run.images_per_sec), style="bold")
    t.append(" img/s", style="dim")
    if run.world_size and finite(run.images_per_sec):
        t.append(f"  per rank {si(run.images_per_sec / run.world_size)}", style="dim")
    if run.rank_images_per_sec:
        t.append("   ranks:", style="dim")
        for r, v in enumerate(run.rank_images_per_sec):
            style = "bold yellow" if r == run.straggler else ""
            t.append(f" r{r} {si(v)}", style=style)
    return t


class LiveScreen(Screen[None]):
    """Follows the runner's current run, or replays a chosen one from its files."""

    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [
        (0, "-narrow"),
        (120, "-wide"),
    ]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("z", "toggle_compact", "Compact/full"),
        Binding("s", "stop_run", "Stop run"),
        Binding("S", "stop_sweep", "Stop sweep"),
        Binding("n", "next_run(1)", "Next run"),
        Binding("p", "next_run(-1)", "Prev run", show=False),
        Binding("f", "follow", "Follow", show=False),
        Binding("t", "toggle_trust", "Trust table"),
        Binding("l", "toggle_log", "Log"),
    ]

    def __init__(self) -> None:
        super().__init__(id="live")
        self._view: SweepView | None = None
        self._plots_at = -1e9
        self._plot_timer_armed = False
        self._run_key: object = None
        self._compact_flipped = False  # `z` pressed an odd number of times

    @property
    def lapp(self) -> ScreenHost:
        """The app, through what a screen may use of it (larsbench.tui.host)."""
        return cast("ScreenHost", self.app)

    def compose(self) -> ComposeResult:
        yield Static(header_text(None), id="live-header")
        with VerticalScroll(id="live-body"):
            with Container(id="overview-box", classes="panel"):
                yield OverviewPanel(id="overview")
            with Container(id="devices-box", classes="panel"):
                yield DevicePanel(id="devices")
            with Container(id="throughput-box", classes="panel"):
                yield CurvePlot("img/s", "step", id="throughput")
                yield Static(id="throughput-numbers")
            with Container(id="training-box", classes="panel"):
                yield Static(id="training-numbers")
                with Horizontal(id="training-plots"):
                    yield CurvePlot("loss", id="loss-plot")
                    yield CurvePlot("lr", id="lr-plot")
                    yield CurvePlot("top-1 %", id="top1-plot")
            with Container(id="trust-box", classes="panel"):
                yield TrustHeatmap(id="heatmap")
                yield TrustTable(id="trust-table")
                yield Static(id="trust-none")
            with Container(id="log-box", classes="panel"):
                yield LogTailView(id="log")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#devices-box").border_title = "Hardware"
        self.query_one("#throughput-box").border_title = "Throughput (img/s)"
        self.query_one("#training-box").border_title = "Training"
        self.query_one("#trust-box").border_title = "Trust ratios"
        self.query_one("#log-box").border_title = "Log"
        self.query_one("#trust-table").display = False
        self._apply_compact()
        if self.lapp.view is not None:
            self.show_view(self.lapp.view)

    def on_screen_resume(self) -> None:
        if self.lapp.view is not None and self.lapp.view is not self._view:
            self.show_view(self.lapp.view)

    def on_resize(self) -> None:
        self._apply_compact()

    @property
    def compact(self) -> bool:
        """Whether the compact overview shows in place of the hardware, throughput, training
        and log panels: by default below COMPACT_BELOW columns; `z` flips it."""
        return (self.app.size.width < COMPACT_BELOW) != self._compact_flipped

    def _apply_compact(self) -> None:
        self.set_class(self.compact, "-compact")

    # --- rendering --------------------------------------------------------------------------

    def show_view(self, view: SweepView) -> None:
        self._view = view
        run = view.run
        header = self.query_one("#live-header", Static)
        set_text(header, header_text(view), width=self.app.size.width)
        self._title("#devices-box", panel_title(run))
        self._title("#overview-box", overview_title(run))
        self.query_one(OverviewPanel).show(run)
        self.query_one(DevicePanel).show(run)
        set_text(self.query_one("#throughput-numbers", Static), throughput_text(run))
        training = self.query_one("#training-numbers", Static)
        set_text(training, training_text(run), width=training.content_region.width)
        self._show_trust(run)
        self._show_log(view)
        run_key = (view.root, run.run_id if run else None)
        if run_key != self._run_key or time.monotonic() - self._plots_at >= PLOT_INTERVAL:
            self._run_key = run_key
            self._draw_plots()
        elif not self._plot_timer_armed:
            self._plot_timer_armed = True
            self.set_timer(PLOT_INTERVAL, self._draw_plots)

    def _title(self, selector: str, title: str) -> None:
        box = self.query_one(selector)
        if box.border_title != title:
            box.border_title = title

    def _draw_plots(self) -> None:
        self._plot_timer_armed = False
        self._plots_at = time.monotonic()
        run = self._view.run if self._view else None
        if run is None:
            return
        lines = [Line("all", run.ips_curve, COLORS[0])]
        if len(run.rank_ips_curves) > 1:
            lines += [
                Line(f"r{r}", c, COLORS[1 + r % (len(COLORS) - 1)])
                for r, c in enumerate(run.rank_ips_curves)
            ]
        self.query_one("#throughput", CurvePlot).show(
            lines, title="img/s: global and per rank", from_zero=True
        )
        self.query_one("#loss-plot", CurvePlot).show([Line("loss", run.loss_curve, "cyan")])
        self.query_one("#lr-plot", CurvePlot).show([Line("lr", run.lr_curve, "orange")])
        self.query_one("#top1-plot", CurvePlot).show(
            [Line("top-1", run.top1_curve, "green")], title="top-1 % by epoch", empty="no eval yet"
        )

    def _show_trust(self, run: RunView | None) -> None:
        none = self.query_one("#trust-none", Static)
        heat = self.query_one(TrustHeatmap)
        table = self.query_one(TrustTable)
        if run is None or not run.is_larc:
            self._title("#trust-box", "Trust ratios")
            none.display = True
            set_text(
                none,
                Text(
                    "Plain SGD: no layer-wise trust ratios. Open a LARC run (n / p) to see how "
                    "LARC scales each layer's step.",
                    style="dim",
                ),
            )
            heat.display = table.display = False
            return
        none.display = False
        showing_table = self.has_class("-trust-table")
        if heat.display != (not showing_table):
            heat.display, table.display = not showing_table, showing_table
        if showing_table:
            self._title("#trust-box", "LARC: layers by how often clipping bites")
            table.show(run.trust)
        else:
            self._title("#trust-box", "LARC trust ratios: applied factor per layer (log)")
            heat.show(run.trust)

    def _show_log(self, view: SweepView) -> None:
        run = view.run
        self.query_one(LogTailView).show(run.log_lines if run else ())
        if run is not None:
            self._title("#log-box", f"Log: {run.run_id}/logs/torchrun.log (tail)")

    # --- actions ----------------------------------------------------------------------------

    def action_toggle_trust(self) -> None:
        self.toggle_class("-trust-table")
        if self._view is not None:
            self._show_trust(self._view.run)

    def action_toggle_compact(self) -> None:
        self._compact_flipped = not self._compact_flipped
        self._apply_compact()

    def action_toggle_log(self) -> None:
        self.toggle_class("-no-log")

    def action_next_run(self, delta: int) -> None:
        view = self._view
        if view is None or not view.runs:
            return
        i = max(0, view.index_of(view.focus) - 1)
        self.lapp.focus_run(view.runs[(i + delta) % len(view.runs)].run_id)

    def action_follow(self) -> None:
        self.lapp.focus_run(None)

    def _can_stop(self) -> bool:
        if self._view is None or not self._view.live:
            self.notify("No running sweep to stop here.", severity="warning")
            return False
        return True

    def action_stop_run(self) -> None:
        if not self._can_stop():
            return
        view = cast(SweepView, self._view)

        def done(yes: bool | None) -> None:
            if yes:
                why = runner_control.stop_run(view.root)
                self.notify(why or "Asked the runner to stop the current run.")

        self.app.push_screen(
            ConfirmDialog(f"Stop run {view.current or view.focus}? The sweep goes on.", "Stop run"),
            done,
        )

    def action_stop_sweep(self) -> None:
        if not self._can_stop():
            return
        view = cast(SweepView, self._view)

        def done(yes: bool | None) -> None:
            if yes:
                why = runner_control.stop_sweep(view.root)
                self.notify(why or "Asked the runner to stop the sweep.")

        self.app.push_screen(
            ConfirmDialog(
                f"Stop the whole sweep {view.name}? The current run is marked stopped; "
                "the runs left are not started.",
                "Stop sweep",
            ),
            done,
        )

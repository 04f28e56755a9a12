"""The live screen's compact overview: hardware, throughput and training in a few lines."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from larsbench.format import NA, finite, num, pct, si, sparkline
from larsbench.live.views import RunView
from larsbench.tui.widgets.devices import level_style
from larsbench.tui.widgets.text import set_text


def _spark_tail(t: Text, values: tuple[float, ...], width: int, lo: float, hi: float) -> None:
    """Append a sparkline of the newest values into the room left on the line."""
    room = width - t.cell_len - 1
    if room > 3 and values:
        t.append(" ")
        t.append(sparkline(values[-room:], lo, hi), style="cyan")


def hardware_line(run: RunView, width: int) -> Text:
    """gpu util 0 97% 1 95% ... (or cpu per rank), then the mean utilisation's sparkline."""
    t = Text(no_wrap=True, overflow="ellipsis")
    devices = [d for n in run.nodes for d in n.devices]
    if devices:
        t.append("gpu util", style="dim")
        for d in devices:
            t.append(f" {d.index if d.index is not None else '?'}:", style="dim")
            t.append(pct(d.util_gpu), style=level_style(d.util_gpu))
        history = devices[0].util_history
        _spark_tail(t, history, width, 0.0, 100.0)
        return t
    ranks = [r for n in run.nodes for r in n.ranks]
    if not ranks:
        t.append("hardware: no system samples yet", style="dim")
        return t
    t.append("cpu per rank", style="dim")
    for r in ranks:
        t.append(f" r{r.local_rank if r.local_rank is not None else '?'}:", style="dim")
        t.append(pct(r.cpu_percent))
    node = run.nodes[0]
    t.append(f"  host {pct(node.host_cpu_percent)}", style="dim")
    history = ranks[0].cpu_history
    top = max([100.0, *(v for v in history if finite(v))])
    _spark_tail(t, history, width, 0.0, top)
    return t


def throughput_line(run: RunView, width: int) -> Text:
    """img/s 9.8k (per rank 1.2k, slowest r7 1.0k) data wait 3%, then the img/s sparkline."""
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append("img/s ", style="dim")
    t.append(si(run.images_per_sec), style="bold")
    ranks = run.rank_images_per_sec
    if run.world_size and finite(run.images_per_sec):
        t.append(f" (rank {si(run.images_per_sec / run.world_size)}", style="dim")
        known = [i for i, v in enumerate(ranks) if finite(v)]
        if len(known) > 1:
            slowest = min(known, key=lambda i: ranks[i])
            style = "bold yellow" if slowest == run.straggler else "dim"
            t.append(f", slowest r{slowest} {si(ranks[slowest])}", style=style)
        t.append(")", style="dim")
    t.append("  wait ", style="dim")
    t.append(pct(run.data_wait, 0, fraction=True), style="bold red" if run.input_bound else "")
    if run.input_bound:
        t.append(" INPUT-BOUND", style="bold red")
    _spark_tail(t, run.ips_curve.ys, width, 0.0, max(run.ips_curve.ys, default=1.0))
    return t


def training_line(run: RunView) -> Text:
    """loss, lr, top-1 (best) and top-5 on one line."""
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append("loss ", style="dim")
    t.append(num(run.loss, ".4g"), style="bold")
    t.append("  lr ", style="dim")
    t.append(num(run.lr, ".3g"))
    t.append("  top-1 ", style="dim")
    t.append(pct(run.top1, 2), style="bold green")
    if finite(run.best_top1):
        t.append(f" (best {pct(run.best_top1, 2)} ep {run.best_epoch})", style="dim")
    t.append("  top-5 ", style="dim")
    t.append(pct(run.top5, 1))
    return t


def overview_text(run: RunView | None, width: int) -> Text:
    """Three lines: hardware, throughput, training (the trust heatmap sits below them)."""
    if run is None:
        return Text("no run selected", style="dim")
    lines = [hardware_line(run, width), throughput_line(run, width), training_line(run)]
    if run.reason:
        lines.append(Text(run.reason, style="bold red", no_wrap=True, overflow="ellipsis"))
    return Text("\n", no_wrap=True, overflow="ellipsis").join(lines)


def overview_title(run: RunView | None) -> str:
    """The overview box's border title: what the hardware line shows and the key to more."""
    if run is None or not run.nodes:
        return "Overview (z: full panels)"
    what = "GPUs" if run.nodes[0].devices else "CPU ranks"
    names = ", ".join(n.node for n in run.nodes)
    return f"Overview: {what} ({names}, {run.nodes[0].source or NA})  z: full panels"


class OverviewPanel(Static):
    """Renders overview_text for the latest run view; re-renders on resize."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._run: RunView | None = None

    def show(self, run: RunView | None) -> None:
        self._run = run
        set_text(self, overview_text(run, self.content_region.width or 80))

    def on_resize(self) -> None:
        self.show(self._run)

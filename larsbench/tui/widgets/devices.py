"""The hardware panel: per GPU (or per CPU rank) utilisation, memory, power, heat, sparklines."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from larsbench.format import NA, bar, finite, gib, num, pct, sparkline
from larsbench.live.views import DeviceView, NodeView, RankView, RunView
from larsbench.telemetry.summarize import INPUT_BOUND_THRESHOLD
from larsbench.tui.widgets.text import set_text


def level_style(percent: float) -> str:
    if not finite(percent):
        return "dim"
    if percent >= 80:
        return "green"
    if percent >= 50:
        return "yellow"
    return "red"


def _short_gpu_name(name: str) -> str:
    for prefix in ("NVIDIA ", "Tesla ", "GeForce "):
        name = name.removeprefix(prefix)
    return name.split(" ")[0][:8] if name else "GPU"


def device_line(d: DeviceView, width: int) -> Text:
    """0 H100 ██████▏ 97%  61.2/80.0G 612W 71C ▁▂▇▇ r0"""
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(f"{d.index if d.index is not None else '?':>2} ", style="bold")
    t.append(f"{_short_gpu_name(d.name):<8} ")
    util = d.util_gpu
    t.append(bar(util / 100 if finite(util) else None, 8), style=level_style(util))
    t.append(f" {pct(util):>4} ")
    t.append(f"{gib(d.mem_used)}/{gib(d.mem_total, 'G')} ".rjust(12))
    t.append(f"{num(d.power_w, '.0f', 'W'):>5} ")
    t.append(f"{num(d.temp_c, '.0f', 'C'):>4} ", style="red" if d.temp_c >= 85 else "")
    rank = f" r{d.local_rank}" if d.local_rank is not None else ""
    room = width - t.cell_len - len(rank) - (2 if d.throttle else 0)
    if room > 3:
        t.append(sparkline(d.util_history[-room:], 0, 100), style="cyan")
    t.append(rank, style="dim")
    if d.throttle:
        t.append(" !", style="bold red")
    return t


def rank_line(r: RankView, width: int) -> Text:
    """r0 pid 41001 ███████ 93% rss 0.6G  workers 2 (40%) ▁▂▃▄"""
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(f"r{r.local_rank if r.local_rank is not None else '?'} ", style="bold")
    t.append(f"pid {r.pid if r.pid is not None else NA:<7} ", style="dim")
    # cpu_percent is % of one core; a rank may use several.
    t.append(bar(r.cpu_percent / 100 if finite(r.cpu_percent) else None, 8), style="cyan")
    t.append(f" {pct(r.cpu_percent):>5} cpu ")
    t.append(f"rss {gib(r.rss_bytes, 'G')} ")
    if r.workers:
        t.append(f"workers {r.workers} ({pct(r.workers_cpu_percent)}) ")
    if finite(r.gpu_mem_bytes):
        t.append(f"gpu {gib(r.gpu_mem_bytes, 'G')} ")
    room = width - t.cell_len
    if room > 3:
        hist = r.cpu_history[-room:]
        top = max([100.0, *(v for v in hist if finite(v))])  # % of one core; may exceed 100
        t.append(sparkline(hist, 0, top), style="cyan")
    return t


def panel_title(run: RunView | None) -> str:
    if run is None or not run.nodes:
        return "Hardware"
    node = run.nodes[0]
    what = "GPUs" if node.devices else "CPU ranks"
    names = ", ".join(n.node for n in run.nodes)
    return f"{what} ({names}, {node.source or 'n/a'})"


def render_panel(run: RunView | None, width: int) -> Text:
    """The whole panel as one Text (one widget, one render per update)."""
    width = max(width, 20)
    out = Text(no_wrap=True, overflow="ellipsis")
    if run is None:
        return Text("no run selected", style="dim")
    lines: list[Text] = []
    for node in run.nodes:
        lines += _node_lines(node, width, several=len(run.nodes) > 1)
    if not run.nodes:
        lines.append(Text("no system samples yet (events/system-*.jsonl)", style="dim"))
    lines.append(_wait_line(run, width))
    if finite(run.energy_per_image):
        lines.append(Text(f"energy {run.energy_per_image:.3g} J/img (all GPUs)", style="dim"))
    out = Text("\n", no_wrap=True).join(lines)
    return out


def _node_lines(node: NodeView, width: int, several: bool) -> list[Text]:
    lines = []
    if several:
        lines.append(Text(node.node, style="bold underline"))
    for d in node.devices:
        lines.append(device_line(d, width))
    if not node.devices:
        for r in node.ranks:
            lines.append(rank_line(r, width))
    host = Text(no_wrap=True, overflow="ellipsis", style="dim")
    host.append(f"host cpu {pct(node.host_cpu_percent)}  ")
    host.append(f"mem {gib(node.host_mem_used)}/{gib(node.host_mem_total, 'G')}")
    if node.devices and node.ranks:
        cpus = "  ".join(f"r{r.local_rank} {pct(r.cpu_percent)}" for r in node.ranks)
        host.append(f"  rank cpu {cpus}")
    lines.append(host)
    return lines


def _wait_line(run: RunView, width: int) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append("data wait ")
    t.append(pct(run.data_wait, 1, fraction=True), style="bold red" if run.input_bound else "")
    if run.rank_data_wait and len(run.rank_data_wait) > 1:
        worst = max(range(len(run.rank_data_wait)), key=lambda i: _low_nan(run.rank_data_wait[i]))
        t.append(f" (max r{worst} {pct(run.rank_data_wait[worst], 0, fraction=True)})")
    if run.straggler is not None:
        t.append(f"  r{run.straggler}: straggler", style="bold yellow")
    if run.input_bound:
        limit = pct(INPUT_BOUND_THRESHOLD, 0, fraction=True)
        t.append(f"  INPUT-BOUND (>{limit} waiting): add loader workers?", style="bold red")
    room = width - t.cell_len - 2
    ys = run.data_wait_curve.ys
    if room > 8 and ys:
        t.append("  ")
        t.append(sparkline(ys[-room:], 0, max(max(ys), INPUT_BOUND_THRESHOLD)), style="magenta")
    return t


def _low_nan(v: float) -> float:
    return v if finite(v) else -1.0


class DevicePanel(Static):
    """Renders the latest run view's system samples; re-renders on resize."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._run: RunView | None = None
        self._key: tuple[object, ...] | None = None

    def show(self, run: RunView | None) -> None:
        self._run = run
        self._draw()

    def _draw(self) -> None:
        run = self._run
        width = self.content_region.width or self.size.width or 80
        key = (
            width,
            run.run_id if run else None,
            run.nodes if run else None,
            run.data_wait if run else None,
            run.straggler if run else None,
        )
        if key == self._key:
            return
        self._key = key
        set_text(self, render_panel(run, width))

    def on_resize(self) -> None:
        self._draw()

"""Human formatting of a sweep's summary: table cells, summary.md, console table, summary.png."""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from rich.table import Table

# Hardware figures shown when RunResult.system holds them (larsbench.telemetry writes them):
# (key, column header, format). Columns with no value in any run are left out of the table.
SYSTEM_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("gpu_util_mean", "GPU util", "pct0"),
    ("peak_gpu_mem_bytes", "GPU mem", "gib"),
    ("power_draw_mean", "W/GPU", "int"),
    ("energy_j_per_image", "J/img", "float2"),
    ("input_bound", "input bound", "flag"),
    ("straggler_rank", "straggler", "rank"),
)


# Throughput-mode figures (train.mode = "throughput"), shown when some run has them.
THROUGHPUT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("step_seconds", "step", "ms"),
    ("optimizer_share", "optimizer", "share"),
    ("communication_wait_seconds", "all-reduce wait", "ms"),
    ("peak_memory_bytes", "peak mem", "gib"),
    ("projected_run_seconds", "projected run", "time"),
    ("input_bound_share", "input-bound share", "share"),
)


def percent(value: Any, digits: int = 2) -> str:
    """76.42%; blank when missing."""
    return f"{value:.{digits}f}%" if _num(value) else ""


def rate(value: Any) -> str:
    """9,520 (img/s); one decimal below 100; blank when missing."""
    if not _num(value):
        return ""
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def duration(seconds: Any) -> str:
    """3h47m, 2m05s, 42s, 4.2s; blank when missing."""
    if not _num(seconds) or seconds < 0:
        return ""
    if seconds < 10:
        return f"{seconds:.1f}s"
    minutes = round(seconds / 60)
    if minutes >= 60:
        return f"{minutes // 60}h{minutes % 60:02d}m"
    whole = round(seconds)
    if whole >= 60:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole}s"


def plain(value: Any) -> str:
    """A number in its shortest form (0.1, 1024, 1e-05); blank when missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_FORMATS: dict[str, Callable[[Any], str]] = {
    "text": lambda v: "" if v is None else str(v),
    "plain": plain,
    "pct": percent,
    "pct0": lambda v: percent(v, 0),
    "rate": rate,
    "time": duration,
    "int": lambda v: f"{v:,.0f}" if _num(v) else "",
    "float1": lambda v: f"{v:.1f}" if _num(v) else "",
    "float2": lambda v: f"{v:.2f}" if _num(v) else "",
    "flag": lambda v: "" if v is None else ("yes" if v else "no"),
    "gib": lambda v: f"{v / 2**30:.1f}G" if _num(v) else "",
    "rank": lambda v: f"r{v}" if _num(v) else "",
    "ms": lambda v: f"{1000 * v:.1f} ms" if _num(v) else "",
    "share": lambda v: percent(100 * v, 1) if _num(v) else "",
    "star": lambda v: "*" if v else "",
    "delta": lambda v: f"{v:+.2f}" if _num(v) else "",
}

# (row key, header, format). Status, model and epochs show only when they differ between runs.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("run_id", "run", "text"),
    ("status", "status", "text"),
    ("model", "model", "text"),
    ("epochs", "epochs", "plain"),
    ("batch_size", "batch", "plain"),
    ("accumulate_steps", "accumulated", "plain"),
    ("lr", "lr", "plain"),
    ("optimizer", "optimizer", "text"),
    ("trust_coefficient", "tc", "plain"),
    ("top1", "top-1", "pct"),
    ("top5", "top-5", "pct"),
    ("best_top1", "best top-1", "pct"),
    ("reference_top1", "ref top-1", "pct"),
    ("reference_delta", "vs ref", "delta"),
    ("images_per_sec", "img/s", "rate"),
    ("images_per_sec_per_gpu", "img/s/GPU", "rate"),
    ("train_seconds", "train time", "time"),
    ("time_to_best_seconds", "to best", "time"),
    *THROUGHPUT_COLUMNS,
    *SYSTEM_COLUMNS,
    ("pareto", "frontier", "star"),
)
_SHOWN_IF_VARIED = ("status", "model", "epochs")
# Columns left out when no run has a value: hardware, throughput-mode, and (for a
# throughput-only sweep) accuracy columns.
_OPTIONAL_KEYS = {
    *(key for key, _, _ in SYSTEM_COLUMNS),
    *(key for key, _, _ in THROUGHPUT_COLUMNS),
    "top1",
    "top5",
    "best_top1",
    "reference_top1",
    "reference_delta",
    "train_seconds",
    "time_to_best_seconds",
}
_LEFT = ("text", "star")

DID_NOT_FINISH = ("failed", "diverged", "stopped", "unreadable")


def table_columns(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """The columns worth showing for these rows."""
    shown = []
    for key, header, kind in COLUMNS:
        values = [r.get(key) for r in rows]
        if key in _SHOWN_IF_VARIED and len(set(values)) <= 1:
            continue
        if key == "accumulate_steps" and all(v in (None, 1) for v in values):
            continue  # no run accumulated: the batch is what ran at once
        if key in _OPTIONAL_KEYS and all(v is None for v in values):
            continue
        if key == "pareto" and _throughput_only(rows):
            continue  # no accuracy, no accuracy/speed frontier
        shown.append((key, header, kind))
    return shown


def table_cells(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]], list[bool]]:
    """(headers, cells per row, right-aligned per column) as summary.md and the console show."""
    columns = table_columns(rows)
    headers = [header for _, header, _ in columns]
    cells = [[_FORMATS[kind](row.get(key)) for key, _, kind in columns] for row in rows]
    right = [kind not in _LEFT for _, _, kind in columns]
    return headers, cells, right


def common_line(rows: list[dict[str, Any]]) -> str:
    """What every run shares (model, epochs, state), said once above the table."""
    if not rows:
        return ""
    parts = []
    models = {r.get("model") for r in rows}
    epochs = {r.get("epochs") for r in rows}
    if len(models) == 1 and rows[0].get("model"):
        parts.append(str(rows[0]["model"]))
    if len(epochs) == 1 and rows[0].get("epochs"):
        parts.append(f"{rows[0]['epochs']} epochs")
    states: dict[str, int] = {}
    for r in rows:
        states[r.get("status") or "queued"] = states.get(r.get("status") or "queued", 0) + 1
    runs = f"{len(rows)} run{'s' if len(rows) != 1 else ''}"
    if len(states) == 1:
        parts.append(f"{runs}, all {next(iter(states))}")
    else:
        parts.append(f"{runs}: " + ", ".join(f"{n} {s}" for s, n in states.items()))
    return "; ".join(parts)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    headers, cells, right = table_cells(rows)
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        padded = [
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    dashes = [
        "-" * (w + 1) + ":" if r else "-" * (w + 2) for w, r in zip(widths, right, strict=True)
    ]
    rule = "|" + "|".join(dashes) + "|"
    return "\n".join([line(headers), rule, *(line(c) for c in cells)])


_SORT_NAMES = {"top1": "top-1", "images_per_sec": "img/s", "sweep": "sweep order"}


def render_markdown(
    name: str, rows: list[dict[str, Any]], advice: str, sort: str, extra: str = ""
) -> str:
    """The whole of summary.md; `extra` holds further sections (scaling efficiency)."""
    order = _SORT_NAMES.get(sort, sort)
    what = "throughput" if _throughput_only(rows) else "accuracy and speed"
    out = [f"# {name}: {what}", "", common_line(rows) + ".", ""]
    if _throughput_only(rows):
        note = (
            "Throughput mode: global img/s over the timed steps (no full training, no "
            "evaluation); projected run is the configured epochs at that speed."
        )
    else:
        note = (
            "Speeds are global training throughput and train time excludes evaluation; to "
            "best is wall time from the start to the best evaluation, evaluations included; "
            "`*` marks the accuracy/speed frontier."
        )
    if rows:
        out += [f"Sorted by {order}. {note}", "", markdown_table(rows), ""]
    out += [textwrap.fill(advice, width=100), ""]
    ended = [r for r in rows if r.get("status") in DID_NOT_FINISH]
    if ended:
        out += ["## Runs that did not finish", ""]
        for r in ended:
            where = f" at epoch {r.get('epochs_done') or 0}/{r.get('epochs') or '?'}"
            reason = f": {r['reason']}" if r.get("reason") else ""
            out.append(f"- {r['run_id']}: {r['status']}{where}{reason}")
        out.append("")
    if extra:
        out += [extra]
    if _throughput_only(rows):
        out += ["![img/s per run](summary.png)", ""]
    else:
        out += ["![top-1 against training throughput](summary.png)", ""]
    return "\n".join(out)


def _throughput_only(rows: list[dict[str, Any]]) -> bool:
    return bool(rows) and all(r.get("mode") == "throughput" for r in rows)


def format_console_table(rows: list[dict[str, Any]], title: str | None = None) -> Table:
    """The summary table for the headless console: same columns and cells as summary.md."""
    from rich.table import Table

    headers, cells, right = table_cells(rows)
    table = Table(title=title, title_justify="left", header_style="bold")
    for header, is_right in zip(headers, right, strict=True):
        table.add_column(header, justify="right" if is_right else "left", no_wrap=True)
    for row, values in zip(rows, cells, strict=True):
        status = row.get("status")
        style = None
        if status in DID_NOT_FINISH:
            style = "red"
        elif status != "completed":
            style = "dim"
        elif row.get("pareto"):
            style = "bold"
        table.add_row(*values, style=style)
    return table


_MARKERS = {"sgd": "o", "larc": "^"}
# Label positions tried in turn (points from the marker), so close runs keep readable labels.
_OFFSETS = ((5, 4), (5, -11), (-5, 4), (-5, -11))


def _label_offsets(points: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """For each point, the first offset whose label box does not overlap one already placed."""
    xs = [r["images_per_sec"] for r in points]
    ys = [r["top1"] for r in points]
    # Roughly the axes' size in points: data coordinates -> label coordinates.
    sx = 500 / ((max(xs) - min(xs)) or 1) if xs else 1
    sy = 330 / ((max(ys) - min(ys)) or 1) if ys else 1
    # Boxes already taken (left, bottom, width): the markers first, then each placed label.
    placed = [(x * sx - 5, y * sy - 4, 10.0) for x, y in zip(xs, ys, strict=True)]
    chosen = []
    for r, x, y in zip(points, xs, ys, strict=True):
        width = 4.2 * len(r["run_id"])
        best, best_hits = _OFFSETS[0], None
        for dx, dy in _OFFSETS:
            left = x * sx + dx - (width if dx < 0 else 0)
            bottom = y * sy + dy
            hits = sum(
                left < pl + pw and pl < left + width and abs(bottom - pb) < 9
                for pl, pb, pw in placed
            )
            if best_hits is None or hits < best_hits:
                best, best_hits = (dx, dy), hits
            if hits == 0:
                break
        dx, dy = best
        placed.append((x * sx + dx - (width if dx < 0 else 0), y * sy + dy, width))
        chosen.append(best)
    return chosen


def throughput_figure(rows: list[dict[str, Any]], title: str) -> Figure:
    """A throughput sweep's picture: one bar of img/s per completed run, fastest on top,
    coloured by optimizer, labelled with the optimizer's share of the step."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    done = [r for r in rows if r.get("status") == "completed" and _num(r.get("images_per_sec"))]
    done.sort(key=lambda r: r["images_per_sec"])
    fig = Figure(figsize=(8, 1.5 + 0.45 * max(1, len(done))), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colours = {"sgd": "tab:blue", "larc": "tab:orange"}
    bars = ax.barh(
        [r["run_id"] for r in done],
        [r["images_per_sec"] for r in done],
        color=[colours.get(r.get("optimizer"), "tab:grey") for r in done],
    )
    labels = []
    for r in done:
        share = r.get("optimizer_share")
        extra = f"  (optimizer {100 * share:.1f}%)" if _num(share) else ""
        labels.append(f"{r['images_per_sec']:,.1f}{extra}")
    ax.bar_label(bars, labels=labels, padding=3, fontsize=8)
    if not done:
        ax.text(0.5, 0.5, "no completed run yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("throughput (img/s, all GPUs), throughput mode")
    ax.set_title(title)
    ax.margins(x=0.35)
    ax.grid(axis="x", alpha=0.3)
    return fig


def render_png(rows: list[dict[str, Any]], title: str) -> bytes:
    """summary.png: `accuracy_figure`, or for a throughput sweep `throughput_figure`."""
    figure = throughput_figure if _throughput_only(rows) else accuracy_figure
    buf = io.BytesIO()
    figure(rows, title).savefig(buf, format="png")
    return buf.getvalue()


def accuracy_figure(rows: list[dict[str, Any]], title: str) -> Figure:
    """Top-1 against img/s, shape by optimizer, colour by batch, frontier line; a reference
    top-1 as a hollow marker at the run's measured speed."""
    # Imported here: matplotlib costs a second at start-up and only the summary needs it.
    # Figure + the Agg canvas, not pyplot, so no global backend or figure state is touched.
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    points = [
        r
        for r in rows
        if r.get("status") == "completed" and _num(r.get("top1")) and _num(r.get("images_per_sec"))
    ]
    fig = Figure(figsize=(8, 5.5), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    batches = sorted({r.get("batch_size") or 0 for r in points})
    cmap = colormaps["viridis"]
    colour = {b: cmap(0.85 * i / max(1, len(batches) - 1)) for i, b in enumerate(batches)}
    for r, (dx, dy) in zip(points, _label_offsets(points), strict=True):
        x, y = r["images_per_sec"], r["top1"]
        ax.scatter(
            x,
            y,
            marker=_MARKERS.get(r.get("optimizer"), "s"),
            color=colour[r.get("batch_size") or 0],
            s=70,
            edgecolors="black" if r.get("pareto") else "none",
            linewidths=0.8,
            zorder=3,
        )
        ax.annotate(
            r["run_id"],
            (x, y),
            xytext=(dx, dy),
            textcoords="offset points",
            fontsize=7,
            ha="left" if dx > 0 else "right",
        )
    # The published top-1 of the reference table, hollow, at the run's measured speed.
    referenced = [r for r in points if _num(r.get("reference_top1"))]
    for r in referenced:
        ax.scatter(
            r["images_per_sec"],
            r["reference_top1"],
            marker=_MARKERS.get(r.get("optimizer"), "s"),
            facecolors="none",
            edgecolors=colour[r.get("batch_size") or 0],
            s=70,
            linewidths=1.2,
            zorder=3,
        )
    front = sorted((r for r in points if r.get("pareto")), key=lambda r: r["images_per_sec"])
    if front:
        ax.plot(
            [r["images_per_sec"] for r in front],
            [r["top1"] for r in front],
            "--",
            color="grey",
            zorder=2,
        )
    handles = [
        Line2D([], [], marker=m, linestyle="", color="black", label=name)
        for name, m in _MARKERS.items()
        if any(r.get("optimizer") == name for r in points)
    ]
    handles += [
        Line2D([], [], marker="o", linestyle="", color=colour[b], label=f"batch {b}")
        for b in batches
    ]
    if front:
        handles.append(Line2D([], [], linestyle="--", color="grey", label="frontier"))
    if referenced:
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                linestyle="",
                markerfacecolor="none",
                color="black",
                label="published top-1 (reference)",
            )
        )
    if handles:
        ax.legend(handles=handles, fontsize=8, loc="best")
    else:
        ax.text(
            0.5,
            0.5,
            "no completed run with a top-1 and a speed yet",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    ax.set_xlabel("training throughput (img/s, all GPUs)")
    ax.set_ylabel("top-1 (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig

"""summary.png: top-1 against img/s, or img/s bars for a throughput sweep (matplotlib, lazily)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from larsbench.format import finite
from larsbench.summary.rows import throughput_only

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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

    done = [r for r in rows if r.get("status") == "completed" and finite(r.get("images_per_sec"))]
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
        extra = f"  (optimizer {100 * share:.1f}%)" if finite(share) else ""
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
    figure = throughput_figure if throughput_only(rows) else accuracy_figure
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
        if r.get("status") == "completed"
        and finite(r.get("top1"))
        and finite(r.get("images_per_sec"))
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
    referenced = [r for r in points if finite(r.get("reference_top1"))]
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

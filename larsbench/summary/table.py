"""The summary's table: which columns show, their cells, as Markdown and as a rich table."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from larsbench.format import duration, finite, gib, percent, plain, rate
from larsbench.summary.rows import throughput_only

if TYPE_CHECKING:
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


_FORMATS: dict[str, Callable[[Any], str]] = {
    "text": lambda v: "" if v is None else str(v),
    "plain": plain,
    "pct": percent,
    "pct0": lambda v: percent(v, 0),
    "rate": rate,
    "time": duration,
    "int": lambda v: f"{v:,.0f}" if finite(v) else "",
    "float1": lambda v: f"{v:.1f}" if finite(v) else "",
    "float2": lambda v: f"{v:.2f}" if finite(v) else "",
    "flag": lambda v: "" if v is None else ("yes" if v else "no"),
    "gib": lambda v: gib(v, "G", missing=""),
    "rank": lambda v: f"r{v}" if finite(v) else "",
    "ms": lambda v: f"{1000 * v:.1f} ms" if finite(v) else "",
    "share": lambda v: percent(v, 1, fraction=True),
    "star": lambda v: "*" if v else "",
    "delta": lambda v: f"{v:+.2f}" if finite(v) else "",
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
        if key == "pareto" and throughput_only(rows):
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

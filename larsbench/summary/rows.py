"""One flat row per run (summary.csv, summary.json and the table): columns, values, sort order."""

from __future__ import annotations

from typing import Any

from larsbench.format import finite, nan_to_none
from larsbench.profile.schema import ReferenceConfig
from larsbench.reference import reference_columns
from larsbench.results import RunResult
from larsbench.summary.advice import pareto_frontier

# One row per run, in this column order (summary.csv, summary.json); system keys and the
# frontier flag follow. Accuracies in percent, speeds in images per second, times in seconds.
ROW_FIELDS = (
    "run_id",
    "status",
    "reason",
    "model",
    "epochs",
    "epochs_done",
    "batch_size",
    "accumulate_steps",
    "world_size",
    "lr",
    "optimizer",
    "trust_coefficient",
    "top1",
    "top5",
    "best_top1",
    "best_epoch",
    # the profile's [reference]: the published top-1, and top1 minus it (points)
    "reference_top1",
    "reference_delta",
    "images_per_sec",
    "images_per_sec_per_gpu",
    "train_seconds",
    "time_to_best_seconds",
    "wall_seconds",
    "data_wait_fraction",
    # throughput mode (train.mode = "throughput"): per step, and the projected full run
    "mode",
    "step_seconds",
    "optimizer_share",
    "communication_wait_seconds",
    "peak_memory_bytes",
    "projected_run_seconds",
    "input_bound_share",
)
# Filled from the reference table, not from RunResult.
REFERENCE_FIELDS = ("reference_top1", "reference_delta")
# Numeric hardware figures taken from RunResult.system (larsbench.telemetry.summarize_system);
# the ones in SYSTEM_COLUMNS are also shown in summary.md and the console table.
SYSTEM_FIELDS = (
    "gpu_util_mean",
    "gpu_util_p95",
    "gpu_mem_util_mean",
    "peak_gpu_mem_bytes",
    "power_draw_mean",
    "temperature_max",
    "energy_j",
    "energy_j_per_image",
    "input_bound",
    "straggler_rank",
    "straggler_ratio",
    "cpu_percent_mean",
    "peak_rss_bytes",
)
# Sort keys where bigger is better; every other key sorts ascending. Missing values go last.
_DESCENDING = {
    "top1",
    "top5",
    "best_top1",
    "images_per_sec",
    "images_per_sec_per_gpu",
    "gpu_util_mean",
    "pareto",
}
SORT_KEYS = ("sweep", *ROW_FIELDS, *SYSTEM_FIELDS, "pareto")


def _row(
    result: RunResult, on_frontier: bool, reference: ReferenceConfig | None = None
) -> dict[str, Any]:
    row = {
        name: nan_to_none(getattr(result, name, None))
        for name in ROW_FIELDS
        if name not in REFERENCE_FIELDS
    }
    row.update(reference_columns(result.run_id, result.top1, reference))
    row = {name: row[name] for name in ROW_FIELDS}
    system = result.system if isinstance(result.system, dict) else {}
    for key in SYSTEM_FIELDS:
        value = system.get(key)
        row[key] = value if finite(value) or isinstance(value, bool) else None
    row["pareto"] = on_frontier
    return row


def summary_rows(
    results: list[RunResult],
    sort: str = "top1",
    frontier: set[str] | None = None,
    reference: ReferenceConfig | None = None,
) -> list[dict[str, Any]]:
    """One flat row per run, best first by `sort` (ties and missing values keep sweep order)."""
    if sort not in SORT_KEYS:
        raise ValueError(f"unknown sort key {sort!r}; allowed: {', '.join(SORT_KEYS)}")
    frontier = pareto_frontier(results) if frontier is None else frontier
    rows = [_row(r, r.run_id in frontier, reference) for r in results]
    if sort == "sweep":
        return rows
    present = [r for r in rows if r[sort] is not None and r[sort] != ""]
    missing = [r for r in rows if r[sort] is None or r[sort] == ""]
    present.sort(key=lambda r: r[sort], reverse=sort in _DESCENDING)
    return present + missing


def default_sort(results: list[RunResult]) -> str:
    """Best top-1 first; img/s first when no run measured accuracy (a throughput sweep)."""
    return "top1" if any(finite(r.top1) for r in results) else "images_per_sec"


def throughput_only(rows: list[dict[str, Any]]) -> bool:
    """Every row a throughput-mode run (no accuracy, no accuracy/speed frontier)."""
    return bool(rows) and all(r.get("mode") == "throughput" for r in rows)

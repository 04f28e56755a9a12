"""The accuracy/speed trade-off of a sweep: results, Pareto frontier, rows and summary files."""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from larsbench.feed import feed_markdown
from larsbench.profile.schema import ReferenceConfig
from larsbench.reference import reference_columns, sweep_reference
from larsbench.results import RunResult, fold_run, fold_training
from larsbench.rundir import (
    QUEUED,
    UNREADABLE,
    RunPaths,
    SweepPaths,
    read_json,
    read_json_object,
    write_json_atomic,
)
from larsbench.scaling import scaling_markdown, scaling_rows
from larsbench.summary_advice import (
    DEFAULT_MIN_SPEEDUP,
    DEFAULT_TOLERANCE,
    finite,
    pareto_frontier,
    recommend,
)
from larsbench.summary_format import (
    format_console_table,
    render_markdown,
    render_png,
)

__all__ = [
    "REFERENCE_FIELDS",
    "ROW_FIELDS",
    "SORT_KEYS",
    "SYSTEM_FIELDS",
    "SummaryFiles",
    "format_console_table",
    "load_results",
    "pareto_frontier",
    "recommend",
    "summary_rows",
    "sweep_name",
    "write_summary",
]

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


@dataclass(frozen=True)
class SummaryFiles:
    """The files write_summary wrote, and what they hold (for the console to print)."""

    md: Path
    csv: Path
    json: Path
    png: Path
    name: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)
    frontier: list[str] = field(default_factory=list)
    recommendation: str = ""
    unreadable: list[str] = field(default_factory=list)  # damaged files, "PATH: why"


def load_results(sweep_dir: str | os.PathLike[str]) -> list[RunResult]:
    """One result per run in sweep order (see load_run_result)."""
    sweep = SweepPaths(Path(sweep_dir))
    planned = _planned_configs(sweep)
    return [load_run_result(sweep.run(r), planned.get(r, {})) for r in sweep.run_ids()]


def load_run_result(run: RunPaths, planned: dict[str, Any] | None = None) -> RunResult:
    """result.json when written, else folded from events; a queued run from its `planned`
    config. A damaged file never raises; the result's `unreadable` names it."""
    stored, problem = read_json_object(run.result)
    if stored is not None:
        try:
            result = RunResult.from_dict({**stored, "run_id": run.run_id})
        except ValueError as err:
            problem = f"{run.result}: {err}"
        else:
            status = run.read_status()
            if status["state"] == UNREADABLE:  # result.json still tells how the run ended
                result.unreadable = [status["reason"]]
            return result
    if run.config.exists() or problem or planned is None:
        result = fold_run(run)
    else:
        # Queued: no config.json yet, but sweep.json knows what the run will be.
        result = fold_training(run.run_id, planned, [])
        status = run.read_status()
        result.status = status.get("state") or QUEUED
        result.reason = status.get("reason", "")
        if result.status == UNREADABLE:
            result.unreadable = [result.reason]
    if problem:
        result.unreadable.insert(0, problem)
    return result


def _planned_configs(sweep: SweepPaths) -> dict[str, dict[str, Any]]:
    data = read_json(sweep.sweep)
    runs = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(runs, list):
        return {}
    return {
        r["run_id"]: r for r in runs if isinstance(r, dict) and isinstance(r.get("run_id"), str)
    }


def sweep_name(sweep_dir: str | os.PathLike[str]) -> str:
    """The sweep's name from sweep.json, else a run's profile name, else the folder name."""
    sweep = SweepPaths(Path(sweep_dir))
    data = read_json(sweep.sweep)
    if isinstance(data, dict) and data.get("name"):
        return str(data["name"])
    for run_id in sweep.run_ids():
        config = read_json(sweep.run(run_id).config)
        if isinstance(config, dict) and config.get("profile_name"):
            return str(config["profile_name"])
    return sweep.root.resolve().name


def _number(value: Any) -> Any:
    """A JSON/CSV-friendly value: NaN and infinities become None (blank)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _row(
    result: RunResult, on_frontier: bool, reference: ReferenceConfig | None = None
) -> dict[str, Any]:
    row = {
        name: _number(getattr(result, name, None))
        for name in ROW_FIELDS
        if name not in REFERENCE_FIELDS
    }
    row.update(reference_columns(result.run_id, result.top1, reference))
    row = {name: row[name] for name in ROW_FIELDS}
    system = result.system if isinstance(result.system, dict) else {}
    for key in SYSTEM_FIELDS:
        value = system.get(key)
        numeric = isinstance(value, (int, float)) and (
            isinstance(value, bool) or math.isfinite(value)
        )
        row[key] = value if numeric else None
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


def write_summary(
    sweep_dir: str | os.PathLike[str],
    sort: str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    min_speedup: float = DEFAULT_MIN_SPEEDUP,
    with_reference: bool = True,
) -> SummaryFiles:
    """Write summary.md, .csv, .json and .png into the sweep folder from what is on disk
    (sorted by `sort`, else by `default_sort`), with the [reference] of SWEEP/profile.toml
    as it reads now (ConfigError when that table is bad; `with_reference=False`: none)."""
    sweep = SweepPaths(Path(sweep_dir))
    reference = sweep_reference(sweep.root) if with_reference else None
    results = load_results(sweep.root)
    name = sweep_name(sweep.root)
    frontier = pareto_frontier(results)
    sort = sort or default_sort(results)
    rows = summary_rows(results, sort=sort, frontier=frontier, reference=reference)
    advice = recommend(results, tolerance=tolerance, min_speedup=min_speedup, reference=reference)
    _meta, sweep_problem = read_json_object(sweep.sweep)
    unreadable = [sweep_problem] if sweep_problem else []
    unreadable += [p for r in results for p in r.unreadable]
    files = SummaryFiles(
        md=sweep.summary("md"),
        csv=sweep.summary("csv"),
        json=sweep.summary("json"),
        png=sweep.summary("png"),
        name=name,
        rows=rows,
        frontier=[r.run_id for r in results if r.run_id in frontier],
        recommendation=advice,
        unreadable=unreadable,
    )
    write_json_atomic(
        files.json,
        {
            "name": name,
            "sort": sort,
            "rows": rows,
            "frontier": files.frontier,
            "recommendation": advice,
            "reference": reference.model_dump() if reference is not None else None,
            "unreadable": unreadable,
        },
    )
    _write_atomic(files.csv, _csv_text(rows).encode("utf-8"))
    extra = feed_markdown(sweep.root) + scaling_markdown(scaling_rows(results))
    _write_atomic(files.md, render_markdown(name, rows, advice, sort, extra).encode("utf-8"))
    _write_atomic(files.png, render_png(rows, name))
    return files


def _csv_text(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    fields = [*ROW_FIELDS, *SYSTEM_FIELDS, "pareto"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in fields})
    return out.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    """Write bytes so that a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""Writes a sweep's summary.md, .csv, .json and .png (atomically) from what is on disk."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from larsbench.feed import feed_markdown
from larsbench.reference import sweep_reference
from larsbench.rundir import SweepPaths, read_json_object, write_json_atomic
from larsbench.summary.advice import (
    DEFAULT_MIN_SPEEDUP,
    DEFAULT_TOLERANCE,
    pareto_frontier,
    recommend,
)
from larsbench.summary.figure import render_png
from larsbench.summary.load import load_results, sweep_name
from larsbench.summary.markdown import render_markdown
from larsbench.summary.rows import ROW_FIELDS, SYSTEM_FIELDS, default_sort, summary_rows
from larsbench.summary.scaling import scaling_markdown, scaling_rows


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

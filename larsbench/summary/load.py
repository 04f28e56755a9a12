"""A sweep's results as they stand on disk: result.json, else the folded events, else the plan."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from larsbench.results import RunResult, fold_run, fold_training
from larsbench.rundir import QUEUED, UNREADABLE, RunPaths, SweepPaths, read_json, read_json_object


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

"""A sweep made ready: the validated plan, the check that --out holds this sweep, its files."""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from larsbench.plan.expand import expand
from larsbench.plan.machine import Machine
from larsbench.plan.run import RunConfig
from larsbench.profile.errors import ConfigError
from larsbench.profile.files import read_profile_file
from larsbench.profile.loading import check_reference_ids, parse_profile
from larsbench.profile.overrides import apply_overrides
from larsbench.profile.schema import Profile
from larsbench.rundir import (
    COMPLETED,
    QUEUED,
    RunPaths,
    SweepPaths,
    read_json,
    read_json_object,
    write_json_atomic,
)


@dataclass(frozen=True)
class SweepPlan:
    """A validated profile and its expanded runs, ready to launch."""

    profile: Profile
    profile_path: Path
    profile_text: str
    overrides: list[tuple[str, Any]]
    runs: list[RunConfig]

    def rendezvous_id(self, run: RunConfig) -> str:
        """The torchrun rendezvous every node of the run joins."""
        return f"{self.profile.name}-{run.run_id}"


def prepare_sweep(
    profile_path: Path, overrides: list[tuple[str, Any]], machine: Machine
) -> SweepPlan:
    """Read, override, validate and expand a profile; raises ConfigError naming file and key."""
    text, raw = read_profile_file(profile_path)
    written = raw
    raw = apply_overrides(raw, overrides)
    source = str(profile_path) + (" with --set" if overrides else "")
    profile = parse_profile(raw, source)
    runs = expand(profile, machine, source)
    ids = [r.run_id for r in runs]
    if overrides:  # the reference names the runs as written; --set may have narrowed them
        with contextlib.suppress(ConfigError):
            ids += [
                r.run_id for r in expand(parse_profile(written), machine) if r.run_id not in ids
            ]
    check_reference_ids(profile.reference, ids, str(profile_path))
    return SweepPlan(profile, profile_path, text, overrides, runs)


def _archive_attempt(paths: RunPaths) -> None:
    """Move a previous attempt's files under attempts/N so nothing is lost."""
    if not paths.events_dir.exists() and not paths.logs_dir.exists():
        return
    attempts = paths.root / "attempts"
    n = len(list(attempts.glob("*"))) + 1 if attempts.exists() else 1
    dest = attempts / str(n)
    dest.mkdir(parents=True, exist_ok=True)
    items = (paths.events_dir, paths.logs_dir, paths.checkpoints_dir, paths.status, paths.result)
    for item in items:
        if item.exists():
            shutil.move(str(item), str(dest / item.name))


def write_sweep_files(plan: SweepPlan, out: SweepPaths, fresh: bool = False) -> list[RunConfig]:
    """profile.toml, sweep.json and each run's config.json; returns the runs still to do.

    An unfinished run with a checkpoint and the same configuration resumes from it; with
    `fresh`, or a changed configuration, its earlier files move under attempts/N instead.
    """
    check_same_sweep(plan, out)
    out.root.mkdir(parents=True, exist_ok=True)
    out.profile.write_text(plan.profile_text, encoding="utf-8")
    write_json_atomic(
        out.sweep,
        {
            "name": plan.profile.name,
            "description": plan.profile.description,
            "profile": str(plan.profile_path),
            "overrides": [f"{k}={v!r}" for k, v in plan.overrides],
            "created": round(time.time(), 3),
            "runs": [{"run_id": r.run_id, "config": r.to_dict()} for r in plan.runs],
        },
    )
    todo = []
    for run in plan.runs:
        paths = out.run(run.run_id)
        old = read_json(paths.config)
        state = paths.read_status().get("state", QUEUED)
        if state == COMPLETED and old is not None:
            continue  # check_same_sweep: the same configuration
        resumable = old == run.to_dict() and paths.has_checkpoint() and not fresh
        if old is not None and not resumable:
            _archive_attempt(paths)
        write_json_atomic(paths.config, run.to_dict())
        paths.write_status(QUEUED)
        todo.append(run)
    return todo


def check_same_sweep(plan: SweepPlan, out: SweepPaths) -> None:
    """Before anything is written: ConfigError when --out holds another profile's sweep, or
    a run completed under one of the plan's run ids with another configuration."""
    meta, problem = read_json_object(out.sweep)
    if problem:
        raise ConfigError(
            f"--out {out.root}: {problem}; move it away or use another --out (nothing written)"
        )
    if meta is not None and meta.get("name") != plan.profile.name:
        raise ConfigError(
            f"--out {out.root}: holds the sweep of profile {meta.get('name')!r}, not "
            f"{plan.profile.name!r} ({out.sweep}); use another --out to keep both"
        )
    for run in plan.runs:
        paths = out.run(run.run_id)
        old, _problem = read_json_object(paths.config)  # a damaged one is redone, archived
        if old is None or paths.read_status().get("state") != COMPLETED:
            continue
        if old != run.to_dict():
            changed = _diff_keys(old, run.to_dict())
            raise ConfigError(
                f"{paths.root}: completed with a different configuration ({changed}); "
                "use another --out to keep both"
            )


def _diff_keys(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> str:
    diffs = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            inner = _diff_keys(va, vb, f"{prefix}{key}.")
            if inner:
                diffs.append(inner)
        elif va != vb:
            diffs.append(f"{prefix}{key} {va!r} -> {vb!r}")
    return ", ".join(diffs)

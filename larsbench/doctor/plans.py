"""The doctor's sweeps: the user's profile with the doctor's settings and sweep, run for real."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from larsbench.events import SourcedEvent
from larsbench.plan.expand import expand
from larsbench.plan.machine import Machine
from larsbench.plan.run import RunConfig
from larsbench.profile.files import profile_tables
from larsbench.profile.loading import parse_profile
from larsbench.profile.overrides import apply_overrides
from larsbench.results import RunResult
from larsbench.rundir import SweepPaths
from larsbench.sweep.observers import QuietObserver
from larsbench.sweep.prepare import SweepPlan
from larsbench.sweep.runner import SweepRunner

_active: list[SweepRunner] = []  # the runner of the check now running, for request_stop
_stopped: list[str] = []


def request_stop(why: str = "doctor stopped") -> None:
    """From a signal handler: stop the run in progress (its torchrun group) and what is left."""
    _stopped.append(why)
    for runner in _active:
        runner.stop_sweep(why)


def stop_requested() -> bool:
    return bool(_stopped)


# Every doctor run is local to this node, however many nodes the profile trains on.
LOCAL = [("launch.nnodes", 1), ("launch.rdzv_endpoint", ""), ("launch.max_restarts", 0)]


def doctor_plan(
    base: SweepPlan,
    overrides: list[tuple[str, Any]],
    sweep: dict[str, list[Any]],
    machine: Machine,
) -> SweepPlan:
    """The user's profile (and --set) with the doctor's `overrides` set and its sweep replaced
    by `sweep` (ConfigError if bad)."""
    source = f"{base.profile_path} (doctor)"
    settings = [*base.overrides, *LOCAL, *overrides]
    raw = apply_overrides(profile_tables(base.profile_text, source), settings, source)
    raw["sweep"] = sweep
    profile = parse_profile(raw, source)
    settings += [(f"sweep.{k}", v) for k, v in sweep.items()]
    runs = expand(profile, machine, source)
    return SweepPlan(profile, base.profile_path, base.profile_text, settings, runs)


@dataclass
class EventLog(QuietObserver):
    """Keeps each run's rank-0 events as they arrive; `on_event` may ask the runner to stop."""

    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    on_event: Any = None  # callable(run_id, event) or None
    runner: SweepRunner | None = None  # set by run_plan, so that on_event can stop a run

    def run_events(self, run: RunConfig, events: list[SourcedEvent]) -> None:
        for e in events:
            if e.source != "rank0":
                continue
            self.events.setdefault(run.run_id, []).append(e.event)
            if self.on_event is not None:
                self.on_event(run.run_id, e.event)


def run_plan(plan: SweepPlan, out: Path, observer: EventLog | None = None) -> list[RunResult]:
    """Each run of the plan through the sweep runner and torchrun, as `larsbench run` does."""
    observer = observer or EventLog()
    runner = SweepRunner(plan, SweepPaths(out), observer, poll_seconds=0.1, telemetry=False)
    observer.runner = runner
    if stop_requested():
        return []
    _active.append(runner)
    try:
        return runner.run()
    finally:
        _active.remove(runner)

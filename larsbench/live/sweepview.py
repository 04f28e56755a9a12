"""The sweep-level snapshot the screens render: runs and states, runner, progress, ETA, results."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from larsbench.format import finite
from larsbench.live.views import RunView
from larsbench.profile.schema import ReferenceConfig
from larsbench.results import RunResult
from larsbench.rundir import FINAL_STATES, QUEUED, RUNNING


@dataclass(frozen=True)
class RunStatus:
    """One run of the sweep as status.json tells it."""

    run_id: str
    state: str = QUEUED
    reason: str = ""


@dataclass(frozen=True)
class SweepView:
    """What the watcher read, as one immutable snapshot; screens only ever read these."""

    root: Path
    name: str
    is_sweep: bool
    runs: tuple[RunStatus, ...] = ()
    runner_state: str = ""  # runner.json: running | finished | stopped | failed; "" when none
    runner_pid: int | None = None
    runner_alive: bool = False  # the runner process exists on this host
    current: str | None = None  # the run the runner is on
    focus: str | None = None  # the run the live screen shows
    following: bool = True  # the focus follows the runner (False: a chosen run, replayed)
    run: RunView | None = None
    results: tuple[RunResult, ...] = ()
    frontier: frozenset[str] = frozenset()
    reference: ReferenceConfig | None = None  # the profile's [reference] table, if any
    recommendation: str = ""
    now: float = math.nan  # the injected clock when the snapshot was taken
    error: str = ""
    unreadable: tuple[str, ...] = ()  # damaged files, each "PATH: why"; the rest is shown
    seq: int = 0  # increases with every snapshot
    results_seq: int = 0  # increases when results were reloaded

    @property
    def unreadable_note(self) -> str:
        """The first damaged file and how many more: "" when every file read."""
        if not self.unreadable:
            return ""
        more = f" (+{len(self.unreadable) - 1} more)" if len(self.unreadable) > 1 else ""
        return f"unreadable: {self.unreadable[0]}{more}"

    @property
    def total(self) -> int:
        return len(self.runs)

    @property
    def done(self) -> int:
        return sum(1 for r in self.runs if r.state in FINAL_STATES)

    @property
    def live(self) -> bool:
        """A runner is still working on this sweep (so stopping it means something)."""
        return self.runner_alive and self.runner_state == RUNNING

    @property
    def finished(self) -> bool:
        """Nothing more will happen unless someone launches again."""
        if self.live:
            return False
        if self.runner_state:
            return True
        return all(r.state in FINAL_STATES for r in self.runs) if self.runs else True

    def index_of(self, run_id: str | None) -> int:
        """1-based position of a run in the sweep, 0 when unknown."""
        for i, r in enumerate(self.runs, start=1):
            if r.run_id == run_id:
                return i
        return 0

    def state_of(self, run_id: str | None) -> str:
        for r in self.runs:
            if r.run_id == run_id:
                return r.state
        return ""

    def eta_sweep(self) -> float:
        """The focused run's ETA plus, for each queued run, the mean duration of finished ones
        (or the focused run's projected duration when none has finished yet)."""
        run = self.run
        if not self.live or run is None or not finite(run.eta_seconds):
            return math.nan
        queued = sum(1 for r in self.runs if r.state == QUEUED)
        walls = [
            r.wall_seconds
            for r in self.results
            if r.status in FINAL_STATES and finite(r.wall_seconds) and r.wall_seconds > 0
        ]
        if walls:
            each = sum(walls) / len(walls)
        elif finite(run.started_t) and finite(run.last_event_t):
            each = run.last_event_t - run.started_t + run.eta_seconds
        else:
            return math.nan
        return run.eta_seconds + queued * each

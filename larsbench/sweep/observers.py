"""What a sweep tells its views: the observer protocol, a silent one and a fan-out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from larsbench.events import SourcedEvent
from larsbench.plan.run import RunConfig
from larsbench.results import RunResult
from larsbench.rundir import RunPaths, SweepPaths
from larsbench.sweep.prepare import SweepPlan


class SweepObserver(Protocol):
    """What a view is told; the headless printer and tests implement it."""

    def sweep_started(self, plan: SweepPlan, out: SweepPaths) -> None: ...
    def run_skipped(self, run: RunConfig, result: RunResult) -> None: ...
    def run_started(self, run: RunConfig, paths: RunPaths, index: int, total: int) -> None: ...
    def run_events(self, run: RunConfig, events: list[SourcedEvent]) -> None: ...
    def run_finished(self, run: RunConfig, result: RunResult) -> None: ...
    def sweep_finished(self, results: list[RunResult], out: SweepPaths) -> None: ...


class QuietObserver:
    """Tells nobody anything (tests, and callers that only want the files)."""

    def sweep_started(self, plan: SweepPlan, out: SweepPaths) -> None: ...
    def run_skipped(self, run: RunConfig, result: RunResult) -> None: ...
    def run_started(self, run: RunConfig, paths: RunPaths, index: int, total: int) -> None: ...
    def run_events(self, run: RunConfig, events: list[SourcedEvent]) -> None: ...
    def run_finished(self, run: RunConfig, result: RunResult) -> None: ...
    def sweep_finished(self, results: list[RunResult], out: SweepPaths) -> None: ...


@dataclass
class FanOutObserver:
    """Tells each of several observers in turn (the console view and the live exports)."""

    observers: list[Any]

    def sweep_started(self, plan: SweepPlan, out: SweepPaths) -> None:
        for o in self.observers:
            o.sweep_started(plan, out)

    def run_skipped(self, run: RunConfig, result: RunResult) -> None:
        for o in self.observers:
            o.run_skipped(run, result)

    def run_started(self, run: RunConfig, paths: RunPaths, index: int, total: int) -> None:
        for o in self.observers:
            o.run_started(run, paths, index, total)

    def run_events(self, run: RunConfig, events: list[SourcedEvent]) -> None:
        for o in self.observers:
            o.run_events(run, events)

    def run_finished(self, run: RunConfig, result: RunResult) -> None:
        for o in self.observers:
            o.run_finished(run, result)

    def sweep_finished(self, results: list[RunResult], out: SweepPaths) -> None:
        for o in self.observers:
            o.sweep_finished(results, out)

"""Multi-node following: node K > 0 of a sweep joins each run that node 0 starts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from larsbench import launch
from larsbench.plan.run import RunConfig
from larsbench.results import RunResult, fold_run
from larsbench.rundir import COMPLETED, RUNNING, RunPaths, SweepPaths
from larsbench.runner_file import SWEEP_ENDED, read_runner
from larsbench.sweep.observers import SweepObserver
from larsbench.sweep.prepare import SweepPlan
from larsbench.sweep.run_sampler import RunSampler


@dataclass
class LeaderFollower:
    """Node K > 0 of a multi-node sweep. Node 0 owns every file but this node's
    events/system-NODE.jsonl and torchrun log; for each run node 0 starts, this node
    starts its own torchrun agent, which joins the same rendezvous."""

    plan: SweepPlan
    out: SweepPaths
    observer: SweepObserver
    node: str  # this node's name in its system events and torchrun log
    poll_seconds: float
    start_sampler: Callable[[RunConfig, RunPaths], RunSampler | None]
    stop_requested: Callable[[], str]  # why the sweep stops; "" while it goes on
    _started: float = 0.0

    def run(self) -> list[RunResult]:
        self._started = round(time.time(), 3)
        self.observer.sweep_started(self.plan, self.out)
        total = len(self.plan.runs)
        for index, run in enumerate(self.plan.runs, start=1):
            paths = self.out.run(run.run_id)
            if not self.leader_runs(run.run_id, paths):
                continue
            self.observer.run_started(run, paths, index, total)
            sampler = None
            try:
                sampler = self.start_sampler(run, paths)
            except Exception:
                sampler = None  # hardware reads never stop a run
            group = launch.start(
                run, paths, self.plan.rendezvous_id(run), log_name=f"torchrun-{self.node}"
            )
            try:
                while group.poll() is None:
                    if sampler is not None:
                        sampler.track(group.pid, run.nproc_per_node)
                    if self.stop_requested():
                        group.stop()
                        break
                    time.sleep(self.poll_seconds)
            finally:
                if sampler is not None:
                    sampler.stop()
            while paths.read_status().get("state") == RUNNING and not self.stop_requested():
                time.sleep(self.poll_seconds)  # node 0 decides how the run ended
            self.observer.run_finished(run, fold_run(paths))
            if self.stop_requested():
                break
        return [fold_run(self.out.run(r.run_id)) for r in self.plan.runs]

    def leader_runs(self, run_id: str, paths: RunPaths) -> bool:
        """Wait until node 0 starts this run (True) or passes it by (False)."""
        while not self.stop_requested():
            runner = read_runner(self.out)
            if runner.current == run_id and runner.running:
                return True
            if paths.read_status().get("state") == COMPLETED:
                return False  # done before: node 0 skips it too
            ended = runner.data.get("state") in SWEEP_ENDED
            if ended and runner.data.get("t", 0) >= self._started:  # not a previous sweep's
                return False
            time.sleep(self.poll_seconds)
        return False

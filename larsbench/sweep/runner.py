"""Runs a profile's runs in turn, one torchrun group at a time; skips completed runs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from larsbench import launch
from larsbench.events import RunTail, iter_kind, read_events
from larsbench.plan.run import RunConfig
from larsbench.results import RunResult, fold_run
from larsbench.rundir import (
    COMPLETED,
    DIVERGED,
    FAILED,
    RUNNING,
    STOPPED,
    RunPaths,
    SweepPaths,
    node_name,
    write_json_atomic,
)
from larsbench.runner_file import SWEEP_FINISHED, SWEEP_STOPPED, claim, write_runner
from larsbench.sweep.follower import LeaderFollower
from larsbench.sweep.observers import QuietObserver, SweepObserver
from larsbench.sweep.prepare import SweepPlan, check_same_sweep, write_sweep_files
from larsbench.sweep.run_sampler import RunSampler
from larsbench.sweep.stall_watch import StallWatch


@dataclass
class SweepRunner:
    """Runs the runs of a plan in order. Signal handlers call stop_run / stop_sweep."""

    plan: SweepPlan
    out: SweepPaths
    observer: SweepObserver = field(default_factory=QuietObserver)
    poll_seconds: float = 0.5
    sample_seconds: float = 1.0
    telemetry: bool = True
    fresh: bool = False
    stall_seconds: float = 120.0
    node_rank: int = 0
    _stop_run: str = ""
    _stop_sweep: str = ""
    _started: float = 0.0  # when this runner took the sweep (runner.json's "started")

    def stop_run(self, why: str = "stopped by user") -> None:
        self._stop_run = why

    def stop_sweep(self, why: str = "stopped by user") -> None:
        self._stop_sweep = why

    @property
    def node(self) -> str:
        """This node's name in events/system-NODE.jsonl and its torchrun log."""
        multi = any(r.launch.nnodes > 1 for r in self.plan.runs)
        return f"{node_name()}-n{self.node_rank}" if multi else node_name()

    def run(self) -> list[RunResult]:
        if self.node_rank > 0:
            return LeaderFollower(
                self.plan,
                self.out,
                self.observer,
                self.node,
                self.poll_seconds,
                self._start_sampler,
                lambda: self._stop_sweep,
            ).run()
        check_same_sweep(self.plan, self.out)  # before the lock file: another sweep's
        self.out.root.mkdir(parents=True, exist_ok=True)  # folder is left as it was
        lock = claim(self.out)
        try:
            return self._run_all()
        finally:
            lock.release()

    def _run_all(self) -> list[RunResult]:
        self._started = round(time.time(), 3)
        todo = {r.run_id for r in write_sweep_files(self.plan, self.out, self.fresh)}
        write_runner(self.out, RUNNING, None, self._started)
        self.observer.sweep_started(self.plan, self.out)
        total = len(self.plan.runs)
        try:
            for index, run in enumerate(self.plan.runs, start=1):
                paths = self.out.run(run.run_id)
                if run.run_id not in todo:
                    self.observer.run_skipped(run, fold_run(paths))
                    continue
                if self._stop_sweep:
                    continue
                write_runner(self.out, RUNNING, run.run_id, self._started)
                result = self.run_one(run, paths, index, total)
                self.observer.run_finished(run, result)
        finally:
            results = [fold_run(self.out.run(r.run_id)) for r in self.plan.runs]
            ended = SWEEP_STOPPED if self._stop_sweep else SWEEP_FINISHED
            write_runner(self.out, ended, None, self._started)
        self.observer.sweep_finished(results, self.out)
        return results

    def run_one(self, run: RunConfig, paths: RunPaths, index: int, total: int) -> RunResult:
        self._stop_run = ""
        paths.write_status(RUNNING, started=round(time.time(), 3))
        self.observer.run_started(run, paths, index, total)
        tail = RunTail(paths.root)
        state, reason = FAILED, ""
        sampler, telemetry_error = None, ""
        try:
            sampler = self._start_sampler(run, paths)
        except Exception as err:  # hardware reads never stop a run
            telemetry_error = f"telemetry off: {type(err).__name__}: {err}"
        try:
            group = launch.start(run, paths, self.plan.rendezvous_id(run))
            paths.write_status(
                RUNNING,
                started=round(group.started, 3),
                torchrun_pid=group.pid,
                telemetry_error=telemetry_error,
            )
            watch = StallWatch(self.stall_seconds)
            while (code := group.poll()) is None:
                if sampler is not None:
                    sampler.track(group.pid, run.nproc_per_node)
                events = tail.read_new()
                self.observer.run_events(run, events)
                changed = watch.update(events, time.monotonic())
                if changed is not None:
                    paths.write_status(
                        RUNNING,
                        started=round(group.started, 3),
                        torchrun_pid=group.pid,
                        telemetry_error=telemetry_error,
                        stalled=changed,
                        stalled_reason=watch.reason if changed else "",
                    )
                why = self._stop_sweep or self._stop_run
                if why:
                    code = group.stop()
                    state, reason = STOPPED, why
                    break
                time.sleep(self.poll_seconds)
            if state != STOPPED:
                state, reason = self._outcome(paths, code, group.log_path)
        except Exception as err:  # the sweep goes on; the run is recorded as failed
            state, reason = FAILED, f"{type(err).__name__}: {err}"
        finally:
            if sampler is not None:
                sampler.stop()
            self.observer.run_events(run, tail.read_new())
            paths.write_status(state, reason)
        result = fold_run(paths)
        write_json_atomic(paths.result, result.to_dict())
        return result

    @staticmethod
    def _outcome(paths: RunPaths, code: int, log_path: Path) -> tuple[str, str]:
        end = next(iter_kind(read_events(paths.rank0_events), "run_end"), None)
        if end is not None and end.get("status") == DIVERGED:
            return DIVERGED, end.get("reason", "")
        if code == 0 and end is not None:
            return COMPLETED, ""
        if code == 0:
            return FAILED, "the workers exited without a run_end event"
        return FAILED, launch.failure_reason(log_path, code)

    def _start_sampler(self, run: RunConfig, paths: RunPaths) -> RunSampler | None:
        if not self.telemetry:
            return None
        return RunSampler.start(run, paths, self.sample_seconds, self.node)

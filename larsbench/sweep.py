"""Runs a profile's runs in turn, one torchrun group at a time; skips completed runs."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from larsbench import launch
from larsbench.events import EventWriter, RunTail, SourcedEvent, iter_kind, read_events
from larsbench.plan.expand import expand
from larsbench.plan.machine import Machine
from larsbench.plan.run import RunConfig
from larsbench.profile.errors import ConfigError
from larsbench.profile.files import read_profile_file
from larsbench.profile.loading import check_reference_ids, parse_profile
from larsbench.profile.overrides import apply_overrides
from larsbench.profile.schema import Profile
from larsbench.results import RunResult, fold_run
from larsbench.rundir import (
    COMPLETED,
    DIVERGED,
    FAILED,
    QUEUED,
    RUNNING,
    STOPPED,
    RunPaths,
    SweepPaths,
    node_name,
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


class SweepBusyError(RuntimeError):
    """Another live `larsbench run` owns this output directory."""


LOCK_FILE = ".larsbench.lock"


@dataclass
class SweepLock:
    """An flock on SWEEP/.larsbench.lock held while `larsbench run` owns the folder; the file
    holds the owner's pid. The kernel drops the lock when the process dies, however it dies."""

    path: Path
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def claim(out: SweepPaths) -> SweepLock:
    """Own the sweep folder, or SweepBusyError naming the pid of the process that does."""
    import fcntl

    path = out.root / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise SweepBusyError(
            f"--out {out.root}: another larsbench run (pid {holder}) is running this sweep; "
            "wait for it, stop it, or use another --out"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return SweepLock(path, fd)


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

    def stop_run(self, why: str = "stopped by user") -> None:
        self._stop_run = why

    def stop_sweep(self, why: str = "stopped by user") -> None:
        self._stop_sweep = why

    def _write_runner(self, state: str, current: str | None) -> None:
        write_json_atomic(
            self.out.runner,
            {
                "pid": os.getpid(),
                "host": node_name(),
                "started": self._started,
                "state": state,
                "current": current,
                "t": round(time.time(), 3),
            },
        )

    @property
    def node(self) -> str:
        """This node's name in events/system-NODE.jsonl and its torchrun log."""
        multi = any(r.launch.nnodes > 1 for r in self.plan.runs)
        return f"{node_name()}-n{self.node_rank}" if multi else node_name()

    def _rdzv_id(self, run: RunConfig) -> str:
        return f"{self.plan.profile.name}-{run.run_id}"

    def run(self) -> list[RunResult]:
        if self.node_rank > 0:
            return self._follow()
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
        self._write_runner("running", None)
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
                self._write_runner("running", run.run_id)
                result = self.run_one(run, paths, index, total)
                self.observer.run_finished(run, result)
        finally:
            results = [fold_run(self.out.run(r.run_id)) for r in self.plan.runs]
            self._write_runner("stopped" if self._stop_sweep else "finished", None)
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
            group = launch.start(run, paths, self._rdzv_id(run))
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

    def _follow(self) -> list[RunResult]:
        """Node K > 0 of a multi-node sweep. Node 0 owns every file but this node's
        events/system-NODE.jsonl and torchrun log; for each run node 0 starts, this node
        starts its own torchrun agent, which joins the same rendezvous."""
        self._started = round(time.time(), 3)
        self.observer.sweep_started(self.plan, self.out)
        total = len(self.plan.runs)
        for index, run in enumerate(self.plan.runs, start=1):
            paths = self.out.run(run.run_id)
            if not self._leader_runs(run.run_id, paths):
                continue
            self.observer.run_started(run, paths, index, total)
            sampler = None
            try:
                sampler = self._start_sampler(run, paths)
            except Exception:
                sampler = None  # hardware reads never stop a run
            group = launch.start(run, paths, self._rdzv_id(run), log_name=f"torchrun-{self.node}")
            try:
                while group.poll() is None:
                    if sampler is not None:
                        sampler.track(group.pid, run.nproc_per_node)
                    if self._stop_sweep:
                        group.stop()
                        break
                    time.sleep(self.poll_seconds)
            finally:
                if sampler is not None:
                    sampler.stop()
            while paths.read_status().get("state") == RUNNING and not self._stop_sweep:
                time.sleep(self.poll_seconds)  # node 0 decides how the run ended
            self.observer.run_finished(run, fold_run(paths))
            if self._stop_sweep:
                break
        return [fold_run(self.out.run(r.run_id)) for r in self.plan.runs]

    def _leader_runs(self, run_id: str, paths: RunPaths) -> bool:
        """Wait until node 0 starts this run (True) or passes it by (False)."""
        while not self._stop_sweep:
            runner = read_json(self.out.runner) or {}
            if runner.get("current") == run_id and runner.get("state") == RUNNING:
                return True
            if paths.read_status().get("state") == COMPLETED:
                return False  # done before: node 0 skips it too
            ended = runner.get("state") in ("finished", "stopped")
            if ended and runner.get("t", 0) >= self._started:  # not a previous sweep's file
                return False
            time.sleep(self.poll_seconds)
        return False

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


@dataclass
class StallWatch:
    """Flags a run whose training events stop for much longer than its usual gap."""

    floor_seconds: float
    factor: float = 10.0
    last_event: float | None = None
    gaps: list[float] = field(default_factory=list)
    stalled: bool = False
    reason: str = ""

    def limit(self) -> float:
        if not self.gaps:
            return self.floor_seconds
        typical = sorted(self.gaps)[len(self.gaps) // 2]
        return max(self.floor_seconds, self.factor * typical)

    def update(self, events: list[SourcedEvent], now: float) -> bool | None:
        """The new stalled state when it changed, else None."""
        if any(e.source == "rank0" for e in events):
            if self.last_event is not None:
                self.gaps = [*self.gaps[-49:], now - self.last_event]
            self.last_event = now
            if self.stalled:
                self.stalled, self.reason = False, ""
                return False
            return None
        if self.last_event is None or self.stalled:
            return None
        quiet = now - self.last_event
        if quiet > self.limit():
            self.stalled = True
            self.reason = f"no training event for {quiet:.0f} s (limit {self.limit():.0f} s)"
            return True
        return None


@dataclass
class RunSampler:
    """The node's telemetry sampler for one run, told the ranks' pids once they exist."""

    sampler: Any
    writer: EventWriter
    ranks: dict[int, int] = field(default_factory=dict)
    checked: float = 0.0
    RECHECK_SECONDS = 5.0  # ranks change when torchrun restarts the group

    @classmethod
    def start(cls, run: RunConfig, paths: RunPaths, interval: float, node: str) -> RunSampler:
        from larsbench.telemetry import Sampler

        writer = EventWriter(paths.system_events(node))
        sampler = Sampler(
            writer, interval=interval, device=run.device, local_world_size=run.nproc_per_node
        )
        sampler.start()
        return cls(sampler, writer)

    def track(self, torchrun_pid: int, ranks_on_node: int) -> None:
        """Tell the sampler the ranks' pids once they all exist, and again after a restart."""
        now = time.monotonic()
        if len(self.ranks) >= ranks_on_node and now - self.checked < self.RECHECK_SECONDS:
            return
        from larsbench.telemetry import find_rank_pids

        self.checked = now
        pids = find_rank_pids(torchrun_pid)
        if len(pids) >= ranks_on_node and pids != self.ranks:
            self.sampler.set_ranks(pids)
            self.ranks = pids

    def stop(self) -> None:
        self.sampler.stop()
        self.writer.close()

"""The file-tailing worker: polls a sweep or run directory and publishes SweepView snapshots."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.message import Message

from larsbench.events import RunTail
from larsbench.live.run_state import RunState
from larsbench.live.sweepview import RunStatus, SweepView
from larsbench.profile.errors import ConfigError
from larsbench.profile.schema import ReferenceConfig
from larsbench.reference import sweep_reference
from larsbench.results import RunResult
from larsbench.rundir import (
    QUEUED,
    RUNNING,
    RunPaths,
    SweepPaths,
    is_sweep_dir,
    read_json_object,
)
from larsbench.runner_file import RunnerInfo, read_runner
from larsbench.summary.advice import pareto_frontier, recommend
from larsbench.summary.load import load_results, load_run_result

Clock = Callable[[], float]

LOG_FILE = "torchrun.log"
LOG_BACKLOG_BYTES = 64 * 1024  # on attach, only the end of a long log is read


class SweepUpdated(Message):
    """A new snapshot of the watched directory. A newer one replaces an unhandled older one."""

    def __init__(self, view: SweepView) -> None:
        super().__init__()
        self.view = view

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SweepUpdated)


class LogTail:
    """Complete new lines of a text log, by byte offset; starts near the end of a long file."""

    def __init__(self, path: Path, backlog: int = LOG_BACKLOG_BYTES) -> None:
        self.path = path
        self.offset: int | None = None
        self.backlog = backlog

    def read_new(self) -> list[str]:
        try:
            size = self.path.stat().st_size
        except OSError:
            return []
        skip_partial = False
        if self.offset is None or size < self.offset:  # first read, or the file was replaced
            self.offset = max(0, size - self.backlog)
            skip_partial = self.offset > 0
        if size == self.offset:
            return []
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read(size - self.offset)
        except OSError:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        lines = chunk[: end + 1].decode("utf-8", errors="replace").splitlines()
        if skip_partial and lines:
            lines = lines[1:]
        return [line.rstrip("\r") for line in lines]


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


class SweepWatcher:
    """Reads a sweep (or single run) directory: statuses, runner, the focused run's events and log.

    `poll()` does one pass and returns a new SweepView when anything changed; `run()` loops on
    a thread. Only `focus()` and `wake()` may be called from another thread.
    """

    def __init__(
        self,
        root: Path,
        clock: Clock = time.time,
        interval: float = 0.5,
    ) -> None:
        self.root = Path(root)
        self.clock = clock
        self.interval = interval
        self.is_sweep = is_sweep_dir(self.root)
        self.sweep = SweepPaths(self.root)
        self._lock = threading.Lock()
        self._requested: str | None = None
        self._wake = threading.Event()
        self._mtimes: dict[Path, float | None] = {}
        self._sweep_meta: dict[str, Any] = {}
        self._runner = RunnerInfo()
        self._statuses: dict[str, dict[str, Any]] = {}
        self._run_ids: list[str] = []
        self._results: tuple[RunResult, ...] = ()
        self._frontier: frozenset[str] = frozenset()
        self._reference: ReferenceConfig | None = None
        self._recommendation = ""
        self._results_dirty = True
        self._results_seq = 0
        self._focus: str | None = None
        self._state: RunState | None = None
        self._tail: RunTail | None = None
        self._log: LogTail | None = None
        self._seq = 0
        self._last_key: tuple[Any, ...] | None = None
        self._problems: dict[str, str] = {}  # damaged file -> "PATH: why"

    # --- called from the UI thread ----------------------------------------------------------

    def focus(self, run_id: str | None) -> None:
        """Show this run (replay from its start); None: follow the run the runner is on."""
        with self._lock:
            self._requested = run_id
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    # --- the worker --------------------------------------------------------------------------

    def run(self, publish: Callable[[SweepView], None], cancelled: Callable[[], bool]) -> None:
        """Poll until cancelled; publish a snapshot at most once per interval, only on change."""
        while not cancelled():
            view = self.poll()
            if view is not None and not cancelled():
                publish(view)
            self._wake.wait(self.interval)
            self._wake.clear()

    def _changed(self, path: Path) -> bool:
        m = _mtime(path)
        if path in self._mtimes and self._mtimes[path] == m:
            return False
        self._mtimes[path] = m
        return True

    def _read_sweep(self) -> None:
        if not self.is_sweep and is_sweep_dir(self.root):
            # A sweep just launched: sweep.json appears a moment after the folder.
            self.is_sweep = True
            self._set_focus(None)
        if not self.is_sweep:
            self._run_ids = [self.root.name]
            return
        if self._changed(self.sweep.sweep):
            data = self._read_object(self.sweep.sweep)
            self._sweep_meta = data or {}
            self._run_ids = self.sweep.run_ids()
            self._results_dirty = True
        if self._changed(self.sweep.runner):
            self._runner = read_runner(self.sweep)
            self._note(str(self.sweep.runner), self._runner.problem)

    def _read_object(self, path: Path) -> dict[str, Any] | None:
        """A JSON object file; a damaged one is noted in `unreadable` and reads as None."""
        data, problem = read_json_object(path)
        self._note(str(path), problem)
        return data

    def _note(self, key: str, problem: str) -> None:
        if problem:
            self._problems[key] = problem
        else:
            self._problems.pop(key, None)

    def _run_paths(self, run_id: str) -> RunPaths:
        return RunPaths(self.root) if not self.is_sweep else self.sweep.run(run_id)

    def _read_statuses(self) -> bool:
        changed = False
        for run_id in self._run_ids:
            paths = self._run_paths(run_id)
            if self._changed(paths.status):
                self._statuses[run_id] = paths.read_status()
                changed = True
            if self._changed(paths.result):
                changed = True
        if changed:
            self._results_dirty = True
        return changed

    def _planned_config(self, run_id: str) -> dict[str, Any]:
        runs = self._sweep_meta.get("runs")
        for r in runs if isinstance(runs, list) else []:
            if isinstance(r, dict) and r.get("run_id") == run_id:
                config = r.get("config")
                return config if isinstance(config, dict) else {}
        return {}

    def _follow_target(self) -> str | None:
        current = self._runner.current
        if current in self._run_ids and self._runner.running:
            return current
        for run_id in self._run_ids:
            if self._statuses.get(run_id, {}).get("state") == RUNNING:
                return run_id
        if self._focus in self._run_ids:
            return self._focus
        started = [
            r for r in self._run_ids if self._statuses.get(r, {}).get("state", QUEUED) != QUEUED
        ]
        if started:
            return started[-1]
        return self._run_ids[0] if self._run_ids else None

    def _set_focus(self, run_id: str | None) -> None:
        self._focus = run_id
        if run_id is None:
            self._state = self._tail = self._log = None
            return
        paths = self._run_paths(run_id)
        self._state = RunState(run_id)
        self._state.set_config(self._read_object(paths.config) or self._planned_config(run_id))
        self._tail = RunTail(paths.root)
        self._log = LogTail(paths.logs_dir / LOG_FILE)

    def _load_results(self) -> None:
        if self.is_sweep:
            results = load_results(self.root)
        else:
            results = [load_run_result(RunPaths(self.root))]
        self._results = tuple(results)
        for r in results:
            self._note(f"result:{r.run_id}", "; ".join(r.unreadable))
        self._frontier = frozenset(pareto_frontier(results))
        self._reference = None
        if self.is_sweep:
            try:  # the profile's [reference] as it reads now, as `larsbench report` does
                self._reference = sweep_reference(self.root)
                self._note("reference", "")
            except ConfigError as err:
                self._note("reference", str(err))
        try:
            self._recommendation = recommend(results, reference=self._reference)
        except Exception as err:  # a summary bug must not take the viewer down
            self._recommendation = f"(no recommendation: {type(err).__name__}: {err})"
        self._results_dirty = False
        self._results_seq += 1

    def poll(self) -> SweepView | None:
        """One pass over the files; a snapshot when anything changed since the last one."""
        if not self.root.is_dir():
            return self._publishable(error=f"{self.root}: no such directory")
        self._read_sweep()
        self._read_statuses()
        with self._lock:
            requested = self._requested
        following = requested is None or requested not in self._run_ids
        target = self._follow_target() if following else requested
        if target != self._focus or (self._state is None and target is not None):
            self._set_focus(target)
        state = self._state
        if state is not None and self._tail is not None and self._log is not None:
            status = self._statuses.get(state.run_id, {})
            if status.get("state") != state.status.get("state") and not state.config:
                state.set_config(self._read_object(self._run_paths(state.run_id).config) or {})
            state.set_status(status)
            for item in self._tail.read_new():
                try:
                    state.add(item.source, item.event)
                except (ValueError, TypeError, KeyError, AttributeError, IndexError) as err:
                    where = self._run_paths(state.run_id).events_dir / f"{item.source}.jsonl"
                    self._note(str(where), f"{where}: an event of unexpected shape ({err})")
            for tail in self._tail.tails.values():
                self._note(str(tail.path), tail.problem())
            state.add_log_lines(self._log.read_new())
        if self._results_dirty:
            self._load_results()
        return self._publishable(following=following)

    def _publishable(self, following: bool = True, error: str = "") -> SweepView | None:
        state = self._state
        alive = self._runner.alive()
        now = self.clock()
        key = (
            error,
            alive,
            # While a runner works, a snapshot every 10 s even without news: the header's
            # "no events for ..." warning needs the clock to move.
            int(now // 10) if alive else None,
            following,
            self._focus,
            state.version if state else -1,
            self._results_seq,
            tuple(sorted((k, str(v)) for k, v in self._runner.data.items())),
            tuple((r, self._statuses.get(r, {}).get("state")) for r in self._run_ids),
            tuple(self._problems.values()),
        )
        if key == self._last_key:
            return None
        self._last_key = key
        self._seq += 1
        runner = self._runner
        return SweepView(
            root=self.root,
            name=str(self._sweep_meta.get("name") or self.root.name),
            is_sweep=self.is_sweep,
            runs=tuple(
                RunStatus(
                    r,
                    str(self._statuses.get(r, {}).get("state") or QUEUED),
                    str(self._statuses.get(r, {}).get("reason") or ""),
                )
                for r in self._run_ids
            ),
            runner_state=runner.state,
            runner_pid=runner.pid,
            runner_alive=alive,
            current=runner.current,
            focus=self._focus,
            following=following,
            run=state.view() if state else None,
            results=self._results,
            frontier=self._frontier,
            reference=self._reference,
            recommendation=self._recommendation,
            now=now,
            error=error,
            unreadable=tuple(dict.fromkeys(self._problems.values())),
            seq=self._seq,
            results_seq=self._results_seq,
        )

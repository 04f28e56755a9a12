"""TensorBoard event files from a sweep's or run's event files: one TensorBoard run per run.

`larsbench export tensorboard DIR` writes them after the fact; with `[export] tensorboard =
true` in the profile, `larsbench run` writes the same files live (TensorBoardObserver). Both
read the runs' event files through larsbench.events, like every other viewer; the training
ranks never know. The files are written with TensorBoard's own event file writer and protocol
buffers (the `larsbench[tensorboard]` extra), which import neither torch nor TensorFlow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from larsbench.events import RunTail
from larsbench.export.tensorboard_points import (
    METRIC_TAGS,
    FoldState,
    Point,
    hparams_of,
    points_of,
)
from larsbench.rundir import FINAL_STATES, RunPaths, SweepPaths, is_sweep_dir, read_json

PIP_COMMAND = "pip install 'larsbench[tensorboard]'"
EVENT_FILE_GLOB = "events.out.tfevents.*"


class TensorBoardUnavailable(RuntimeError):
    """tensorboard is not installed; the message names the pip command."""


def require_writer() -> None:
    """Nothing, or TensorBoardUnavailable naming the pip command."""
    try:
        import tensorboard.summary.writer.event_file_writer  # noqa: F401
    except ImportError:
        raise TensorBoardUnavailable(
            "the TensorBoard export needs the tensorboard package, which is not installed: "
            f"{PIP_COMMAND}"
        ) from None


def _protos() -> Any:
    """larsbench.export.tb_protos, imported once tensorboard is known to be there."""
    require_writer()
    from larsbench.export import tb_protos

    return tb_protos


def default_out(directory: Path) -> Path:
    """SWEEP/tensorboard for a sweep; the sweep's (or, alone, the run's) folder for a run."""
    if is_sweep_dir(directory):
        return directory / "tensorboard"
    if is_sweep_dir(directory.parent):
        return directory.parent / "tensorboard"
    return directory / "tensorboard"


def hparam_domains(configs: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Every value each text column takes in the sweep, so HParams' filters list them all."""
    domains: dict[str, list[Any]] = {}
    for config in configs:
        for key, value in hparams_of(config).items():
            if isinstance(value, str) and value not in domains.setdefault(key, []):
                domains[key].append(value)
    return domains


@dataclass
class RunExporter:
    """Appends a run's new events to its TensorBoard run (out_root/RUN_ID).

    When a file of the run was cut (a resumed run redoes the steps after its checkpoint) the
    TensorBoard run is written again from the start, so no step is there twice.
    """

    run: RunPaths
    out_root: Path
    domains: dict[str, list[Any]] = field(default_factory=dict)
    flush_secs: int = 5
    _writer: Any = None
    _tail: RunTail | None = None
    _state: FoldState = field(default_factory=FoldState)
    _truncations: int = 0
    _session_started: bool = False
    _session_ended: bool = False

    @property
    def out_dir(self) -> Path:
        return self.out_root / self.run.run_id

    def reset(self) -> None:
        """Forget what was written: remove this run's event files and read from the start."""
        self.close()
        if self.out_dir.is_dir():
            for old in self.out_dir.glob(EVENT_FILE_GLOB):
                old.unlink()
        self._tail = RunTail(self.run.root)
        self._state = FoldState()
        self._truncations = 0
        self._session_started = self._session_ended = False

    def update(self) -> int:
        """Write the points of the events appended since the last call; returns how many."""
        if self._tail is None:
            self.reset()
        assert self._tail is not None
        events = self._tail.read_new()
        cut = sum(t.truncations for t in self._tail.tails.values())
        if cut != self._truncations:
            self.reset()
            assert self._tail is not None
            events = self._tail.read_new()
            self._truncations = sum(t.truncations for t in self._tail.tails.values())
        points = [p for e in events for p in points_of(e, self._state)]
        if points:
            self._write(points)
        status = self.run.read_status()
        self._start_session(status)
        self._end_session(status)
        if self._writer is not None and (points or self._session_ended):
            self._writer.flush()
        return len(points)

    def export_all(self) -> int:
        """Write the run's TensorBoard run anew from all its events (idempotent)."""
        self.reset()
        try:
            return self.update()
        finally:
            self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # --- writing ---------------------------------------------------------------------------
    def _open(self) -> Any:
        if self._writer is None:
            require_writer()
            from tensorboard.summary.writer.event_file_writer import EventFileWriter

            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._writer = EventFileWriter(str(self.out_dir), flush_secs=self.flush_secs)
        return self._writer

    def _write(self, points: list[Point]) -> None:
        writer, protos = self._open(), _protos()
        for p in points:
            writer.add_event(protos.point_event(p))

    def _start_session(self, status: dict[str, Any]) -> None:
        """The HParams row, once the ranks started (or the run ended without starting)."""
        if self._session_started:
            return
        started = self._state.start_t
        if started is None and status.get("state") in FINAL_STATES:
            started = float(status.get("t") or 0.0)
        config = read_json(self.run.config)
        if started is None or not isinstance(config, dict):
            return
        values = hparams_of(config)
        domains = self.domains or hparam_domains([config])
        writer, protos = self._open(), _protos()
        writer.add_event(protos.experiment_event(values, domains, METRIC_TAGS, started))
        writer.add_event(protos.session_start_event(values, started))
        self._session_started = True

    def _end_session(self, status: dict[str, Any]) -> None:
        if self._session_ended or not self._session_started:
            return
        if status.get("state") not in FINAL_STATES:
            return
        ended = float(status.get("t") or 0.0)
        self._open().add_event(_protos().session_end_event(status["state"], ended))
        self._session_ended = True


def run_dirs(directory: Path) -> list[RunPaths]:
    """The runs of a sweep folder (in sweep order, those with files), or a run folder alone."""
    if is_sweep_dir(directory):
        sweep = SweepPaths(directory)
        runs = [sweep.run(run_id) for run_id in sweep.run_ids()]
        return [r for r in runs if r.config.is_file() or r.events_dir.is_dir()]
    return [RunPaths(directory)]


def sweep_configs(directory: Path) -> list[dict[str, Any]]:
    """The configs of every run planned in the sweep (sweep.json), or the run's own."""
    data = read_json(directory / "sweep.json") if is_sweep_dir(directory) else None
    if isinstance(data, dict) and isinstance(data.get("runs"), list):
        return [r["config"] for r in data["runs"] if isinstance(r, dict) and "config" in r]
    config = read_json(RunPaths(directory).config)
    return [config] if isinstance(config, dict) else []


def export_tensorboard(directory: str | os.PathLike[str], out: Path | None = None) -> Path:
    """Write (or write again) the TensorBoard runs of a sweep or run folder; returns TBDIR."""
    directory = Path(directory)
    require_writer()
    out = out or default_out(directory)
    domains = hparam_domains(sweep_configs(directory))
    for run in run_dirs(directory):
        RunExporter(run, out, domains).export_all()
    return out


@dataclass
class TensorBoardObserver:
    """A SweepObserver that writes each run's TensorBoard run as the launcher polls it."""

    out_root: Path
    flush_secs: int = 5
    _domains: dict[str, list[Any]] = field(default_factory=dict)
    _current: RunExporter | None = None
    _sweep: SweepPaths | None = None

    def sweep_started(self, plan: Any, out: SweepPaths) -> None:
        require_writer()
        self._sweep = out
        self._domains = hparam_domains([r.to_dict() for r in plan.runs])

    def run_skipped(self, run: Any, result: Any) -> None:
        if self._sweep is not None:  # completed before: its files are whole, write them once
            RunExporter(self._sweep.run(run.run_id), self.out_root, self._domains).export_all()

    def run_started(self, run: Any, paths: RunPaths, index: int, total: int) -> None:
        self._current = RunExporter(paths, self.out_root, self._domains, self.flush_secs)
        self._current.reset()

    def run_events(self, run: Any, events: list[Any]) -> None:
        if self._current is not None:
            self._current.update()

    def run_finished(self, run: Any, result: Any) -> None:
        if self._current is not None:
            self._current.update()
            self._current.close()
            self._current = None

    def sweep_finished(self, results: list[Any], out: SweepPaths) -> None:
        self.close()

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None

"""Folds one run's events and status into its result: the numbers result.json and summaries hold."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from larsbench.events import read_events_noting
from larsbench.live.fold import RunFold
from larsbench.rundir import UNREADABLE, RunPaths, read_json_object
from larsbench.telemetry.summarize import summarize_system


@dataclass
class RunResult:
    """What a run achieved. Accuracies in percent; speeds over training time only."""

    run_id: str
    status: str
    reason: str = ""
    model: str = ""
    epochs: int = 0
    epochs_done: int = 0
    steps: int = 0
    batch_size: int = 0  # the effective (global) batch of one optimizer step
    per_rank_batch: int = 0
    accumulate_steps: int = 1  # micro-batches per optimizer step
    world_size: int = 0
    lr: float = math.nan
    optimizer: str = ""
    trust_coefficient: float | None = None
    device: str = ""
    device_names: list[str] = field(default_factory=list)
    top1: float = math.nan
    top5: float = math.nan
    best_top1: float = math.nan
    best_epoch: int = 0
    images_per_sec: float = math.nan
    images_per_sec_per_gpu: float = math.nan
    train_seconds: float = math.nan
    time_to_best_seconds: float = math.nan
    wall_seconds: float = math.nan
    data_wait_fraction: float = math.nan
    final_loss: float = math.nan
    # Throughput-mode runs (train.mode = "throughput"): no accuracy, a projection instead.
    mode: str = "train"
    step_seconds: float = math.nan
    optimizer_share: float = math.nan
    communication_wait_seconds: float = math.nan
    peak_memory_bytes: float = math.nan
    projected_run_seconds: float = math.nan
    input_bound_share: float = math.nan  # train.throughput_data = "real": 1 - real/held img/s
    # Hardware figures folded from events/system-*.jsonl (see larsbench.telemetry).
    system: dict[str, Any] = field(default_factory=dict)
    # Files of the run that could not be read, each "PATH: why" (the result holds the rest).
    unreadable: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        """A result from result.json; ValueError naming the key when a value has the wrong type."""
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        defaults = cls(run_id="", status="")
        for key, value in known.items():
            expected = getattr(defaults, key)
            if not _same_kind(expected, value):
                raise ValueError(f"{key}: {value!r} is not a {type(expected).__name__}")
        return cls(**known)


def _same_kind(expected: Any, value: Any) -> bool:
    if expected is None:  # trust_coefficient: a number, or None for SGD
        return value is None or _is_number(value)
    if isinstance(expected, bool):
        return isinstance(value, bool)
    if isinstance(expected, (int, float)):
        return _is_number(value)
    return isinstance(value, type(expected))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fold_training(run_id: str, config: dict[str, Any], events: list[dict[str, Any]]) -> RunResult:
    """A run's result from its config.json and rank-0 events (pure; status filled by caller)."""
    result = _planned(run_id, config)
    fold = RunFold()
    for event in events:
        fold.add(event)
    _add_training(result, fold)
    return result


def _planned(run_id: str, config: dict[str, Any]) -> RunResult:
    """What config.json says of the run, before it ran."""
    train = config.get("train", {})
    opt = config.get("optimizer", {})
    world = int(config.get("world_size", 0) or 0)
    return RunResult(
        run_id=run_id,
        status="",
        model=config.get("model", {}).get("arch", ""),
        epochs=int(train.get("epochs", 0)),
        batch_size=int(train.get("batch_size", 0)),
        per_rank_batch=int(config.get("per_rank_batch", 0) or 0),
        accumulate_steps=int(train.get("accumulate_steps", 1) or 1),
        world_size=world,
        lr=float(config.get("lr", math.nan)),
        optimizer=opt.get("name", ""),
        trust_coefficient=opt.get("trust_coefficient") if opt.get("name") == "larc" else None,
        device=config.get("device", ""),
    )


def _add_training(result: RunResult, fold: RunFold) -> None:
    """What the run did, from the fold of its events. A finished run's file holds one
    run_start, run_end and throughput event; the result takes the first of each."""
    start = fold.starts[0] if fold.starts else None
    if start:
        result.device_names = list(start.get("device_names", []))
        result.world_size = int(start.get("world_size", result.world_size))
    epochs = fold.epochs
    if epochs:
        images = sum(e.get("images", 0) for e in epochs)
        seconds = sum(e.get("seconds", 0.0) for e in epochs)
        result.epochs_done = max(e["epoch"] for e in epochs)
        result.train_seconds = epochs[-1].get("train_seconds", seconds)
        if seconds > 0:
            result.images_per_sec = images / seconds
            if result.world_size:
                result.images_per_sec_per_gpu = result.images_per_sec / result.world_size
        result.final_loss = epochs[-1].get("loss", math.nan)
    if fold.last_step:
        result.steps = fold.last_step.get("step", 0)
        result.data_wait_fraction = fold.mean_data_wait
    evals = fold.evals
    if evals:
        result.top1 = evals[-1].get("top1", math.nan)
        result.top5 = evals[-1].get("top5", math.nan)
        # The best: max of (top1, -epoch) over the values as written (the live view's
        # RunState takes the first finite top-1 above all before; they differ on NaN).
        best = max(evals, key=lambda e: (e.get("top1", -1.0), -e.get("epoch", 0)))
        result.best_top1 = best.get("top1", math.nan)
        result.best_epoch = best.get("epoch", 0)
        if start:
            result.time_to_best_seconds = best["t"] - start["t"]
    tp = fold.throughputs[0] if fold.throughputs else None
    if tp:
        _add_throughput(result, tp)
    end = fold.ends[0] if fold.ends else None
    if end and start:
        result.wall_seconds = end.get("wall_seconds", end["t"] - start["t"])
    if end:
        result.status = end.get("status", "")
        result.reason = end.get("reason", "")


def _add_throughput(result: RunResult, tp: dict[str, Any]) -> None:
    """A throughput-mode run's measurement and projection."""
    result.mode = "throughput"
    result.images_per_sec = tp.get("images_per_sec", math.nan)
    result.images_per_sec_per_gpu = tp.get("images_per_sec_per_gpu", math.nan)
    result.step_seconds = tp.get("step_seconds", math.nan)
    result.optimizer_share = tp.get("optimizer_share", math.nan)
    split = tp.get("split_seconds", {})
    result.communication_wait_seconds = split.get("communication_wait", math.nan)
    result.peak_memory_bytes = tp.get("peak_memory_bytes", math.nan)
    result.projected_run_seconds = tp.get("projected_run_seconds", math.nan)
    result.input_bound_share = tp.get("input_bound_share", math.nan)


def fold_run(run: RunPaths) -> RunResult:
    """A run's result from what is on disk; the launcher's status.json has the last word.

    A damaged file never raises: the result holds what the other files give, and
    `unreadable` names each damaged file and why.
    """
    config, problem = read_json_object(run.config)
    problems = [problem] if problem else []
    training, problem = read_events_noting(run.rank0_events)
    problems += [problem] if problem else []
    result = _fold_what_reads(run, config or {}, training, problems)
    system: list[dict[str, Any]] = []
    for path in _system_files(run):
        events, problem = read_events_noting(path)
        system += events
        problems += [problem] if problem else []
    if system:
        try:
            result.system = summarize_system(system, training)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            problems.append(f"{run.events_dir}/system-*.jsonl: unexpected content ({err})")
    status = run.read_status()
    result.status = status.get("state", result.status or "queued")
    result.reason = str(status.get("reason", "") or result.reason)
    if status.get("state") == UNREADABLE:
        problems.insert(0, result.reason)
    result.unreadable = list(dict.fromkeys(problems))
    return result


_FOLD_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError)


def _fold_what_reads(
    run: RunPaths, config: dict[str, Any], events: list[dict[str, Any]], problems: list[str]
) -> RunResult:
    """fold_training; when a file's content has the wrong shape, the fold without it."""
    try:
        return fold_training(run.run_id, config, events)
    except _FOLD_ERRORS as err:
        why = f"unexpected content ({type(err).__name__}: {err})"
    try:
        result = fold_training(run.run_id, {}, events)
        problems.append(f"{run.config}: {why}")
        return result
    except _FOLD_ERRORS:
        pass
    try:
        result = fold_training(run.run_id, config, [])
        problems.append(f"{run.rank0_events}: {why}")
        return result
    except _FOLD_ERRORS:
        problems += [f"{run.config}: {why}", f"{run.rank0_events}: {why}"]
        return RunResult(run_id=run.run_id, status="")


def _system_files(run: RunPaths) -> list[Path]:
    try:
        return sorted(run.events_dir.glob("system-*.jsonl"))
    except OSError:
        return []

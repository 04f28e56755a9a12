"""Folds one run's events and status into its result: the numbers result.json and summaries hold."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from larsbench.events import iter_kind, read_events
from larsbench.rundir import RunPaths, read_json
from larsbench.telemetry import summarize_system


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
    # Hardware figures folded from events/system-*.jsonl (see larsbench.telemetry).
    system: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _mean(values: list[float]) -> float:
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def fold_training(run_id: str, config: dict[str, Any], events: list[dict[str, Any]]) -> RunResult:
    """A run's result from its config.json and rank-0 events (pure; status filled by caller)."""
    train = config.get("train", {})
    opt = config.get("optimizer", {})
    world = int(config.get("world_size", 0) or 0)
    result = RunResult(
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
    start = next(iter_kind(events, "run_start"), None)
    if start:
        result.device_names = list(start.get("device_names", []))
        result.world_size = int(start.get("world_size", world))
    epochs = list(iter_kind(events, "epoch"))
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
    steps = list(iter_kind(events, "step"))
    if steps:
        result.steps = steps[-1].get("step", 0)
        result.data_wait_fraction = _mean([s.get("data_wait_fraction", math.nan) for s in steps])
    evals = list(iter_kind(events, "eval"))
    if evals:
        result.top1 = evals[-1].get("top1", math.nan)
        result.top5 = evals[-1].get("top5", math.nan)
        best = max(evals, key=lambda e: (e.get("top1", -1.0), -e.get("epoch", 0)))
        result.best_top1 = best.get("top1", math.nan)
        result.best_epoch = best.get("epoch", 0)
        if start:
            result.time_to_best_seconds = best["t"] - start["t"]
    tp = next(iter_kind(events, "throughput"), None)
    if tp:
        result.mode = "throughput"
        result.images_per_sec = tp.get("images_per_sec", math.nan)
        result.images_per_sec_per_gpu = tp.get("images_per_sec_per_gpu", math.nan)
        result.step_seconds = tp.get("step_seconds", math.nan)
        result.optimizer_share = tp.get("optimizer_share", math.nan)
        split = tp.get("split_seconds", {})
        result.communication_wait_seconds = split.get("communication_wait", math.nan)
        result.peak_memory_bytes = tp.get("peak_memory_bytes", math.nan)
        result.projected_run_seconds = tp.get("projected_run_seconds", math.nan)
    end = next(iter_kind(events, "run_end"), None)
    if end and start:
        result.wall_seconds = end.get("wall_seconds", end["t"] - start["t"])
    if end:
        result.status = end.get("status", "")
        result.reason = end.get("reason", "")
    return result


def fold_run(run: RunPaths) -> RunResult:
    """A run's result from what is on disk; the launcher's status.json has the last word."""
    config = read_json(run.config) or {}
    training = read_events(run.rank0_events)
    result = fold_training(run.run_id, config, training)
    system = [e for p in sorted(run.events_dir.glob("system-*.jsonl")) for e in read_events(p)]
    if system:
        result.system = summarize_system(system, training)
    status = run.read_status()
    result.status = status.get("state", result.status or "queued")
    result.reason = status.get("reason", "") or result.reason
    return result

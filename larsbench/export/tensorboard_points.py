"""larsbench events -> TensorBoard points (scalars and histograms), as a pure fold.

The same events always give the same points, whether they arrive all at once (an export
after the fact) or a few at a time (the live export of a running sweep): each point's step
comes from the event itself (the training step) or from the count of samples before it in
its own file, never from when it was read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from larsbench.events import SourcedEvent
from larsbench.format import finite

# The HParams view's metric columns: the latest value of each of these scalar tags.
METRIC_TAGS = ("hparams/top1", "hparams/images_per_sec", "hparams/time_to_best_seconds")


@dataclass(frozen=True)
class Scalar:
    tag: str
    value: float
    step: int
    wall_time: float


@dataclass(frozen=True)
class Histogram:
    tag: str
    values: tuple[float, ...]
    step: int
    wall_time: float


Point = Scalar | Histogram


@dataclass
class FoldState:
    """What the fold remembers between events of one run."""

    start_t: float | None = None
    epoch_images: float = 0.0
    epoch_seconds: float = 0.0
    best_top1: float = -math.inf
    samples: dict[str, int] = field(default_factory=dict)  # per system file
    first_energy: dict[tuple[str, int], float] = field(default_factory=dict)


def _scalars(prefix: str, event: dict[str, Any], keys: tuple[str, ...], step: int) -> list[Point]:
    t = float(event.get("t", 0.0))
    return [Scalar(f"{prefix}/{k}", float(event[k]), step, t) for k in keys if finite(event.get(k))]


def _per_rank(prefix: str, values: Any, name: str, step: int, t: float) -> list[Point]:
    if not isinstance(values, list):
        return []
    return [
        Scalar(f"{prefix}/rank{r}_{name}", float(v), step, t)
        for r, v in enumerate(values)
        if finite(v)
    ]


def training_points(event: dict[str, Any], state: FoldState) -> list[Point]:
    """Points of one rank-0 event (docs/events.md's training kinds)."""
    kind = event.get("kind")
    t = float(event.get("t", 0.0))
    step = int(event.get("step", 0) or 0)
    if kind in ("run_start", "resume") and state.start_t is None:
        state.start_t = t
    if kind == "step":
        out = _scalars(
            "train",
            event,
            ("loss", "lr", "images_per_sec", "data_wait_fraction", "step_seconds"),
            step,
        )
        out += _per_rank("train", event.get("rank_images_per_sec"), "images_per_sec", step, t)
        out += _per_rank(
            "train", event.get("rank_data_wait_fraction"), "data_wait_fraction", step, t
        )
        return out
    if kind == "trust":
        return trust_points(event, step, t)
    if kind == "epoch":
        out = _scalars("epoch", event, ("loss", "images_per_sec", "seconds"), step)
        if finite(event.get("images")) and finite(event.get("seconds")):
            state.epoch_images += event["images"]
            state.epoch_seconds += event["seconds"]
        if state.epoch_seconds > 0:
            rate = state.epoch_images / state.epoch_seconds
            out.append(Scalar(METRIC_TAGS[1], rate, step, t))
        return out
    if kind == "eval":
        out = _scalars("eval", event, ("top1", "top5", "loss"), step)
        top1 = event.get("top1")
        if finite(top1):
            out.append(Scalar(METRIC_TAGS[0], float(top1), step, t))
            if top1 > state.best_top1:
                state.best_top1 = float(top1)
                if state.start_t is not None:
                    out.append(Scalar(METRIC_TAGS[2], t - state.start_t, step, t))
        return out
    if kind == "throughput":
        keys = ("images_per_sec", "images_per_sec_per_gpu", "step_seconds", "optimizer_share")
        out = _scalars("throughput", event, keys, step)
        out += _per_rank("throughput", event.get("rank_images_per_sec"), "images_per_sec", 0, t)
        if finite(event.get("images_per_sec")):
            out.append(Scalar(METRIC_TAGS[1], float(event["images_per_sec"]), step, t))
        return out
    return []


def trust_points(event: dict[str, Any], step: int, t: float) -> list[Point]:
    """Per layer: the applied factor and the local lr as scalars; one histogram of each."""
    layers = event.get("layers")
    if not isinstance(layers, list):
        return []
    out: list[Point] = []
    for key in ("factor", "local_lr"):
        values = event.get(key)
        if not isinstance(values, list) or len(values) != len(layers):
            continue
        known = [float(v) for v in values if finite(v)]
        out += [
            Scalar(f"trust_{key}/{layer}", float(v), step, t)
            for layer, v in zip(layers, values, strict=True)
            if finite(v)
        ]
        if known:
            out.append(Histogram(f"trust/{key}", tuple(known), step, t))
    return out


_GPU_KEYS = (
    ("gpu_util", "util_percent"),
    ("mem_util", "mem_util_percent"),
    ("memory_used", "memory_used_bytes"),
    ("power_draw", "power_watts"),
    ("temperature", "temperature_c"),
)


def system_points(source: str, event: dict[str, Any], state: FoldState) -> list[Point]:
    """Points of one `system` sample; the step is the sample's index in its own file."""
    if event.get("kind") != "system":
        return []
    step = state.samples.get(source, 0)
    state.samples[source] = step + 1
    t = float(event.get("t", 0.0))
    node = str(event.get("node") or source.removeprefix("system-"))
    out: list[Point] = []
    for dev in event.get("devices") or []:
        if not isinstance(dev, dict):
            continue
        gpu = dev.get("local_rank", dev.get("index", 0))
        prefix = f"{node}/gpu{gpu}"
        out += [
            Scalar(f"{prefix}/{name}", float(dev[key]), step, t)
            for key, name in _GPU_KEYS
            if finite(dev.get(key))
        ]
        energy = dev.get("energy")
        if finite(energy):
            first = state.first_energy.setdefault((node, int(gpu)), float(energy))
            out.append(Scalar(f"{prefix}/energy_joules", float(energy) - first, step, t))
    host = event.get("host") or {}
    if isinstance(host, dict):
        if finite(host.get("cpu_percent")):
            out.append(Scalar(f"{node}/host/cpu_percent", float(host["cpu_percent"]), step, t))
        if finite(host.get("memory_used")):
            out.append(
                Scalar(f"{node}/host/memory_used_bytes", float(host["memory_used"]), step, t)
            )
    for rank in event.get("ranks") or []:
        if isinstance(rank, dict) and finite(rank.get("cpu_percent")):
            name = f"{node}/rank{rank.get('local_rank')}/cpu_percent"
            out.append(Scalar(name, float(rank["cpu_percent"]), step, t))
    return out


def points_of(sourced: SourcedEvent, state: FoldState) -> list[Point]:
    """The points of one event of any file of a run."""
    if sourced.source == "rank0":
        return training_points(sourced.event, state)
    if sourced.source.startswith("system-"):
        return system_points(sourced.source, sourced.event, state)
    return []


def hparams_of(config: dict[str, Any]) -> dict[str, Any]:
    """The HParams view's columns for one run, from its config.json (values str or number)."""
    train = config.get("train") or {}
    opt = config.get("optimizer") or {}
    data = config.get("data") or {}
    larc = opt.get("name") == "larc"
    return {
        "batch_size": int(train.get("batch_size", 0) or 0),
        "lr": float(config.get("lr", 0.0) or 0.0),
        "optimizer": str(opt.get("name", "")),
        # 0 for SGD: it has no trust ratio (HParams values cannot be empty)
        "trust_coefficient": float(opt.get("trust_coefficient", 0.0)) if larc else 0.0,
        "amp": str(train.get("amp", "off")),
        "loader": str(data.get("loader", "torch")),
        "data": str(data.get("source", "")),
        "world_size": int(config.get("world_size", 0) or 0),
    }

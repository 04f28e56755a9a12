"""Folds a run's system and training events into its hardware figures (pure, no I/O)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from typing import Any

from larsbench.format import finite

INPUT_BOUND_THRESHOLD = 0.10  # share of step time spent waiting for data
STRAGGLER_RATIO = 0.9  # a rank slower than this times the median rank is a straggler


def _num(value: Any) -> float | None:
    """A finite number as a float, else None (events may hold None, NaN or junk)."""
    return float(value) if finite(value) else None


def _mean(values: Iterable[Any]) -> float | None:
    known = [v for v in map(_num, values) if v is not None]
    return sum(known) / len(known) if known else None


def _weighted_mean(pairs: Iterable[tuple[Any, Any]]) -> float | None:
    """Mean of values weighted by weights (a missing weight counts 1)."""
    total = weight_sum = 0.0
    for value, weight in pairs:
        v, w = _num(value), _num(weight)
        if v is None:
            continue
        w = w if w is not None and w > 0 else 1.0
        total, weight_sum = total + v * w, weight_sum + w
    return total / weight_sum if weight_sum else None


def _p95(values: list[float]) -> float | None:
    """The nearest-rank 95th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def _max(values: Iterable[Any]) -> float | None:
    known = [v for v in map(_num, values) if v is not None]
    return max(known) if known else None


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The objects of a list field (a missing or junk field holds none)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _window(training: list[dict[str, Any]]) -> tuple[float, float] | None:
    """From run_start to run_end (or the last training event): the time the run trained."""
    times = [t for e in training if (t := _num(e.get("t"))) is not None]
    if not times:
        return None
    start = next((_num(e.get("t")) for e in training if e.get("kind") == "run_start"), None)
    end = next((_num(e.get("t")) for e in training if e.get("kind") == "run_end"), None)
    start, end = start or min(times), end or max(times)
    return (start, end) if end > start else None


def _images_trained(training: list[dict[str, Any]]) -> int | None:
    """Training images: whole epochs from epoch events, plus steps logged after the last one."""
    epochs = [e for e in training if e.get("kind") == "epoch"]
    steps = [e for e in training if e.get("kind") == "step"]
    start = next((e for e in training if e.get("kind") == "run_start"), {})
    images = sum(int(_num(e.get("images")) or 0) for e in epochs)
    last_epoch_step = _num(epochs[-1].get("step")) if epochs else None
    batch = _num(start.get("global_batch"))
    if batch:
        tail = [
            s
            for s in steps
            if last_epoch_step is None or (_num(s.get("step")) or 0) > last_epoch_step
        ]
        images += int(sum((_num(s.get("interval_steps")) or 1) * batch for s in tail))
    return images or None


def _energy(samples: list[dict[str, Any]]) -> float | None:
    """Joules used by the sampled GPUs from the first sample to the last.

    None when a GPU lacks the counter in every sample, or when a counter went back (the
    driver reloaded and it restarted): then no figure is better than a wrong one.
    """
    last: dict[tuple[Any, Any], float | None] = {}
    used: dict[tuple[Any, Any], float] = {}
    for event in samples:
        for device in _dicts(event.get("devices")):
            key = (event.get("node"), device.get("index"))
            energy = _num(device.get("energy"))
            previous = last.setdefault(key, None)
            if energy is None:
                continue
            if previous is not None:
                if energy < previous:
                    return None
                used[key] = used.get(key, 0.0) + energy - previous
            used.setdefault(key, 0.0)
            last[key] = energy
    if not last or set(used) != set(last):
        return None
    return sum(used.values())


def _span(samples: list[dict[str, Any]]) -> float | None:
    times = [t for e in samples if (t := _num(e.get("t"))) is not None]
    return max(times) - min(times) if len(times) >= 2 else None


def _per_rank(steps: list[dict[str, Any]], field: str) -> list[float]:
    """Per-rank means of a per-rank list field over step events, weighted by interval_steps."""
    lists = [s for s in steps if isinstance(s.get(field), list)]
    ranks = max((len(s[field]) for s in lists), default=0)
    means = [
        _weighted_mean((s[field][r], s.get("interval_steps")) for s in lists if r < len(s[field]))
        for r in range(ranks)
    ]
    known = [m for m in means if m is not None]
    return known if len(known) == len(means) else []


def _used(run_gpus: dict[Any, set[Any]], event: dict[str, Any], device: dict[str, Any]) -> bool:
    gpus = run_gpus.get(event.get("node"))
    return gpus is None or device.get("index") in gpus


def summarize_system(
    system_events: list[dict[str, Any]],
    training_events: list[dict[str, Any]],
    input_bound_threshold: float = INPUT_BOUND_THRESHOLD,
    straggler_ratio: float = STRAGGLER_RATIO,
) -> dict[str, Any]:
    """A run's hardware figures for result.json and the summary; None where unavailable.

    System samples count between run_start and run_end (start-up and data loading excluded)
    when the training events tell; energy is the GPUs' counter difference over that window,
    evaluation included, divided by the training images.
    """
    infos = [e for e in system_events if e.get("kind") == "system_info"]
    samples = [e for e in system_events if e.get("kind") == "system"]
    start = next((e for e in training_events if e.get("kind") == "run_start"), {})
    steps = [e for e in training_events if e.get("kind") == "step"]
    throughput = next((e for e in training_events if e.get("kind") == "throughput"), {})
    window = _window(training_events)
    if window is not None:
        inside = [e for e in samples if window[0] <= (_num(e.get("t")) or 0) <= window[1]]
        samples = inside if len(inside) >= 2 else samples
    # The run's GPUs are those of each node's last system_info: before the ranks are known a
    # sampler may cover every visible GPU.
    run_gpus = {
        e.get("node"): {d.get("index") for d in _dicts(e["devices"])}
        for e in infos
        if isinstance(e.get("devices"), list)
    }
    samples = [
        e | {"devices": [d for d in _dicts(e.get("devices")) if _used(run_gpus, e, d)]}
        for e in samples
    ]
    devices = [d for e in samples for d in e["devices"]]
    ranks = [r for e in samples for r in _dicts(e.get("ranks"))]
    hosts = [e["host"] for e in samples if isinstance(e.get("host"), dict)]

    util = [u for d in devices if (u := _num(d.get("gpu_util"))) is not None]
    with_reasons = [
        d["throttle_reasons"] for d in devices if isinstance(d.get("throttle_reasons"), list)
    ]
    reasons: dict[str, float] = {}
    for names in with_reasons:
        for name in map(str, names):
            reasons[name] = reasons.get(name, 0.0) + 1.0 / len(with_reasons)

    energy = _energy(samples)
    images = _images_trained(training_events)
    per_image = energy / images if energy is not None and images else None
    speed = _num(throughput.get("images_per_sec"))
    seconds = _span(samples)
    if per_image is None and energy is not None and speed and seconds:
        per_image = energy / seconds / speed  # throughput mode: mean power over images/s

    wait = _weighted_mean((s.get("data_wait_fraction"), s.get("interval_steps")) for s in steps)
    rank_wait = _per_rank(steps, "rank_data_wait_fraction")
    input_bound = None if wait is None else wait > input_bound_threshold
    hint = None
    if input_bound:
        data = (start.get("config") or {}).get("data")
        workers = data.get("workers") if isinstance(data, dict) else None
        now = f" (now {workers})" if workers is not None else ""
        worst = max(range(len(rank_wait)), key=rank_wait.__getitem__) if rank_wait else None
        at = f"; rank {worst} waits {rank_wait[worst]:.0%}" if worst is not None else ""
        hint = (
            f"ranks wait for data {wait:.0%} of the time (threshold {input_bound_threshold:.0%})"
            f"{at}: raise data.workers{now}, or make decoding cheaper (smaller or pre-resized "
            "images, faster decoder)"
        )

    rank_speed = _per_rank(steps, "rank_images_per_sec")
    if not rank_speed and isinstance(throughput.get("rank_images_per_sec"), list):
        speeds = [_num(v) for v in throughput["rank_images_per_sec"]]
        rank_speed = [v for v in speeds if v is not None]
    straggler_rank = ratio = None
    if len(rank_speed) >= 2 and (median := statistics.median(rank_speed)) > 0:
        slowest = min(range(len(rank_speed)), key=rank_speed.__getitem__)
        ratio = rank_speed[slowest] / median
        straggler_rank = slowest if ratio < straggler_ratio else None

    return {
        "source": (infos or samples or [{}])[-1].get("source"),
        "nodes": sorted({str(e.get("node")) for e in system_events if e.get("node") is not None}),
        "gpu_names": sorted(
            {str(d["name"]) for e in infos for d in _dicts(e.get("devices")) if d.get("name")}
        ),
        "samples": len(samples),
        "gpu_util_mean": _mean(util),
        "gpu_util_p95": _p95(util),
        "gpu_mem_util_mean": _mean(d.get("mem_util") for d in devices),
        "power_draw_mean": _mean(d.get("power_draw") for d in devices),
        "temperature_max": _max(d.get("temperature") for d in devices),
        "throttle_reasons": {k: round(v, 4) for k, v in sorted(reasons.items())},
        "energy_j": energy,
        "images": images,
        "energy_j_per_image": per_image,
        "data_wait_fraction": wait,
        "rank_data_wait_fraction": rank_wait,
        "input_bound": input_bound,
        "input_bound_threshold": input_bound_threshold,
        "input_bound_hint": hint,
        "rank_images_per_sec": rank_speed,
        "straggler_rank": straggler_rank,
        "straggler_ratio": ratio,
        "cpu_percent_mean": _mean(h.get("cpu_percent") for h in hosts),
        "rank_cpu_percent_mean": _mean(r.get("cpu_percent") for r in ranks),
        "workers_cpu_percent_mean": _mean(r.get("workers_cpu_percent") for r in ranks),
        "peak_host_memory_bytes": _int(_max(h.get("memory_used") for h in hosts)),
        "peak_rss_bytes": _int(_max(r.get("rss_bytes") for r in ranks)),
        "peak_workers_rss_bytes": _int(_max(r.get("workers_rss_bytes") for r in ranks)),
        "peak_gpu_mem_bytes": _int(_max(d.get("memory_used") for d in devices)),
        "peak_rank_gpu_mem_bytes": _int(_max(r.get("gpu_mem_bytes") for r in ranks)),
        "sampler_cpu_seconds_mean": _mean(e.get("sampler_cpu_seconds") for e in samples),
    }


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)

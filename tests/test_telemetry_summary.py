"""summarize_system on hand-made event lists, and fold_run putting it into result.json."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from larsbench.events import EventWriter
from larsbench.results import fold_run
from larsbench.rundir import RunPaths
from larsbench.telemetry.summarize import summarize_system

START, END = 1000.0, 1100.0
BATCH = 256


def training(
    wait: float = 0.02,
    rank_speed: tuple[float, ...] = (1000.0, 1000.0),
    rank_wait: tuple[float, ...] | None = None,
    epochs: int = 2,
    tail_steps: int = 0,
) -> list[dict[str, Any]]:
    """run_start, 10 step events of 20 steps per epoch, epoch events, run_end."""
    ranks = len(rank_speed)
    events: list[dict[str, Any]] = [
        {
            "kind": "run_start",
            "t": START,
            "world_size": ranks,
            "global_batch": BATCH,
            "config": {"data": {"workers": 4}},
        }
    ]
    t, step = START, 0
    for epoch in range(1, epochs + 1):
        for _ in range(10):
            t, step = t + 2, step + 20
            events.append(
                {
                    "kind": "step",
                    "t": t,
                    "epoch": epoch,
                    "step": step,
                    "interval_steps": 20,
                    "data_wait_fraction": wait,
                    "rank_data_wait_fraction": list(rank_wait or [wait] * ranks),
                    "rank_images_per_sec": list(rank_speed),
                    "images_per_sec": sum(rank_speed),
                }
            )
        events.append({"kind": "epoch", "t": t, "epoch": epoch, "step": step, "images": 51200})
    if tail_steps:
        events.append(
            {"kind": "step", "t": t + 1, "step": step + tail_steps, "interval_steps": tail_steps}
        )
    events.append({"kind": "run_end", "t": END, "status": "completed"})
    return events


def system(
    gpus: int = 2,
    watts: float = 300.0,
    energy: bool = True,
    start: float = START - 5,
    end: float = END + 5,
) -> list[dict[str, Any]]:
    """One sample a second; GPUs idle before the run starts, 90% busy during it."""
    events: list[dict[str, Any]] = [
        {
            "kind": "system_info",
            "t": start,
            "node": "node0",
            "source": "nvml" if gpus else "psutil",
            "devices": [{"index": i, "name": "NVIDIA H100 80GB HBM3"} for i in range(gpus)],
        }
    ]
    t = start
    while t <= end:
        running = START <= t <= END
        devices = [
            {
                "index": i,
                "local_rank": i,
                "gpu_util": (90.0 + i * 5 if t < START + 50 else 80.0 + i * 5) if running else 0.0,
                "memory_used": int(40e9 + i * 1e9) if running else int(1e9),
                "power_draw": watts,
                "energy": 5000.0 * (i + 1) + watts * (t - start) if energy else None,
                "temperature": 60 + i,
                "throttle_reasons": ["sw_power_cap"] if i == 0 else [],
            }
            for i in range(gpus)
        ]
        events.append(
            {
                "kind": "system",
                "t": t,
                "node": "node0",
                "source": "nvml" if gpus else "psutil",
                "devices": devices,
                "host": {"cpu_percent": 50.0, "memory_used": 8e9, "memory_total": 64e9},
                "ranks": [
                    {
                        "local_rank": r,
                        "pid": 100 + r,
                        "cpu_percent": 120.0,
                        "rss_bytes": 3_000_000_000 + r,
                        "workers": 4,
                        "workers_cpu_percent": 300.0,
                        "workers_rss_bytes": 6_000_000_000,
                        "gpu_mem_bytes": 39_000_000_000 if gpus else None,
                    }
                    for r in range(2)
                ],
                "sampler_cpu_seconds": 0.001,
            }
        )
        t += 1.0
    return events


def test_gpu_figures_over_the_run_only() -> None:
    s = summarize_system(system(), training())
    assert s["source"] == "nvml" and s["nodes"] == ["node0"]
    assert s["gpu_names"] == ["NVIDIA H100 80GB HBM3"]
    assert s["samples"] == 101  # t = 1000..1100; start-up and tear-down samples left out
    # GPU 0: 90% for 50 s then 80%; GPU 1 five points more.
    assert s["gpu_util_mean"] == pytest.approx((50 * 90 + 51 * 80 + 50 * 95 + 51 * 85) / 202)
    assert s["gpu_util_p95"] == 95.0
    assert s["power_draw_mean"] == 300.0 and s["temperature_max"] == 61
    assert s["throttle_reasons"] == {"sw_power_cap": 0.5}
    assert s["peak_gpu_mem_bytes"] == 41_000_000_000
    assert s["peak_rank_gpu_mem_bytes"] == 39_000_000_000
    assert s["peak_rss_bytes"] == 3_000_000_001 and s["peak_workers_rss_bytes"] == 6_000_000_000
    assert s["cpu_percent_mean"] == 50.0 and s["rank_cpu_percent_mean"] == 120.0
    assert s["workers_cpu_percent_mean"] == 300.0
    assert s["peak_host_memory_bytes"] == 8_000_000_000
    assert s["sampler_cpu_seconds_mean"] == pytest.approx(0.001)
    json.dumps(s, allow_nan=False)  # plain JSON: result.json and summary.json take it as is


def test_energy_per_image() -> None:
    s = summarize_system(system(gpus=2, watts=300.0), training(epochs=2))
    assert s["energy_j"] == pytest.approx(2 * 300.0 * 100)  # two GPUs, 100 s at 300 W
    assert s["images"] == 2 * 51200
    assert s["energy_j_per_image"] == pytest.approx(60000 / 102400)


def test_images_of_a_run_stopped_mid_epoch_come_from_its_steps() -> None:
    s = summarize_system(system(), training(epochs=1, tail_steps=30))
    assert s["images"] == 51200 + 30 * BATCH
    no_epochs = [e for e in training(epochs=1) if e["kind"] != "epoch"]
    assert summarize_system(system(), no_epochs)["images"] == 10 * 20 * BATCH


def test_only_the_gpus_of_the_last_system_info_count() -> None:
    events = system(gpus=2)
    events.insert(0, {**events[0], "t": START - 10, "devices": [{"index": i} for i in range(8)]})
    early = events[10]  # inside the run, sampled before the ranks were known: 8 GPUs
    early["devices"] += [{"index": i, "gpu_util": 0.0, "energy": 9e9 + i} for i in range(2, 8)]
    events.append({**events[0], "t": END + 6, "devices": events[1]["devices"]})
    s = summarize_system(events, training())
    assert s["energy_j"] == pytest.approx(60000) and s["gpu_util_p95"] == 95.0
    assert s["gpu_util_mean"] == summarize_system(system(gpus=2), training())["gpu_util_mean"]


def test_energy_unavailable() -> None:
    assert summarize_system(system(energy=False), training())["energy_j_per_image"] is None
    one_gpu_without = system()
    for event in one_gpu_without[1:]:
        event["devices"][1]["energy"] = None
    s = summarize_system(one_gpu_without, training())
    assert s["energy_j"] is None and s["energy_j_per_image"] is None  # never half the GPUs
    reloaded = system()
    reloaded[60]["devices"][0]["energy"] = 10.0  # the driver reloaded: the counter restarted
    assert summarize_system(reloaded, training())["energy_j"] is None


def test_throughput_mode_energy_per_image_from_power() -> None:
    run = [
        {"kind": "run_start", "t": START, "global_batch": BATCH},
        {"kind": "throughput", "t": END - 1, "images_per_sec": 2000.0,
         "rank_images_per_sec": [1000.0, 700.0]},
        {"kind": "run_end", "t": END, "status": "completed"},
    ]  # fmt: skip
    s = summarize_system(system(gpus=2, watts=300.0), run)
    assert s["images"] is None
    assert s["energy_j_per_image"] == pytest.approx(600.0 / 2000.0)  # 600 W over 2000 img/s
    assert s["straggler_rank"] == 1 and s["straggler_ratio"] == pytest.approx(700 / 850)


def test_input_bound() -> None:
    calm = summarize_system(system(), training(wait=0.05))
    assert calm["data_wait_fraction"] == pytest.approx(0.05)
    assert calm["input_bound"] is False and calm["input_bound_hint"] is None
    starved = summarize_system(system(), training(wait=0.25, rank_wait=(0.2, 0.3)))
    assert starved["input_bound"] is True and starved["input_bound_threshold"] == 0.10
    assert starved["rank_data_wait_fraction"] == pytest.approx([0.2, 0.3])
    hint = starved["input_bound_hint"]
    assert "25%" in hint and "data.workers (now 4)" in hint and "rank 1 waits 30%" in hint
    assert "decod" in hint
    strict = summarize_system(system(), training(wait=0.05), input_bound_threshold=0.04)
    assert strict["input_bound"] is True


def test_data_wait_is_weighted_by_steps() -> None:
    run = training(wait=0.0)
    run.insert(2, {"kind": "step", "t": START + 1, "data_wait_fraction": 0.9, "interval_steps": 1})
    s = summarize_system([], run)
    assert s["data_wait_fraction"] == pytest.approx(0.9 / 401)


def test_straggler() -> None:
    even = summarize_system(system(), training(rank_speed=(1000, 980, 1010, 990)))
    assert even["straggler_rank"] is None and even["straggler_ratio"] == pytest.approx(980 / 995)
    assert even["rank_images_per_sec"] == [1000, 980, 1010, 990]
    slow = summarize_system(system(), training(rank_speed=(1000, 1000, 1000, 800)))
    assert slow["straggler_rank"] == 3 and slow["straggler_ratio"] == pytest.approx(0.8)
    one = summarize_system(system(), training(rank_speed=(1000,)))
    assert one["straggler_rank"] is None and one["straggler_ratio"] is None


def test_cpu_only_run() -> None:
    s = summarize_system(system(gpus=0), training())
    assert s["source"] == "psutil" and s["gpu_names"] == []
    for key in ("gpu_util_mean", "gpu_util_p95", "energy_j", "energy_j_per_image"):
        assert s[key] is None, key
    assert s["peak_gpu_mem_bytes"] is None and s["peak_rank_gpu_mem_bytes"] is None
    assert s["rank_cpu_percent_mean"] == 120.0 and s["images"] == 102400


def test_nothing_to_go_on() -> None:
    s = summarize_system([], [])
    assert s["samples"] == 0 and s["source"] is None
    assert s["input_bound"] is None and s["straggler_rank"] is None
    assert all(v in (None, [], {}, 0, 0.10) for v in s.values())


def test_junk_fields_are_ignored() -> None:
    events = system()
    events[5]["devices"][0] |= {"gpu_util": None, "energy": math.nan, "power_draw": "high"}
    events[6]["devices"] = None
    events[7].pop("host")
    events[8]["devices"][1]["throttle_reasons"] = "sw_power_cap"
    events[0]["devices"] = "two"
    events.append({"kind": "system", "t": "late", "devices": [{"gpu_util": True}]})
    s = summarize_system(events, training())
    assert s["gpu_util_mean"] is not None
    assert s["energy_j"] == pytest.approx(60000 - 2 * 300)  # the first second has no devices


def test_fold_run_puts_the_figures_into_the_result(tmp_path: Path) -> None:
    run = RunPaths(tmp_path / "bs512-sgd")
    run.root.mkdir()
    run.config.write_text(json.dumps({"run_id": "bs512-sgd", "world_size": 2}))
    with EventWriter(run.rank0_events) as w:
        for event in training(rank_speed=(1000, 700)):
            w.emit(**event)
    for node in ("node0", "node1"):
        with EventWriter(run.system_events(node)) as w:
            for event in system():
                w.emit(**(event | {"node": node}))
    result = fold_run(run).to_dict()
    assert result["system"]["nodes"] == ["node0", "node1"]
    assert result["system"]["energy_j"] == pytest.approx(4 * 300 * 100)  # 2 nodes x 2 GPUs
    assert result["system"]["straggler_rank"] == 1
    assert fold_run(RunPaths(tmp_path / "empty")).system == {}

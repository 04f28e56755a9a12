"""The sampler's NVML path against a fake binding: GPU mapping, units, and failures as None."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fake_pynvml import ERROR_CODES, FakeNvml, GiB, eight_gpus, install

from larsbench.events import EventWriter, read_events
from larsbench.telemetry import nvml
from larsbench.telemetry.gpus import decode_throttle_reasons
from larsbench.telemetry.sampler import MIN_INTERVAL, Sampler
from larsbench.telemetry.snapshots import NVML, PSUTIL
from larsbench.telemetry.summarize import summarize_system


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNvml]:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake = install(monkeypatch, FakeNvml(eight_gpus()))
    assert fake is not None
    yield fake
    nvml.reset()


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[EventWriter]:
    with EventWriter(tmp_path / "events" / "system-node0.jsonl") as w:
        yield w


@pytest.fixture
def sleepers() -> Iterator[list[int]]:
    """Two real processes (children of this one) to stand for ranks."""
    procs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in "ab"]
    yield [p.pid for p in procs]
    for proc in procs:
        proc.kill()
        proc.wait()


def test_all_gpus_visible_without_cuda_visible_devices(fake: FakeNvml) -> None:
    assert nvml.visible_devices() == list(range(8))
    assert nvml.visible_gpu_count() == 8


@pytest.mark.parametrize(
    ("visible", "expected"),
    [
        ("3,5", [3, 5]),
        ("7, 0", [7, 0]),
        ("", []),
        ("2,9,3", [2]),  # CUDA ignores everything from the first invalid entry
        ("2,-1,3", [2]),
        ("1,1", [1]),
        ("GPU-66000000-1111-2222-3333-444444444446,GPU-11", [6, 1]),  # full UUID, prefix
        ("GPU-2,4", [2, 4]),
        ("GPU-nope,1", []),
        ("GPU-,1", []),  # a prefix every GPU has: ambiguous
        ("MIG-1234,0", []),
    ],
)
def test_cuda_visible_devices(
    fake: FakeNvml, monkeypatch: pytest.MonkeyPatch, visible: str, expected: list[int]
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert nvml.visible_devices() == expected
    assert nvml.visible_gpu_count() == len(expected)


def test_local_rank_i_reads_the_ith_visible_gpu(
    fake: FakeNvml, monkeypatch: pytest.MonkeyPatch, writer: EventWriter, sleepers: list[int]
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-55,3")
    sampler = Sampler(writer, device="cuda")
    assert sampler.source == NVML
    sampler.set_ranks(dict(enumerate(sleepers)))
    sample = sampler.sample_once()
    assert [(d.index, d.local_rank) for d in sample.devices] == [(5, 0), (3, 1)]
    gpu5 = sample.devices[0]
    assert gpu5.gpu_util == 95.0 and gpu5.mem_util == 40.0
    assert gpu5.memory_used == 6 * GiB and gpu5.memory_total == 80 * GiB  # bytes
    assert gpu5.power_draw == 450.0 and gpu5.power_limit == 700.0  # mW -> W
    assert gpu5.energy == 6000.0  # mJ -> J
    assert gpu5.temperature == 65 and gpu5.sm_clock == 1980
    assert gpu5.throttle_reasons == ("sw_power_cap",)
    assert [r.local_rank for r in sample.ranks] == [0, 1]
    info = sampler.system_info()
    assert info["source"] == "nvml" and info["driver_version"] == "550.54.15"
    assert [(d["index"], d["local_rank"]) for d in info["devices"]] == [(5, 0), (3, 1)]
    assert info["devices"][1] == {
        "index": 3,
        "local_rank": 1,
        "uuid": "GPU-33000000-1111-2222-3333-444444444443",
        "name": "NVIDIA H100 80GB HBM3",
        "memory_total": 80 * GiB,
        "power_limit": 700.0,
    }


def test_only_the_gpus_the_run_uses(fake: FakeNvml, writer: EventWriter) -> None:
    assert len(Sampler(writer).devices()) == 8  # ranks not known yet: every visible GPU
    assert Sampler(writer, local_world_size=2).devices() == [(0, 0), (1, 1)]
    sampler = Sampler(writer)
    sampler.set_ranks({0: os.getpid()})
    assert [d.index for d in sampler.sample_once().devices] == [0]


def test_cpu_runs_do_not_touch_nvml(fake: FakeNvml, writer: EventWriter) -> None:
    sampler = Sampler(writer, device="cpu")
    assert sampler.source == PSUTIL and sampler.sample_once().devices == ()
    assert "nvmlInit" not in fake.calls


def test_unsupported_fields_read_none(fake: FakeNvml, writer: EventWriter) -> None:
    fake.gpus[0].unsupported |= {
        "nvmlDeviceGetTotalEnergyConsumption",
        "nvmlDeviceGetPowerUsage",
        "nvmlDeviceGetCurrentClocksEventReasons",  # the older name still answers
    }
    fake.gpus[1].unsupported |= {
        "nvmlDeviceGetCurrentClocksEventReasons",
        "nvmlDeviceGetCurrentClocksThrottleReasons",
        "nvmlDeviceGetEnforcedPowerLimit",  # falls back to the management limit
        "nvmlDeviceGetUtilizationRates",
    }
    gpu0, gpu1 = Sampler(writer, local_world_size=2).sample_once().devices
    assert gpu0.energy is None and gpu0.power_draw is None
    assert gpu0.throttle_reasons == ("sw_power_cap",) and gpu0.gpu_util == 90.0
    assert gpu1.throttle_reasons is None and gpu1.gpu_util is None and gpu1.mem_util is None
    assert gpu1.power_limit == 700.0 and gpu1.energy == 2000.0


def test_memory_info_falls_back_to_version_1(
    fake: FakeNvml, monkeypatch: pytest.MonkeyPatch, writer: EventWriter
) -> None:
    module = fake.module()
    del module.nvmlMemory_v2  # a binding older than memory info v2
    monkeypatch.setitem(sys.modules, "pynvml", module)
    nvml.reset()
    (gpu,) = Sampler(writer, local_world_size=1).sample_once().devices
    assert gpu.memory_used == 1 * GiB and gpu.memory_total == 80 * GiB


@pytest.mark.parametrize("how", ["not installed", "no library", "no driver"])
def test_without_nvml_the_device_panel_is_psutil(
    monkeypatch: pytest.MonkeyPatch, writer: EventWriter, how: str
) -> None:
    fake = FakeNvml(eight_gpus())
    fake.library = how != "no library"
    fake.driver = how != "no driver"
    install(monkeypatch, None if how == "not installed" else fake)
    try:
        assert not nvml.available() and nvml.visible_gpu_count() == 0
        assert nvml.call(lambda nv: nv.nvmlDeviceGetCount()) is None
        sampler = Sampler(writer, device="cuda")
        sampler.set_ranks({0: os.getpid()})
        sample = sampler.sample_once()
        assert sampler.source == PSUTIL and sample.devices == ()
        assert sample.ranks[0].rss_bytes and sample.ranks[0].gpu_mem_bytes is None
        assert sampler.system_info()["driver_version"] is None
    finally:
        nvml.reset()


@pytest.mark.parametrize("code", ["NVML_ERROR_DRIVER_NOT_LOADED", "NVML_ERROR_UNINITIALIZED"])
def test_driver_vanishing_mid_run_degrades_to_none(
    fake: FakeNvml, writer: EventWriter, code: str
) -> None:
    sampler = Sampler(writer, interval=MIN_INTERVAL, proc_interval=MIN_INTERVAL)
    sampler.set_ranks({0: os.getpid(), 1: os.getpid()})
    sampler.start()
    wait_for(lambda: sampler.samples >= 2)
    fake.vanish(ERROR_CODES[code])
    seen = sampler.samples
    wait_for(lambda: sampler.samples >= seen + 2)
    sampler.stop()
    sampler.stop()  # idempotent
    assert sampler.errors == 0, sampler.last_error
    events = read_events(writer.path)
    assert events[0]["kind"] == "system_info" and len(events[0]["devices"]) == 2
    samples = [e for e in events if e["kind"] == "system"]
    assert samples[0]["devices"][0]["energy"] == 1000.0
    last = samples[-1]
    assert last["source"] == "nvml" and [d["index"] for d in last["devices"]] == [0, 1]
    for device in last["devices"]:
        assert {k for k, v in device.items() if v is not None} == {"index", "local_rank"}
    assert all(r["gpu_mem_bytes"] is None and r["rss_bytes"] for r in last["ranks"])


def test_process_gpu_memory_is_queried_at_the_slower_rate(
    fake: FakeNvml, writer: EventWriter, sleepers: list[int]
) -> None:
    a, b = sleepers
    fake.gpus[0].processes = [(a, 2 * GiB), (99999999, 5 * GiB)]
    fake.gpus[1].processes = [(b, 3 * GiB), (a, 1 * GiB)]
    sampler = Sampler(writer, interval=MIN_INTERVAL, proc_interval=3600)
    sampler.set_ranks({0: a, 1: b})
    for _ in range(5):
        sample = sampler.sample_once()
    assert fake.calls["nvmlDeviceGetComputeRunningProcesses"] == 2  # once per GPU
    assert fake.calls["nvmlDeviceGetUtilizationRates"] == 10
    assert [r.gpu_mem_bytes for r in sample.ranks] == [3 * GiB, 3 * GiB]
    fake.gpus[0].processes = [(b, 7 * GiB)]
    sampler.set_ranks({0: b})  # new ranks: looked up at once, on GPU 0 only
    assert sampler.sample_once().ranks[0].gpu_mem_bytes == 7 * GiB
    assert fake.calls["nvmlDeviceGetComputeRunningProcesses"] == 3


def test_thread_writes_system_info_then_samples(fake: FakeNvml, writer: EventWriter) -> None:
    fake.gpus[0].processes = [(os.getpid(), 4 * GiB)]
    sampler = Sampler(writer, interval=MIN_INTERVAL, local_world_size=1)
    sampler.start()
    wait_for(lambda: sampler.samples >= 2)
    sampler.set_ranks({0: os.getpid()})  # the mapping changes: system_info again
    wait_for(lambda: sampler.samples >= 4)
    sampler.stop()
    events = read_events(writer.path)
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "system_info" and kinds.count("system_info") == 2
    info = [e for e in events if e["kind"] == "system_info"][-1]
    assert info["ranks"] == [{"local_rank": 0, "pid": os.getpid()}]
    system = [e for e in events if e["kind"] == "system"]
    assert all(isinstance(e["devices"][0]["power_draw"], float) for e in system)
    assert system[-1]["ranks"][0]["gpu_mem_bytes"] == 4 * GiB
    assert sampler.errors == 0 and sampler.cpu_seconds_per_sample is not None
    assert all(e["sampler_cpu_seconds"] >= 0 for e in system)
    # What fold_run makes of it (no training events: all samples count).
    summary = summarize_system(events, [])
    assert summary["source"] == "nvml" and summary["gpu_util_mean"] == 90.0
    assert summary["gpu_names"] == ["NVIDIA H100 80GB HBM3"]
    assert summary["energy_j"] == 0.0  # the fake's counter does not move
    assert summary["throttle_reasons"] == {"sw_power_cap": 1.0}
    assert summary["peak_rank_gpu_mem_bytes"] == 4 * GiB


def test_interval_has_a_floor(writer: EventWriter) -> None:
    sampler = Sampler(writer, interval=0.01, proc_interval=0.1, device="cpu")
    assert sampler.interval == MIN_INTERVAL == 0.25 and sampler.proc_interval == 0.25
    sampler.stop()  # never started: nothing to do
    sampler.start()  # after stop: stays stopped
    assert sampler.samples == 0


def test_decode_throttle_reasons() -> None:
    assert decode_throttle_reasons(0) == ()
    assert decode_throttle_reasons(0x1) == ("gpu_idle",)
    assert decode_throttle_reasons(0x4 | 0x40 | 0x1000) == (
        "sw_power_cap",
        "hw_thermal_slowdown",
        "0x1000",
    )


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)

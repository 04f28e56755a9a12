"""GPU readings through telemetry.nvml, converted to event units; a failed read is None."""

from __future__ import annotations

from typing import Any

from larsbench.telemetry import nvml
from larsbench.telemetry.snapshots import GpuInfo, GpuSample

# NVML's clock event (formerly "throttle") reason bits, as named in docs/events.md.
CLOCK_EVENT_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
    0x200: "board_limit",
    0x400: "reliability",
}


def decode_throttle_reasons(mask: int) -> tuple[str, ...]:
    """Names of the bits set in a clock event reason mask; unknown bits as hex (`0x800`)."""
    names = [name for bit, name in CLOCK_EVENT_REASONS.items() if mask & bit]
    unknown = mask & ~sum(CLOCK_EVENT_REASONS)
    names += [hex(1 << b) for b in range(unknown.bit_length()) if unknown >> b & 1]
    return tuple(names)


def handle(index: int) -> Any | None:
    return nvml.call(lambda nv: nv.nvmlDeviceGetHandleByIndex(index))


def _watts(milliwatts: int | None) -> float | None:
    return None if milliwatts is None else milliwatts / 1000.0


def _memory(h: Any) -> Any | None:
    """Memory info, version 2 where the binding and driver have it (nvidia-smi's `used`)."""
    info = nvml.call(lambda nv: nv.nvmlDeviceGetMemoryInfo(h, version=nv.nvmlMemory_v2))
    return info if info is not None else nvml.call(lambda nv: nv.nvmlDeviceGetMemoryInfo(h))


def _power_limit(h: Any) -> float | None:
    limit = nvml.call(lambda nv: nv.nvmlDeviceGetEnforcedPowerLimit(h))
    if limit is None:
        limit = nvml.call(lambda nv: nv.nvmlDeviceGetPowerManagementLimit(h))
    return _watts(limit)


def _reasons(h: Any) -> tuple[str, ...] | None:
    mask = nvml.call(lambda nv: nv.nvmlDeviceGetCurrentClocksEventReasons(h))
    if mask is None:  # bindings older than the rename
        mask = nvml.call(lambda nv: nv.nvmlDeviceGetCurrentClocksThrottleReasons(h))
    return None if mask is None else decode_throttle_reasons(mask)


def gpu_info(index: int, local_rank: int | None, h: Any | None) -> GpuInfo:
    """One GPU's identity and limits (read once per run, and when the rank mapping changes)."""
    if h is None:
        return GpuInfo(index, local_rank)
    name = nvml.call(lambda nv: nvml.as_text(nv.nvmlDeviceGetName(h)))
    uuid = nvml.call(lambda nv: nvml.as_text(nv.nvmlDeviceGetUUID(h)))
    memory = _memory(h)
    return GpuInfo(
        index,
        local_rank,
        uuid=uuid,
        name=name,
        memory_total=None if memory is None else int(memory.total),
        power_limit=_power_limit(h),
    )


def read_gpu(index: int, local_rank: int | None, h: Any | None) -> GpuSample:
    """One GPU now: about ten cheap NVML queries, each of which may give None."""
    if h is None:
        return GpuSample(index, local_rank)
    util = nvml.call(lambda nv: nv.nvmlDeviceGetUtilizationRates(h))
    memory = _memory(h)
    energy = nvml.call(lambda nv: nv.nvmlDeviceGetTotalEnergyConsumption(h))  # mJ
    return GpuSample(
        index,
        local_rank,
        gpu_util=None if util is None else float(util.gpu),
        mem_util=None if util is None else float(util.memory),
        memory_used=None if memory is None else int(memory.used),
        memory_total=None if memory is None else int(memory.total),
        power_draw=_watts(nvml.call(lambda nv: nv.nvmlDeviceGetPowerUsage(h))),
        power_limit=_power_limit(h),
        energy=None if energy is None else energy / 1000.0,
        temperature=nvml.call(lambda nv: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
        sm_clock=nvml.call(lambda nv: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)),
        throttle_reasons=_reasons(h),
    )


def process_gpu_memory(handles: list[Any]) -> dict[int, int] | None:
    """GPU memory per pid over the given GPUs (an expensive query: call it at proc_interval).

    None when NVML cannot list processes. Inside a container NVML may report host pids, which
    match no rank: those ranks then read None.
    """
    out: dict[int, int] | None = None
    for h in handles:
        procs = nvml.call(lambda nv, h=h: nv.nvmlDeviceGetComputeRunningProcesses(h))
        if procs is None:
            continue
        out = out if out is not None else {}
        for p in procs:
            out[int(p.pid)] = out.get(int(p.pid), 0) + int(p.usedGpuMemory or 0)
    return out

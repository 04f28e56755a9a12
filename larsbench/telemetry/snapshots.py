"""Immutable hardware snapshots, taken together, in event units (bytes, W, J, °C, MHz, %)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Sources of a node's samples: NVML for GPUs, or psutil alone (CPU runs, or no NVML).
NVML, PSUTIL = "nvml", "psutil"


@dataclass(frozen=True)
class GpuInfo:
    """What does not change during a run: one GPU's identity and limits."""

    index: int  # NVML (physical) index
    local_rank: int | None  # the local rank that uses it (i-th visible device: local rank i)
    uuid: str | None = None
    name: str | None = None
    memory_total: int | None = None  # bytes
    power_limit: float | None = None  # W, the enforced limit


@dataclass(frozen=True)
class GpuSample:
    """One GPU at one moment; None where NVML cannot tell (field unsupported, driver gone)."""

    index: int
    local_rank: int | None
    gpu_util: float | None = None  # % of time a kernel ran over the driver's last period
    mem_util: float | None = None  # % of time device memory was read or written
    memory_used: int | None = None  # bytes
    memory_total: int | None = None  # bytes
    power_draw: float | None = None  # W
    power_limit: float | None = None  # W
    energy: float | None = None  # J since the driver loaded (a counter: take differences)
    temperature: int | None = None  # °C
    sm_clock: int | None = None  # MHz
    throttle_reasons: tuple[str, ...] | None = None  # decoded clock event reasons


@dataclass(frozen=True)
class ProcSample:
    """One training rank (and its data-loader workers) at one moment, from psutil and NVML."""

    local_rank: int
    pid: int
    cpu_percent: float | None = None  # % of one core (may exceed 100)
    rss_bytes: int | None = None
    workers: int = 0  # child processes (data-loader workers)
    workers_cpu_percent: float | None = None  # their sum, % of one core
    workers_rss_bytes: int | None = None  # their sum (shared pages counted in each)
    gpu_mem_bytes: int | None = None  # NVML's per-process figure, refreshed at proc_interval


@dataclass(frozen=True)
class HostSample:
    """The node at one moment."""

    cpu_percent: float | None = None  # % of all cores
    memory_used: int | None = None  # bytes: total - available
    memory_total: int | None = None  # bytes
    memory_percent: float | None = None


@dataclass(frozen=True)
class SystemSample:
    """Everything one `system` event holds."""

    node: str
    source: str  # NVML or PSUTIL
    devices: tuple[GpuSample, ...] = ()
    host: HostSample = field(default_factory=HostSample)
    ranks: tuple[ProcSample, ...] = ()
    sampler_cpu_seconds: float | None = None  # CPU time the sampler spent taking this sample

    def to_event(self) -> dict[str, Any]:
        """The fields of the `system` event (docs/events.md)."""
        return asdict(self)

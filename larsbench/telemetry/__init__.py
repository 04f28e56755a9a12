"""Live hardware telemetry: NVML and psutil sampling into system events, and its run summary."""

from larsbench.telemetry.gpus import decode_throttle_reasons
from larsbench.telemetry.procs import find_rank_pids
from larsbench.telemetry.sampler import MIN_INTERVAL, Sampler
from larsbench.telemetry.snapshots import (
    NVML,
    PSUTIL,
    GpuInfo,
    GpuSample,
    HostSample,
    ProcSample,
    SystemSample,
)
from larsbench.telemetry.summarize import (
    INPUT_BOUND_THRESHOLD,
    STRAGGLER_RATIO,
    summarize_system,
)

__all__ = [
    "INPUT_BOUND_THRESHOLD",
    "MIN_INTERVAL",
    "NVML",
    "PSUTIL",
    "STRAGGLER_RATIO",
    "GpuInfo",
    "GpuSample",
    "HostSample",
    "ProcSample",
    "Sampler",
    "SystemSample",
    "decode_throttle_reasons",
    "find_rank_pids",
    "summarize_system",
]

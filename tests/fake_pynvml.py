"""A fake `pynvml` (nvidia-ml-py) for tests: the binding's names, errors and units (mW, mJ, B)."""

from __future__ import annotations

import string
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from larsbench.telemetry import nvml

# The binding's error codes (pynvml.NVML_ERROR_*), those the tests and larsbench meet.
ERROR_CODES = {
    "NVML_ERROR_UNINITIALIZED": 1,
    "NVML_ERROR_INVALID_ARGUMENT": 2,
    "NVML_ERROR_NOT_SUPPORTED": 3,
    "NVML_ERROR_NO_PERMISSION": 4,
    "NVML_ERROR_NOT_FOUND": 6,
    "NVML_ERROR_INSUFFICIENT_SIZE": 7,
    "NVML_ERROR_DRIVER_NOT_LOADED": 9,
    "NVML_ERROR_LIBRARY_NOT_FOUND": 12,
    "NVML_ERROR_FUNCTION_NOT_FOUND": 13,
    "NVML_ERROR_GPU_IS_LOST": 15,
    "NVML_ERROR_UNKNOWN": 999,
}
GiB = 1 << 30


class NVMLError(Exception):
    """As in the binding: NVMLError(code) builds the subclass for that code."""

    _valClassMapping: dict[int, type[NVMLError]] = {}  # noqa: RUF012 (the binding's name)

    def __new__(cls, value: int) -> NVMLError:
        if cls is NVMLError:
            cls = NVMLError._valClassMapping.get(value, cls)
        obj = Exception.__new__(cls)
        obj.value = value
        return obj

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return f"NVML error {self.value}"


def _error_classes() -> dict[str, type[NVMLError]]:
    """NVML_ERROR_DRIVER_NOT_LOADED -> NVMLError_DriverNotLoaded, as the binding names them."""
    out = {}
    for name, code in ERROR_CODES.items():
        words = string.capwords(name.replace("NVML_ERROR_", ""), "_").replace("_", "")
        cls = type(f"NVMLError_{words}", (NVMLError,), {})
        NVMLError._valClassMapping[code] = cls
        out[cls.__name__] = cls
    return out


ERRORS = _error_classes()


@dataclass
class FakeGpu:
    """One GPU; readings in NVML's units (mW, mJ, bytes, %, °C, MHz)."""

    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    memory_total: int = 80 * GiB
    memory_used: int = 10 * GiB
    util_gpu: int = 90
    util_memory: int = 40
    power_mw: int = 500_000
    power_limit_mw: int = 700_000
    energy_mj: int = 1_000_000_000
    temperature: int = 60
    sm_clock: int = 1980
    reasons: int = 0x4  # sw_power_cap
    processes: list[tuple[int, int]] = field(default_factory=list)  # (pid, bytes)
    unsupported: set[str] = field(default_factory=set)  # binding function names


@dataclass(frozen=True)
class Handle:
    index: int


@dataclass
class Struct:
    """The binding's c_nvml*_t results, reduced to attribute access."""

    fields: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(name) from None


class FakeNvml:
    """The state behind the fake module: GPUs, and switches for the failures tests provoke."""

    def __init__(self, gpus: list[FakeGpu]) -> None:
        self.gpus = gpus
        self.library = True  # libnvidia-ml.so.1 found
        self.driver = True  # a driver to talk to
        self.initialized = False
        self.fail_code: int | None = None  # once set, every call fails with it (driver gone)
        self.calls: dict[str, int] = {}

    def vanish(self, code: int = ERROR_CODES["NVML_ERROR_DRIVER_NOT_LOADED"]) -> None:
        """The driver goes away mid-run: from now on every call raises NVMLError(code)."""
        self.fail_code = code

    def _enter(self, fn: str, h: Handle | None = None) -> FakeGpu | None:
        self.calls[fn] = self.calls.get(fn, 0) + 1
        if self.fail_code is not None:
            raise NVMLError(self.fail_code)
        if not self.initialized:
            raise NVMLError(ERROR_CODES["NVML_ERROR_UNINITIALIZED"])
        if h is None:
            return None
        if not isinstance(h, Handle) or not 0 <= h.index < len(self.gpus):
            raise NVMLError(ERROR_CODES["NVML_ERROR_INVALID_ARGUMENT"])
        gpu = self.gpus[h.index]
        if fn in gpu.unsupported:
            raise NVMLError(ERROR_CODES["NVML_ERROR_NOT_SUPPORTED"])
        return gpu

    def module(self) -> types.ModuleType:
        """A module object to put in sys.modules["pynvml"]."""
        m = types.ModuleType("pynvml")
        m.__dict__.update(ERROR_CODES)
        m.__dict__.update(ERRORS)
        m.NVMLError = NVMLError
        m.NVML_TEMPERATURE_GPU = 0
        m.NVML_CLOCK_SM = 1
        m.nvmlMemory_v2 = 0x02000028
        state = self

        def nvmlInit() -> None:
            state.calls["nvmlInit"] = state.calls.get("nvmlInit", 0) + 1
            if not state.library:
                raise NVMLError(ERROR_CODES["NVML_ERROR_LIBRARY_NOT_FOUND"])
            if not state.driver:
                raise NVMLError(ERROR_CODES["NVML_ERROR_DRIVER_NOT_LOADED"])
            state.initialized = True

        def nvmlShutdown() -> None:
            state._enter("nvmlShutdown")
            state.initialized = False

        def nvmlSystemGetDriverVersion() -> str:
            state._enter("nvmlSystemGetDriverVersion")
            return "550.54.15"

        def nvmlDeviceGetCount() -> int:
            state._enter("nvmlDeviceGetCount")
            return len(state.gpus)

        def nvmlDeviceGetHandleByIndex(index: int) -> Handle:
            state._enter("nvmlDeviceGetHandleByIndex")
            if not 0 <= index < len(state.gpus):
                raise NVMLError(ERROR_CODES["NVML_ERROR_INVALID_ARGUMENT"])
            return Handle(index)

        def nvmlDeviceGetHandleByUUID(uuid: str) -> Handle:
            state._enter("nvmlDeviceGetHandleByUUID")
            for i, gpu in enumerate(state.gpus):
                if gpu.uuid == uuid:
                    return Handle(i)
            raise NVMLError(ERROR_CODES["NVML_ERROR_NOT_FOUND"])

        def reading(fn_name: str, get: Any) -> Any:
            def fn(handle: Handle, *args: Any, **kwargs: Any) -> Any:
                gpu = state._enter(fn_name, handle)
                return get(gpu, *args, **kwargs)

            fn.__name__ = fn_name
            return fn

        def memory(gpu: FakeGpu, version: int | None = None) -> Struct:
            free = gpu.memory_total - gpu.memory_used
            fields = {"total": gpu.memory_total, "free": free, "used": gpu.memory_used}
            if version:
                fields |= {"version": version, "reserved": 0}
            return Struct(fields)

        def temperature(gpu: FakeGpu, sensor: int) -> int:
            if sensor != 0:
                raise NVMLError(ERROR_CODES["NVML_ERROR_INVALID_ARGUMENT"])
            return gpu.temperature

        def clock(gpu: FakeGpu, clock_type: int) -> int:
            if clock_type != 1:
                raise NVMLError(ERROR_CODES["NVML_ERROR_NOT_SUPPORTED"])
            return gpu.sm_clock

        def processes(gpu: FakeGpu) -> list[Struct]:
            return [
                Struct({"pid": p, "usedGpuMemory": b, "gpuInstanceId": 0, "computeInstanceId": 0})
                for p, b in gpu.processes
            ]

        getters = {
            "nvmlDeviceGetName": lambda g: g.name,
            "nvmlDeviceGetUUID": lambda g: g.uuid,
            "nvmlDeviceGetIndex": lambda g: state.gpus.index(g),
            "nvmlDeviceGetMemoryInfo": memory,
            "nvmlDeviceGetUtilizationRates": lambda g: Struct(
                {"gpu": g.util_gpu, "memory": g.util_memory}
            ),
            "nvmlDeviceGetPowerUsage": lambda g: g.power_mw,
            "nvmlDeviceGetEnforcedPowerLimit": lambda g: g.power_limit_mw,
            "nvmlDeviceGetPowerManagementLimit": lambda g: g.power_limit_mw,
            "nvmlDeviceGetTotalEnergyConsumption": lambda g: g.energy_mj,
            "nvmlDeviceGetTemperature": temperature,
            "nvmlDeviceGetClockInfo": clock,
            "nvmlDeviceGetCurrentClocksEventReasons": lambda g: g.reasons,
            "nvmlDeviceGetCurrentClocksThrottleReasons": lambda g: g.reasons,
            "nvmlDeviceGetComputeRunningProcesses": processes,
        }
        for local in (
            nvmlInit,
            nvmlShutdown,
            nvmlSystemGetDriverVersion,
            nvmlDeviceGetCount,
            nvmlDeviceGetHandleByIndex,
            nvmlDeviceGetHandleByUUID,
        ):
            setattr(m, local.__name__, local)
        for fn_name, get in getters.items():
            setattr(m, fn_name, reading(fn_name, get))
        return m


def eight_gpus() -> list[FakeGpu]:
    """Eight H100s with distinct UUIDs (`GPU-<i>0000000-...`) and readings."""
    return [
        FakeGpu(
            uuid=f"GPU-{i}{i}000000-1111-2222-3333-44444444444{i}",
            memory_used=(i + 1) * GiB,
            util_gpu=90 + i,
            power_mw=400_000 + 10_000 * i,
            energy_mj=1_000_000 * (i + 1),
            temperature=60 + i,
        )
        for i in range(8)
    ]


def install(monkeypatch: pytest.MonkeyPatch, fake: FakeNvml | None) -> FakeNvml | None:
    """Put the fake in sys.modules["pynvml"] (None: the library is not installed at all)."""
    monkeypatch.setitem(sys.modules, "pynvml", fake.module() if fake is not None else None)
    nvml.reset()
    return fake

"""The one wrapper around NVML (nvidia-ml-py, imported as pynvml): failures become None."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_state: dict[str, Any] = {"module": None, "tried": False, "ok": False}


def _load() -> Any | None:
    """pynvml once initialised, or None when the library, driver or GPU is missing."""
    with _lock:
        if not _state["tried"]:
            _state["tried"] = True
            try:
                import pynvml

                pynvml.nvmlInit()
                _state["module"], _state["ok"] = pynvml, True
            except Exception:
                _state["module"], _state["ok"] = None, False
        return _state["module"]


def reset() -> None:
    """Forget the loaded library (shutting NVML down) so the next call loads it again (tests)."""
    with _lock:
        module, _state["module"], _state["tried"], _state["ok"] = (
            _state["module"],
            None,
            False,
            False,
        )
    if module is not None:
        with contextlib.suppress(Exception):
            module.nvmlShutdown()


def available() -> bool:
    """Whether NVML initialised (it may still fail later, when the driver goes away)."""
    return _load() is not None


def call(fn: Callable[[Any], T]) -> T | None:
    """Run fn(pynvml); any NVML error (missing library, driver, GPU, field) gives None."""
    nv = _load()
    if nv is None:
        return None
    try:
        return fn(nv)
    except Exception:
        return None


def visible_devices() -> list[int]:
    """NVML indices of the GPUs CUDA shows this process, in CUDA's order (local rank i: entry i).

    CUDA_VISIBLE_DEVICES holds indices or (prefixes of) UUIDs such as `GPU-8f3c...`; like CUDA,
    the list ends at the first entry that names no GPU, is ambiguous or repeats one. MIG entries
    are not resolved (the list ends there). CUDA numbers GPUs fastest first unless
    CUDA_DEVICE_ORDER=PCI_BUS_ID; on machines of one GPU model both orders are NVML's.
    """
    count = call(lambda nv: nv.nvmlDeviceGetCount()) or 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return list(range(count))
    uuids: list[str | None] | None = None
    out: list[int] = []
    for entry in (e.strip() for e in visible.split(",")):
        index: int | None = None
        if entry.isdigit():
            index = int(entry) if int(entry) < count else None
        elif entry.startswith("GPU-"):
            if uuids is None:
                uuids = [device_uuid(i) for i in range(count)]
            matches = [i for i, u in enumerate(uuids) if u and u.startswith(entry)]
            index = matches[0] if len(matches) == 1 else None
        if index is None or index in out:
            break
        out.append(index)
    return out


def device_uuid(index: int) -> str | None:
    """The UUID (`GPU-...`) of the GPU at an NVML index."""
    return call(lambda nv: as_text(nv.nvmlDeviceGetUUID(nv.nvmlDeviceGetHandleByIndex(index))))


def visible_gpu_count() -> int:
    """GPUs this process may use: NVML's count, narrowed by CUDA_VISIBLE_DEVICES."""
    return len(visible_devices())


def as_text(value: str | bytes) -> str:
    """Old bindings return bytes where new ones return str."""
    return value.decode() if isinstance(value, bytes) else value

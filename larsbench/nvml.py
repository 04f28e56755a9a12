"""The one wrapper around NVML (nvidia-ml-py, imported as pynvml): failures become None."""

from __future__ import annotations

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


def call(fn: Callable[[Any], T]) -> T | None:
    """Run fn(pynvml); any NVML error (missing library, driver, GPU, field) gives None."""
    nv = _load()
    if nv is None:
        return None
    try:
        return fn(nv)
    except Exception:
        return None


def visible_gpu_count() -> int:
    """GPUs this process may use: NVML's count, narrowed by CUDA_VISIBLE_DEVICES."""
    count = call(lambda nv: nv.nvmlDeviceGetCount()) or 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return count
    entries = [v.strip() for v in visible.split(",") if v.strip()]
    if any(e.startswith("-") for e in entries):  # CUDA stops at the first invalid entry
        entries = entries[: next(i for i, e in enumerate(entries) if e.startswith("-"))]
    return min(len(entries), count)

"""The node's sampler: a daemon thread in `larsbench run` that writes system events."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from typing import Any

import psutil

from larsbench.events import EventWriter
from larsbench.rundir import node_name
from larsbench.telemetry import nvml
from larsbench.telemetry.gpus import gpu_info, handle, process_gpu_memory, read_gpu
from larsbench.telemetry.procs import HostReader, RankProcesses
from larsbench.telemetry.snapshots import NVML, PSUTIL, SystemSample

MIN_INTERVAL = 0.25  # seconds; below this NVML's own averaging windows make samples repeat


class Sampler:
    """Samples the GPUs a run uses, the host and the run's ranks into `system` events.

    Runs in the launching process, never in a training rank. All reads and writes happen on
    its thread (or in the caller of sample_once() / stop() when the thread is not running);
    set_ranks() only hands pids over. The writer stays open: its owner closes it after stop().
    """

    def __init__(
        self,
        writer: EventWriter,
        interval: float = 1.0,
        proc_interval: float = 5.0,
        device: str = "cuda",
        *,
        node: str | None = None,
        local_world_size: int | None = None,
    ) -> None:
        self.writer = writer
        self.interval = max(float(interval), MIN_INTERVAL)
        self.proc_interval = max(float(proc_interval), self.interval)
        self.node = node or node_name()
        self.local_world_size = local_world_size
        # CUDA_VISIBLE_DEVICES of this process is what torchrun hands its ranks.
        self._visible = nvml.visible_devices() if device == "cuda" else []
        self.source = NVML if self._visible else PSUTIL
        self._handles: dict[int, Any] = {}
        self._host = HostReader()
        self._procs = RankProcesses()
        self._gpu_mem: dict[int, int] | None = None
        self._last_slow = -float("inf")
        self._lock = threading.Lock()
        self._pending: dict[int, int] | None = None
        self._pids: dict[int, int] = {}
        self._info_due = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False
        # The sampler's own cost: CPU seconds of its thread, including writing the events.
        self.samples = 0
        self.cpu_seconds = 0.0
        self.errors = 0
        self.last_error = ""

    # --- called by the launcher -------------------------------------------------------------

    def set_ranks(self, pids: dict[int, int]) -> None:
        """Hand over local rank -> pid (see find_rank_pids); applied at the next sample."""
        with self._lock:
            self._pending = dict(pids)

    def start(self) -> None:
        """Start sampling on a daemon thread: system_info, then one system event per interval."""
        if self._thread is not None or self._stopped:
            return
        self._thread = threading.Thread(target=self._run, name="larsbench-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and write a last sample, so energy covers the whole run (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10 * self.interval + 5)
            if not self._thread.is_alive():
                self._tick()

    @property
    def cpu_seconds_per_sample(self) -> float | None:
        return self.cpu_seconds / self.samples if self.samples else None

    # --- readings -----------------------------------------------------------------------------

    def devices(self) -> list[tuple[int, int | None]]:
        """(NVML index, local rank) of the GPUs sampled: local rank i uses visible device i.

        Narrowed to local_world_size when given, else to the known ranks once there are any.
        """
        if self.local_world_size is not None:
            count = self.local_world_size
        elif self._pids:
            count = max(self._pids) + 1
        else:
            count = len(self._visible)
        return [(index, i) for i, index in enumerate(self._visible[:count])]

    def _handle(self, index: int) -> Any | None:
        if index not in self._handles:
            h = handle(index)
            if h is None:
                return None
            self._handles[index] = h
        return self._handles[index]

    def _apply_ranks(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None and pending != self._pids:
            self._pids = dict(sorted(pending.items()))
            self._procs.set_ranks(self._pids)
            self._last_slow = -float("inf")  # look up their GPU memory now
            self._info_due = True

    def system_info(self) -> dict[str, Any]:
        """The fields of the `system_info` event (docs/events.md)."""
        memory = psutil.virtual_memory()
        devices = [gpu_info(i, lr, self._handle(i)) for i, lr in self.devices()]
        return {
            "node": self.node,
            "source": self.source,
            "interval": self.interval,
            "proc_interval": self.proc_interval,
            "driver_version": (
                nvml.call(lambda nv: nvml.as_text(nv.nvmlSystemGetDriverVersion()))
                if self.source == NVML
                else None
            ),
            "devices": [asdict(d) for d in devices],
            "cpu_count": psutil.cpu_count(),
            "memory_total": int(memory.total),
            "ranks": [{"local_rank": lr, "pid": pid} for lr, pid in self._pids.items()],
        }

    def sample_once(self) -> SystemSample:
        """Read everything once (no event written); for tests, not while the thread runs."""
        cpu0 = time.thread_time()
        self._apply_ranks()
        devices = self.devices()
        now = time.monotonic()
        if now - self._last_slow >= self.proc_interval:
            self._last_slow = now
            self._procs.refresh_workers()
            if self.source == NVML:
                handles = [h for i, _ in devices if (h := self._handle(i)) is not None]
                self._gpu_mem = process_gpu_memory(handles)
        gpus = tuple(read_gpu(i, lr, self._handle(i)) for i, lr in devices)
        host = self._host.read()
        ranks = self._procs.read(self._gpu_mem)
        return SystemSample(
            node=self.node,
            source=self.source,
            devices=gpus,
            host=host,
            ranks=ranks,
            sampler_cpu_seconds=round(time.thread_time() - cpu0, 6),
        )

    # --- the thread ---------------------------------------------------------------------------

    def _tick(self) -> None:
        """One sample written; never raises, so a bad reading cannot end the sampling."""
        cpu0 = time.thread_time()
        try:
            sample = self.sample_once()
            if self._info_due:
                self._info_due = False
                self.writer.emit("system_info", **self.system_info())
            self.writer.emit("system", **sample.to_event())
        except Exception as exc:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
        self.samples += 1
        self.cpu_seconds += time.thread_time() - cpu0

    def _run(self) -> None:
        deadline = time.monotonic()
        while not self._stop.is_set():
            self._tick()
            deadline += self.interval
            delay = deadline - time.monotonic()
            if delay < 0:  # fell behind (a slow NVML call): skip the missed ticks, no burst
                deadline, delay = time.monotonic(), 0.0
            self._stop.wait(delay)

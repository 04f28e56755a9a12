"""Host and per-rank process readings through psutil; a process that is gone reads None."""

from __future__ import annotations

from typing import Any

import psutil

from larsbench.telemetry.snapshots import HostSample, ProcSample


def _local_rank(pid: int) -> int | None:
    try:
        value = psutil.Process(pid).environ().get("LOCAL_RANK")
    except (psutil.Error, OSError):
        return None
    return int(value) if value is not None and value.isdigit() else None


def find_rank_pids(torchrun_pid: int) -> dict[int, int]:
    """local rank -> pid of the training ranks under a torchrun process.

    A rank is the shallowest descendant whose environment holds LOCAL_RANK; its own children
    inherit that variable and are its data-loader workers, so the walk does not enter them.
    Ranks not started yet are missing: call again until all nproc_per_node are found.
    """
    tree = _children_map()
    found: dict[int, int] = {}
    frontier = tree.get(torchrun_pid, [])
    while frontier:
        deeper: list[int] = []
        for pid in frontier:
            local_rank = _local_rank(pid)
            if local_rank is None:
                deeper.extend(tree.get(pid, []))
            else:
                found.setdefault(local_rank, pid)
        frontier = deeper
    return dict(sorted(found.items()))


def _children_map() -> dict[int, list[int]]:
    """parent pid -> child pids of every process: one walk of /proc, whatever the ranks."""
    tree: dict[int, list[int]] = {}
    for proc in psutil.process_iter(["ppid"]):
        ppid = proc.info["ppid"]
        if ppid is not None:
            tree.setdefault(ppid, []).append(proc.pid)
    return tree


def _descendants(tree: dict[int, list[int]], pid: int) -> list[int]:
    out, frontier = [], list(tree.get(pid, []))
    while frontier:
        child = frontier.pop()
        out.append(child)
        frontier.extend(tree.get(child, []))
    return out


class HostReader:
    """The node's CPU share since the previous reading and its memory.

    CPU from cpu_times() deltas of its own, not psutil.cpu_percent(), whose baseline is shared
    by every caller in the process.
    """

    def __init__(self) -> None:
        self._last = psutil.cpu_times()

    def read(self) -> HostSample:
        times = psutil.cpu_times()
        busy, total = _busy_total(times)
        last_busy, last_total = _busy_total(self._last)
        self._last = times
        cpu = 100.0 * (busy - last_busy) / (total - last_total) if total > last_total else None
        memory = psutil.virtual_memory()
        return HostSample(
            cpu_percent=None if cpu is None else round(min(max(cpu, 0.0), 100.0), 2),
            memory_used=int(memory.total - memory.available),
            memory_total=int(memory.total),
            memory_percent=float(memory.percent),
        )


def _busy_total(times: Any) -> tuple[float, float]:
    """Busy and total CPU seconds of a psutil.cpu_times() reading (iowait counts as idle)."""
    total = sum(times)
    return total - times.idle - getattr(times, "iowait", 0.0), total


def _open(pid: int) -> psutil.Process | None:
    """A process handle with its CPU baseline taken (psutil's first cpu_percent() reads 0)."""
    try:
        proc = psutil.Process(pid)
        proc.cpu_percent()
        return proc
    except psutil.Error:
        return None


def _cpu_rss(proc: psutil.Process | None) -> tuple[float | None, int | None]:
    if proc is None:
        return None, None
    try:
        with proc.oneshot():
            return round(proc.cpu_percent(), 2), int(proc.memory_info().rss)
    except psutil.Error:
        return None, None


class RankProcesses:
    """The run's rank processes and their children, read with psutil on each sample.

    Keeps one psutil.Process per pid so CPU percentages are deltas since the last sample.
    Finding the children walks /proc, so refresh_workers() runs at the slower proc_interval.
    """

    def __init__(self) -> None:
        self._pids: dict[int, int] = {}
        self._ranks: dict[int, psutil.Process | None] = {}
        self._workers: dict[int, dict[int, psutil.Process]] = {}

    def set_ranks(self, pids: dict[int, int]) -> None:
        for local_rank, pid in pids.items():
            if self._pids.get(local_rank) != pid:
                self._ranks[local_rank] = _open(pid)
                self._workers[local_rank] = {}
        for local_rank in set(self._pids) - set(pids):
            self._ranks.pop(local_rank, None)
            self._workers.pop(local_rank, None)
        self._pids = dict(sorted(pids.items()))
        self.refresh_workers()

    def refresh_workers(self) -> None:
        tree = _children_map() if self._ranks else {}
        for local_rank, proc in self._ranks.items():
            known = self._workers.get(local_rank, {})
            fresh: dict[int, psutil.Process] = {}
            for child in _descendants(tree, proc.pid) if proc is not None else []:
                if child in known:
                    fresh[child] = known[child]
                elif (opened := _open(child)) is not None:
                    fresh[child] = opened
            self._workers[local_rank] = fresh

    def read(self, gpu_mem: dict[int, int] | None) -> tuple[ProcSample, ...]:
        out = []
        for local_rank, pid in self._pids.items():
            cpu, rss = _cpu_rss(self._ranks.get(local_rank))
            workers = self._workers.get(local_rank, {})
            readings = [r for r in map(_cpu_rss, workers.values()) if r[0] is not None]
            alive = cpu is not None
            own = [pid, *workers]
            mem = [gpu_mem[p] for p in own if p in gpu_mem] if gpu_mem is not None else []
            out.append(
                ProcSample(
                    local_rank=local_rank,
                    pid=pid,
                    cpu_percent=cpu,
                    rss_bytes=rss,
                    workers=len(readings),
                    workers_cpu_percent=round(sum(c for c, _ in readings), 2) if alive else None,
                    workers_rss_bytes=sum(r for _, r in readings) if alive else None,
                    gpu_mem_bytes=sum(mem) if mem else None,
                )
            )
        return tuple(out)

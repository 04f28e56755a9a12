"""runner.json and the sweep lock: which `larsbench run` owns a sweep folder, and if it lives."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from larsbench.rundir import RUNNING, SweepPaths, node_name, read_json_object, write_json_atomic

# How the sweep ended, as runner.json says (else rundir.RUNNING); "" when there is none.
SWEEP_FINISHED, SWEEP_STOPPED = "finished", "stopped"
SWEEP_ENDED = (SWEEP_FINISHED, SWEEP_STOPPED)
LOCK_FILE = ".larsbench.lock"


@dataclass(frozen=True)
class RunnerInfo:
    """runner.json as read: pid, host, state and current run of the process that owns a sweep.

    `data` is the object as written ({} when the file is missing or damaged); `problem` is
    "PATH: why" when the file is there but damaged, as rundir.read_json_object says it.
    """

    data: dict[str, Any] = field(default_factory=dict)
    problem: str = ""

    @property
    def pid(self) -> int | None:
        pid = self.data.get("pid")
        return pid if isinstance(pid, int) else None

    @property
    def host(self) -> Any:
        return self.data.get("host")

    @property
    def state(self) -> str:
        """running | finished | stopped; "" when none is written."""
        return str(self.data.get("state") or "")

    @property
    def current(self) -> Any:
        """The run the runner is on (None between runs)."""
        return self.data.get("current")

    @property
    def running(self) -> bool:
        return self.data.get("state") == RUNNING

    def alive(self) -> bool:
        """Whether the runner process exists; only answerable for a runner on this host."""
        return pid_alive(self.data.get("pid"), self.data.get("host"))


def read_runner(sweep: SweepPaths) -> RunnerInfo:
    """SWEEP/runner.json; a missing one reads as empty, a damaged one as empty with a problem."""
    data, problem = read_json_object(sweep.runner)
    return RunnerInfo(data or {}, problem)


def write_runner(sweep: SweepPaths, state: str, current: str | None, started: float) -> None:
    """Say that this process (on this host) owns the sweep, in which state and on which run."""
    write_json_atomic(
        sweep.runner,
        {
            "pid": os.getpid(),
            "host": node_name(),
            "started": started,
            "state": state,
            "current": current,
            "t": round(time.time(), 3),
        },
    )


def pid_alive(pid: Any, host: Any) -> bool:
    """Whether process `pid` exists; only answerable for a process on this host."""
    if not isinstance(pid, int) or pid <= 0 or host != node_name():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_runner(sweep: SweepPaths, sig: int) -> str:
    """Send a signal to the sweep's runner; '' when sent, else why not."""
    runner = read_runner(sweep)
    if runner.pid is None:
        return "no runner.json with a pid in this folder"
    if not runner.running:
        return f"the runner is not running (state {runner.data.get('state')!r})"
    if runner.host != node_name():
        return f"the runner runs on {runner.host}, not on this host"
    try:
        os.kill(runner.pid, sig)
    except ProcessLookupError:
        return f"runner pid {runner.pid} is gone"
    except PermissionError:
        return f"not allowed to signal pid {runner.pid}"
    return ""


class SweepBusyError(RuntimeError):
    """Another live `larsbench run` owns this output directory."""


@dataclass
class SweepLock:
    """An flock on SWEEP/.larsbench.lock held while `larsbench run` owns the folder; the file
    holds the owner's pid. The kernel drops the lock when the process dies, however it dies."""

    path: Path
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def claim(out: SweepPaths) -> SweepLock:
    """Own the sweep folder, or SweepBusyError naming the pid of the process that does."""
    import fcntl

    path = out.root / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise SweepBusyError(
            f"--out {out.root}: another larsbench run (pid {holder}) is running this sweep; "
            "wait for it, stop it, or use another --out"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return SweepLock(path, fd)

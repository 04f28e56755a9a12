"""The on-disk layout of a sweep and its runs: paths, atomic JSON files, run status."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Lifecycle of a run, as written to RUN/status.json.
QUEUED, RUNNING, COMPLETED, FAILED, DIVERGED, STOPPED = (
    "queued",
    "running",
    "completed",
    "failed",
    "diverged",
    "stopped",
)
STATES = (QUEUED, RUNNING, COMPLETED, FAILED, DIVERGED, STOPPED)
FINAL_STATES = (COMPLETED, FAILED, DIVERGED, STOPPED)
# Never written: what readers show for a run whose status.json cannot be read.
UNREADABLE = "unreadable"


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write JSON so that a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=False, allow_nan=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.filename is None:  # a full disk names no file
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise


def read_json(path: str | os.PathLike[str]) -> Any | None:
    """A JSON file's content, or None when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_json_object(path: str | os.PathLike[str]) -> tuple[dict[str, Any] | None, str]:
    """(the JSON object, "") when the file holds one; (None, "") when it is missing;
    (None, "PATH: why") when it is there but damaged (not JSON, not an object, unreadable)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None, ""
    except OSError as err:
        return None, f"{path}: unreadable ({err.strerror or err})"
    if not data.strip():
        return None, f"{path}: empty"
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None, f"{path}: not JSON"
    if not isinstance(obj, dict):
        return None, f"{path}: not a JSON object (a {type(obj).__name__})"
    return obj, ""


def node_name() -> str:
    """The name used in events/system-NODE.jsonl: the short host name."""
    return socket.gethostname().split(".")[0] or "node"


@dataclass(frozen=True)
class RunPaths:
    """Where the files of one run live."""

    root: Path

    @property
    def run_id(self) -> str:
        return self.root.name

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def result(self) -> Path:
        return self.root / "result.json"

    @property
    def events_dir(self) -> Path:
        return self.root / "events"

    @property
    def rank0_events(self) -> Path:
        return self.events_dir / "rank0.jsonl"

    def system_events(self, node: str) -> Path:
        return self.events_dir / f"system-{node}.jsonl"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    def has_checkpoint(self) -> bool:
        """A checkpoint a restarted run can resume from (train/checkpoint.py writes them)."""
        return any(self.checkpoints_dir.glob("ckpt-*.pt"))

    def read_status(self) -> dict[str, Any]:
        """status.json; a missing one reads as queued, a damaged one as unreadable (the
        reason names the file)."""
        status, problem = read_json_object(self.status)
        if problem:
            return {"state": UNREADABLE, "reason": problem}
        if status is None:
            return {"state": QUEUED}
        if not isinstance(status.get("state"), str) or status["state"] not in STATES:
            return {"state": UNREADABLE, "reason": f"{self.status}: no known state"}
        return status

    def write_status(self, state: str, reason: str = "", **extra: Any) -> dict[str, Any]:
        if state not in STATES:
            raise ValueError(f"unknown run state {state!r}; allowed: {', '.join(STATES)}")
        status = {"state": state, "reason": reason, "t": round(time.time(), 3), **extra}
        write_json_atomic(self.status, status)
        return status


@dataclass(frozen=True)
class SweepPaths:
    """Where the files of one sweep live."""

    root: Path

    @property
    def profile(self) -> Path:
        return self.root / "profile.toml"

    @property
    def sweep(self) -> Path:
        return self.root / "sweep.json"

    @property
    def runner(self) -> Path:
        """pid, host and state of the `larsbench run` process that owns the sweep
        (larsbench/runner_file.py reads and writes it)."""
        return self.root / "runner.json"

    def summary(self, ext: str) -> Path:
        return self.root / f"summary.{ext}"

    @property
    def file_lists(self) -> Path:
        """ImageFolder file lists scanned once for the sweep (larsbench/filelist.py)."""
        return self.root / "filelists"

    def run(self, run_id: str) -> RunPaths:
        return RunPaths(self.root / run_id)

    def run_ids(self) -> list[str]:
        """Run ids in sweep order (from sweep.json), else the run directories found."""
        data = read_json(self.sweep)
        if isinstance(data, dict) and isinstance(data.get("runs"), list):
            ids = [r.get("run_id") for r in data["runs"] if isinstance(r, dict)]
            return list(dict.fromkeys(i for i in ids if is_run_id(i)))
        try:
            return sorted(p.name for p in self.root.iterdir() if (p / "config.json").is_file())
        except OSError:
            return []


def is_run_id(value: Any) -> bool:
    """A run id names a folder inside the sweep folder, never a path out of it."""
    return (
        isinstance(value, str)
        and value not in ("", ".", "..")
        and not any(c in value for c in "/\\\0")
        and value.isprintable()
    )


def is_run_dir(path: Path) -> bool:
    return (path / "config.json").is_file() or (path / "events").is_dir()


def is_sweep_dir(path: Path) -> bool:
    return (path / "sweep.json").is_file()

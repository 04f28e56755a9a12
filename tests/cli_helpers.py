"""Helpers of the end-to-end tests: start `larsbench` as a user would and watch its files."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from larsbench.events import read_events

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "profiles" / "smoke.toml"


def larsbench(*args: str, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "larsbench.cli", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,  # type: ignore[arg-type]
    )


def smoke_run(out: Path, *args: str, **kw: object) -> subprocess.Popen[str]:
    """`larsbench run --profile profiles/smoke.toml --out OUT --no-telemetry ARGS...`."""
    return larsbench(
        "run", "--profile", str(SMOKE), "--out", str(out), "--no-telemetry", *args, **kw
    )


def finish(proc: subprocess.Popen[str], timeout: float = 600) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def wait_for(predicate, timeout: float = 120.0, every: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")


def first_step_pids(run_dir: Path) -> list[int] | None:
    events = read_events(run_dir / "events" / "rank0.jsonl")
    if not any(e["kind"] == "step" for e in events):
        return None
    return next(e["pids"] for e in events if e["kind"] == "run_start")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False

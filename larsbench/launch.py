"""torchrun command lines, starting a run's process group, stopping it, reading its exit."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from larsbench.plan.run import RunConfig
from larsbench.rundir import RunPaths

WORKER_MODULE = "larsbench.train.worker"


def torchrun_command(run: RunConfig, paths: RunPaths, rdzv_id: str = "") -> list[str]:
    """`python -m torch.distributed.run ... -m larsbench.train.worker --run-dir RUN`."""
    launch = run.launch
    cmd = [sys.executable, "-m", "torch.distributed.run"]
    cmd += ["--nproc-per-node", str(run.nproc_per_node), "--nnodes", str(launch.nnodes)]
    if launch.nnodes == 1 and not launch.rdzv_endpoint:
        cmd += ["--standalone"]
    else:
        cmd += ["--rdzv-backend", "c10d", "--rdzv-endpoint", launch.rdzv_endpoint]
        cmd += ["--rdzv-id", launch.rdzv_id or rdzv_id or run.run_id]
    cmd += ["--max-restarts", str(launch.max_restarts)]
    # Each rank's stdout/stderr go to RUN/logs/...; --tee also copies them to torchrun.log.
    cmd += ["--log-dir", str(paths.logs_dir), "--redirects", "3", "--tee", "3"]
    cmd += ["-m", WORKER_MODULE, "--run-dir", str(paths.root)]
    return cmd


def worker_environment(run: RunConfig, paths: RunPaths) -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(run.threads_per_rank)
    env["PYTHONUNBUFFERED"] = "1"
    if run.launch.max_restarts:
        # Without it, restarted workers fail to reconnect to the agent's shared TCP store
        # on this torch (pytorch issue 135712).
        env["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] = "1"
    if run.device == "cuda":
        # Collective hangs surface as errors (the NCCL watchdog) instead of silent stalls,
        # and the flight recorder keeps the last collectives of each rank for the post-mortem.
        env.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
        env.setdefault("TORCH_NCCL_TRACE_BUFFER_SIZE", "2000")
        env.setdefault("TORCH_NCCL_DUMP_ON_TIMEOUT", "1")
        env.setdefault("TORCH_FR_DUMP_TEMP_FILE", str(paths.logs_dir / "nccl_trace_rank_"))
    return env


@dataclass
class Launched:
    """A running torchrun group: its own process group, so one signal reaches every rank."""

    process: subprocess.Popen[bytes]
    log_path: Path
    started: float
    grace_seconds: float = 60.0

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def stop(self) -> int:
        """SIGTERM to the ranks, SIGKILL to the whole group after `grace_seconds`; returns the
        exit code.

        The signal goes to the ranks (torchrun's children) alone: a loader worker that gets
        SIGTERM dies, and its rank with it ("DataLoader worker killed"), before the stop
        checkpoint. The ranks agree to stop at the step after, checkpoint, exit 0, and torchrun
        then exits. Before any rank has started, torchrun's group gets the SIGTERM instead.
        """
        if self.process.poll() is None:
            ranks = _children(self.process.pid)
            for pid in ranks:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGTERM)
            if not ranks:
                _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=self.grace_seconds)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # Data-loader workers or ranks that outlived torchrun are still in its group.
        _signal_group(self.process.pid, signal.SIGKILL)
        return self.process.returncode


def _children(pid: int) -> list[int]:
    import psutil

    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def start(
    run: RunConfig, paths: RunPaths, rdzv_id: str = "", log_name: str = "torchrun"
) -> Launched:
    paths.logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = paths.logs_dir / f"{log_name}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            torchrun_command(run, paths, rdzv_id),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=worker_environment(run, paths),
            start_new_session=True,
        )
    return Launched(process, log_path, time.time(), run.launch.stop_grace_seconds)


_ERROR_LINE = re.compile(r"^(?:\[\w+\]:)?\s*(\w+(?:\.\w+)*(?:Error|Exception|Interrupt)\b.*)$")


def root_cause(lines: list[str]) -> str | None:
    """The first failure of torchrun's last "Root Cause" block (from the ranks' @record):
    which rank, its exit code, and the last line of its traceback or the signal."""
    starts = [i for i, line in enumerate(lines) if line.startswith("Root Cause")]
    if not starts:
        return None
    fields: dict[str, str] = {}
    traceback: list[str] = []
    for line in lines[starts[-1] + 1 :]:
        if line.startswith("====="):
            break
        key, sep, value = line.strip().partition(":")
        if traceback or (sep and key.strip() == "traceback"):
            traceback.append(value.strip() if not traceback else line.strip())
        elif sep:
            fields[key.strip()] = value.strip()
    last = next((t for t in reversed(traceback) if t), "")
    rank = fields.get("rank", "?").split(" ")[0]
    code = fields.get("exitcode", "?").split(" ")[0]
    return f"rank {rank} failed (exit {code}): {last}"[:400]


def failure_reason(log_path: Path, returncode: int) -> str:
    """torchrun's root cause, else the last exception line logged, else the exit code."""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    cause = root_cause(lines)
    if cause:
        return f"{cause} (see logs/torchrun.log)"
    for line in reversed(lines):
        m = _ERROR_LINE.match(line.strip())
        if m and "ChildFailedError" not in m.group(1):
            return f"{m.group(1)[:300]} (exit {returncode}; see logs/torchrun.log)"
    return f"torchrun exited with code {returncode}; see logs/torchrun.log"

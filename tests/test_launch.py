"""torchrun command lines and the failure reasons read back from torchrun's log."""

from __future__ import annotations

from pathlib import Path

from larsbench.launch import failure_reason, torchrun_command, worker_environment
from larsbench.plan.expand import expand
from larsbench.plan.machine import Machine
from larsbench.profile.loading import parse_profile
from larsbench.rundir import RunPaths

ROOT_CAUSE_SIGNAL = """\
[W] some warning
Root Cause (first observed failure):
[0]:
  time      : 2026-11-28_03:47:11
  host      : localhost
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 17662)  (SIGKILL)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 17662
============================================================
"""

ROOT_CAUSE_EXCEPTION = """\
[default0]:RuntimeError: [/pair.cc:545] Read error: Connection reset by peer
Root Cause (first observed failure):
[0]:
  rank      : 0 (local_rank: 0)
  exitcode  : 1 (pid: 6393)
  error_file: /tmp/error.json
  traceback : Traceback (most recent call last):
    File "worker.py", line 304, in main
      train(run, paths, d)
  ValueError: model.arch: torchvision has no classification model 'resnet5'
============================================================
"""


def run_of(**launch: object):  # type: ignore[no-untyped-def]
    profile = parse_profile(
        {
            "name": "p",
            "launch": {"device": "cpu", **launch},
            "train": {"batch_size": 64},
            "data": {"source": "synthetic"},
        }
    )
    return expand(profile, Machine(gpus=0, cpus=2))[0]


def test_single_node_is_standalone_with_per_rank_logs(tmp_path: Path) -> None:
    run = run_of(nproc_per_node=2)
    cmd = torchrun_command(run, RunPaths(tmp_path / "r"))
    assert cmd[1:3] == ["-m", "torch.distributed.run"]
    assert "--standalone" in cmd and cmd[cmd.index("--nproc-per-node") + 1] == "2"
    assert cmd[cmd.index("--log-dir") + 1] == str(tmp_path / "r" / "logs")
    assert cmd[cmd.index("-m", 3) + 1] == "larsbench.train.worker"


def test_multi_node_uses_the_c10d_rendezvous(tmp_path: Path) -> None:
    run = run_of(nproc_per_node=1, nnodes=2, rdzv_endpoint="127.0.0.1:29999")
    cmd = torchrun_command(run, RunPaths(tmp_path / "r"), rdzv_id="sweep-run")
    assert "--standalone" not in cmd
    assert cmd[cmd.index("--rdzv-backend") + 1] == "c10d"
    assert cmd[cmd.index("--rdzv-endpoint") + 1] == "127.0.0.1:29999"
    assert cmd[cmd.index("--rdzv-id") + 1] == "sweep-run"


def test_environment_sets_threads_and_the_restart_workaround(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path / "r")
    env = worker_environment(run_of(nproc_per_node=2, threads_per_rank=1, max_restarts=2), paths)
    assert env["OMP_NUM_THREADS"] == "1"
    assert env["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] == "1"
    assert "TORCH_DISABLE_SHARE_RDZV_TCP_STORE" not in worker_environment(run_of(), paths)
    assert "TORCH_NCCL_TRACE_BUFFER_SIZE" not in worker_environment(run_of(), paths)


def test_gpu_runs_get_the_nccl_watchdog_and_flight_recorder(tmp_path: Path) -> None:
    profile = parse_profile(
        {
            "name": "g",
            "launch": {"device": "cuda", "nproc_per_node": 8},
            "train": {"batch_size": 256},
            "data": {"source": "synthetic"},
        }
    )
    run = expand(profile, Machine(gpus=8, cpus=64))[0]
    env = worker_environment(run, RunPaths(tmp_path / "r"))
    assert env["TORCH_NCCL_ASYNC_ERROR_HANDLING"] == "1"
    assert env["TORCH_NCCL_DUMP_ON_TIMEOUT"] == "1"
    assert env["TORCH_FR_DUMP_TEMP_FILE"] == str(tmp_path / "r" / "logs" / "nccl_trace_rank_")


def test_failure_reason_names_the_rank_and_the_signal(tmp_path: Path) -> None:
    log = tmp_path / "torchrun.log"
    log.write_text(ROOT_CAUSE_SIGNAL)
    reason = failure_reason(log, 1)
    assert reason.startswith("rank 1 failed (exit -9): Signal 9 (SIGKILL)")


def test_failure_reason_takes_the_root_causes_exception_not_a_peers(tmp_path: Path) -> None:
    log = tmp_path / "torchrun.log"
    log.write_text(ROOT_CAUSE_EXCEPTION)
    reason = failure_reason(log, 1)
    assert "rank 0 failed (exit 1): ValueError: model.arch" in reason
    assert "Connection reset" not in reason


def test_failure_reason_without_a_root_cause(tmp_path: Path) -> None:
    log = tmp_path / "torchrun.log"
    log.write_text("[default1]:OSError: disk full\n")
    assert failure_reason(log, 2).startswith("OSError: disk full (exit 2")
    assert "code 3" in failure_reason(tmp_path / "missing.log", 3)


# A stand-in for torchrun's tree: the agent, one rank, and the rank's forked loader worker.
# Each notes the SIGTERM it gets; a loader worker dies of it, as torch's do.
FAKE_RANK = r"""
import os, signal, sys, time
log = sys.argv[1]
def note(what):
    with open(log, "a") as f:
        f.write(what + "\n")
if os.fork() == 0:
    signal.signal(signal.SIGTERM, lambda *_: (note("worker TERM"), os._exit(1)))
    note(f"worker {os.getpid()}")
    while True:
        time.sleep(0.05)
signal.signal(signal.SIGTERM, lambda *_: (note("rank TERM"), sys.exit(0)))
note("rank up")
while True:
    time.sleep(0.05)
"""
FAKE_TORCHRUN = "import subprocess, sys; sys.exit(subprocess.call([sys.executable, *sys.argv[1:]]))"


def test_a_stop_signals_the_ranks_and_not_their_loader_workers(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    from cli_helpers import alive, wait_for

    from larsbench.launch import Launched

    log = tmp_path / "signals.log"
    argv = [sys.executable, "-c", FAKE_TORCHRUN, "-c", FAKE_RANK, str(log)]
    process = subprocess.Popen(argv, start_new_session=True)
    group = Launched(process, tmp_path / "torchrun.log", time.time(), grace_seconds=20)
    lines = wait_for(lambda: log.exists() and len(log.read_text().split("\n")) > 2 and log)
    worker_pid = int(next(w for w in lines.read_text().split() if w.isdigit()))
    assert group.stop() == 0  # the rank exited cleanly, and the agent with it
    notes = log.read_text()
    assert "rank TERM" in notes and "worker TERM" not in notes, notes
    wait_for(lambda: not alive(worker_pid), timeout=5)  # the group's final SIGKILL took it

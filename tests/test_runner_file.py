"""runner.json (read, write, is-alive, signal) and the sweep lock, in their one module."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from larsbench.rundir import RUNNING, SweepPaths, node_name, read_json
from larsbench.runner_file import (
    LOCK_FILE,
    SWEEP_FINISHED,
    RunnerInfo,
    SweepBusyError,
    claim,
    pid_alive,
    read_runner,
    signal_runner,
    write_runner,
)


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write(sweep: SweepPaths, **fields: object) -> None:
    sweep.root.mkdir(parents=True, exist_ok=True)
    sweep.runner.write_text(json.dumps(fields), encoding="utf-8")


def test_what_is_written_reads_back_as_this_live_process(tmp_path: Path) -> None:
    sweep = SweepPaths(tmp_path)
    write_runner(sweep, RUNNING, "bs64-sgd", started=12.5)
    raw = read_json(sweep.runner)
    assert raw["pid"] == os.getpid() and raw["host"] == node_name()
    assert raw["started"] == 12.5 and raw["t"] >= 12.5
    runner = read_runner(sweep)
    assert runner.problem == "" and runner.data == raw
    assert runner.pid == os.getpid() and runner.host == node_name()
    assert runner.state == RUNNING and runner.running and runner.current == "bs64-sgd"
    assert runner.alive()


def test_the_sweeps_end_is_written_with_no_current_run(tmp_path: Path) -> None:
    sweep = SweepPaths(tmp_path)
    write_runner(sweep, SWEEP_FINISHED, None, started=1.0)
    runner = read_runner(sweep)
    assert runner.state == "finished" and not runner.running and runner.current is None


def test_a_missing_file_reads_as_no_runner(tmp_path: Path) -> None:
    runner = read_runner(SweepPaths(tmp_path))
    assert runner == RunnerInfo()
    assert runner.state == "" and runner.pid is None and not runner.alive()


@pytest.mark.parametrize(
    ("content", "why"),
    [(b"{not json", "not JSON"), (b"", "empty"), (b"[1, 2]", "not a JSON object (a list)")],
)
def test_a_damaged_file_reads_as_unreadable_naming_the_file(
    tmp_path: Path, content: bytes, why: str
) -> None:
    sweep = SweepPaths(tmp_path)
    sweep.runner.write_bytes(content)
    runner = read_runner(sweep)
    assert runner.problem == f"{sweep.runner}: {why}"
    assert runner.data == {} and runner.state == "" and not runner.alive()
    assert signal_runner(sweep, signal.SIGUSR1) == "no runner.json with a pid in this folder"


def test_a_dead_pid_is_not_alive_and_is_not_signalled(tmp_path: Path) -> None:
    pid = _dead_pid()
    assert not pid_alive(pid, node_name())
    sweep = SweepPaths(tmp_path)
    _write(sweep, pid=pid, host=node_name(), state=RUNNING, current="bs64-sgd")
    assert not read_runner(sweep).alive()
    assert signal_runner(sweep, signal.SIGUSR1) == f"runner pid {pid} is gone"


def test_a_pid_on_another_host_is_not_answerable_here(tmp_path: Path) -> None:
    other = node_name() + "-elsewhere"
    assert not pid_alive(os.getpid(), other)
    sweep = SweepPaths(tmp_path)
    _write(sweep, pid=os.getpid(), host=other, state=RUNNING)
    assert not read_runner(sweep).alive()
    assert signal_runner(sweep, signal.SIGUSR1) == f"the runner runs on {other}, not on this host"


@pytest.mark.parametrize("pid", [None, 0, -3, "123", 1.5])
def test_no_usable_pid_is_never_alive(pid: object) -> None:
    assert not pid_alive(pid, node_name())


def test_a_runner_that_has_ended_is_not_signalled(tmp_path: Path) -> None:
    sweep = SweepPaths(tmp_path)
    _write(sweep, pid=os.getpid(), host=node_name(), state="finished")
    assert signal_runner(sweep, signal.SIGUSR1) == "the runner is not running (state 'finished')"


def test_a_live_local_runner_gets_the_signal(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        sweep = SweepPaths(tmp_path)
        _write(sweep, pid=proc.pid, host=node_name(), state=RUNNING)
        assert read_runner(sweep).alive()
        assert signal_runner(sweep, signal.SIGTERM) == ""
        assert proc.wait(timeout=30) == -signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()


def test_a_claimed_folder_refuses_a_second_claim_naming_the_holder(tmp_path: Path) -> None:
    out = SweepPaths(tmp_path)
    lock = claim(out)
    try:
        assert (tmp_path / LOCK_FILE).read_text().strip() == str(os.getpid())
        with pytest.raises(SweepBusyError, match=rf"another larsbench run \(pid {os.getpid()}\)"):
            claim(out)  # flock: another open file description conflicts, even in one process
    finally:
        lock.release()
    lock.release()  # twice is harmless
    claim(out).release()


def test_the_watcher_and_the_start_screen_read_a_damaged_runner_json_as_today(
    tmp_path: Path,
) -> None:
    from fixtures.make_sweep import make_recorded_sweep

    from larsbench.tui.discover import sweep_entry
    from larsbench.tui.watcher import SweepWatcher

    sweep = make_recorded_sweep(tmp_path)
    assert sweep_entry(sweep).state == "finished"
    runner = SweepPaths(sweep).runner
    runner.write_bytes(b'{"pid": 12')
    view = SweepWatcher(sweep, clock=lambda: 0.0).poll()
    assert view is not None and f"{runner}: not JSON" in view.unreadable
    assert view.runner_state == "" and view.runner_pid is None and not view.runner_alive
    assert sweep_entry(sweep).state == ""

"""Node K > 0 of a multi-node sweep waits on node 0's runner.json before it joins a run."""

from __future__ import annotations

import time
from pathlib import Path

from cli_helpers import SMOKE

from larsbench.plan.machine import Machine
from larsbench.rundir import COMPLETED, RUNNING, SweepPaths
from larsbench.runner_file import SWEEP_FINISHED, write_runner
from larsbench.sweep.follower import LeaderFollower
from larsbench.sweep.observers import QuietObserver
from larsbench.sweep.prepare import prepare_sweep


def _follower(out: SweepPaths, stop: list[str]) -> LeaderFollower:
    plan = prepare_sweep(
        SMOKE,
        [("launch.nnodes", 2), ("launch.rdzv_endpoint", "127.0.0.1:29999")],
        Machine(gpus=0, cpus=2),
    )
    return LeaderFollower(
        plan,
        out,
        QuietObserver(),
        node="here-n1",
        poll_seconds=0.01,
        start_sampler=lambda run, paths: None,
        stop_requested=lambda: stop[0],
    )


def test_the_follower_joins_the_run_node_0_is_on(tmp_path: Path) -> None:
    out = SweepPaths(tmp_path)
    follower = _follower(out, [""])
    write_runner(out, RUNNING, "bs64-sgd", started=time.time())
    assert follower.leader_runs("bs64-sgd", out.run("bs64-sgd"))


def test_the_follower_passes_a_completed_run_by(tmp_path: Path) -> None:
    out = SweepPaths(tmp_path)
    follower = _follower(out, [""])
    out.run("bs64-sgd").write_status(COMPLETED)
    assert not follower.leader_runs("bs64-sgd", out.run("bs64-sgd"))


def test_the_follower_passes_by_once_this_sweep_has_ended(tmp_path: Path) -> None:
    out = SweepPaths(tmp_path)
    follower = _follower(out, [""])
    write_runner(out, SWEEP_FINISHED, None, started=time.time())  # t: after follower's start
    assert not follower.leader_runs("bs64-sgd", out.run("bs64-sgd"))


def test_a_stop_ends_the_wait(tmp_path: Path) -> None:
    out = SweepPaths(tmp_path)
    assert not _follower(out, ["stopped by SIGTERM"]).leader_runs("bs64-sgd", out.run("bs64-sgd"))

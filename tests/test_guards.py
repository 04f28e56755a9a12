"""The divergence and stall guards of docs/reliability.md: at their boundaries as functions,
then end to end (a loss that explodes without NaN, a rank frozen with SIGSTOP, a profile
changed under an existing run name)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import ROOT, SMOKE, finish, first_step_pids, smoke_run, wait_for

from larsbench.events import SourcedEvent
from larsbench.plan.machine import Machine
from larsbench.rundir import COMPLETED, SweepPaths, read_json
from larsbench.sweep.prepare import prepare_sweep, write_sweep_files
from larsbench.sweep.stall_watch import StallWatch
from larsbench.train.worker import exploded, trust_collapsed

# --- exploded --------------------------------------------------------------------------------


def test_exploded_needs_five_earlier_reports() -> None:
    assert not exploded([1.0] * 4, 1e9, 10.0)
    assert exploded([1.0] * 5, 1e9, 10.0)


def test_exploded_is_strictly_above_factor_times_the_median() -> None:
    history = [1.0, 2.0, 3.0, 4.0, 5.0]  # median 3
    assert not exploded(history, 30.0, 10.0)
    assert exploded(history, 30.000001, 10.0)


def test_exploded_uses_the_median_of_the_last_twenty_reports_only() -> None:
    # Over the whole history the median would be 100 (first case) and 1 (second).
    assert exploded([100.0] * 30 + [1.0] * 20, 10.5, 10.0)
    assert not exploded([1.0] * 30 + [100.0] * 20, 500.0, 10.0)


def test_exploded_is_off_at_factor_zero() -> None:
    assert not exploded([1.0] * 20, 1e30, 0.0)


def test_exploded_ignores_a_loss_that_falls() -> None:
    assert not exploded([2.3, 2.2, 2.0, 1.9, 1.7], 0.01, 10.0)


# --- trust_collapsed ---------------------------------------------------------------------------


def test_trust_collapsed_when_every_layer_is_below_one_in_a_million() -> None:
    assert trust_collapsed([0.0, 1e-9, 9.99e-7])
    assert not trust_collapsed([0.0, 1e-9, 1e-6])  # the boundary is strict
    assert not trust_collapsed([0.0] * 160 + [0.5])  # one layer still learns


def test_trust_collapsed_never_on_no_layers() -> None:
    assert not trust_collapsed([])


# --- StallWatch ----------------------------------------------------------------------------------


def rank0() -> list[SourcedEvent]:
    return [SourcedEvent("rank0", {"kind": "step"})]


def system() -> list[SourcedEvent]:
    return [SourcedEvent("system-node0", {"kind": "system"})]


def test_stallwatch_waits_for_the_first_training_event() -> None:
    watch = StallWatch(floor_seconds=5)
    assert watch.update([], 0.0) is None
    assert watch.update(system(), 1000.0) is None  # telemetry alone is not training
    assert not watch.stalled


def test_stallwatch_flags_after_the_floor_once_and_clears_on_the_next_event() -> None:
    watch = StallWatch(floor_seconds=5)
    assert watch.update(rank0(), 100.0) is None
    assert watch.update(system(), 105.0) is None  # exactly the floor: not yet
    assert watch.update([], 105.01) is True
    assert watch.stalled and "no training event for 5 s (limit 5 s)" in watch.reason
    assert watch.update([], 200.0) is None  # told once
    assert watch.update(rank0(), 201.0) is False
    assert not watch.stalled and watch.reason == ""


def test_stallwatch_limit_is_ten_times_the_median_gap_when_that_is_longer() -> None:
    watch = StallWatch(floor_seconds=5)
    t = 0.0
    for gap in (1.0, 2.0, 3.0, 2.0, 2.0):  # median gap 2 s: limit 20 s
        t += gap
        watch.update(rank0(), t)
    assert watch.limit() == pytest.approx(20.0)
    assert watch.update([], t + 19.9) is None
    assert watch.update([], t + 20.1) is True


def test_stallwatch_floor_wins_over_short_gaps() -> None:
    watch = StallWatch(floor_seconds=120)
    for t in range(10):
        watch.update(rank0(), float(t))  # 1 s apart: 10x is 10 s < 120 s
    assert watch.limit() == 120
    assert watch.update([], 9.0 + 119) is None
    assert watch.update([], 9.0 + 121) is True


# --- end to end ------------------------------------------------------------------------------

SGD_BS64 = ["--set", 'sweep.optimizer=[{name="sgd"}]', "--set", "sweep.train.batch_size=[64]"]


@pytest.mark.slow
def test_a_loss_that_explodes_without_nan_is_diverged_by_the_explosion_guard(
    tmp_path: Path,
) -> None:
    out = tmp_path / "explode"
    code, log = finish(
        smoke_run(
            out,
            *SGD_BS64,
            "--set",
            "train.epochs=2",
            "--set",
            "train.log_every=1",
            # An lr far too large for SGD, reached by the smoke profile's 1-epoch warm-up: the
            # loss swings up (2.5 ... 52, then 696 at step 19 on this seed) and leaves 10x its
            # running median long before it overflows.
            "--set",
            "train.schedule='constant'",
            "--set",
            "train.base_lr=30",
        ),
        timeout=300,
    )
    assert code == 1, log
    run = SweepPaths(out).run("bs64-sgd")
    status = read_json(run.status)
    assert status["state"] == "diverged", status
    assert "x its running median" in status["reason"] and "non-finite" not in status["reason"]
    steps = [e for e in _events(run.rank0_events) if e["kind"] == "step"]
    assert steps and all(isinstance(s["loss"], float) and s["loss"] < 1e30 for s in steps)


def _events(path: Path) -> list[dict]:  # type: ignore[type-arg]
    from larsbench.events import read_events

    return read_events(path)


@pytest.mark.slow
def test_a_rank_frozen_with_sigstop_is_flagged_stalled_within_the_threshold(
    tmp_path: Path,
) -> None:
    out = tmp_path / "stall"
    proc = smoke_run(
        out,
        "--stall-seconds",
        "3",
        *SGD_BS64,
        "--set",
        "train.epochs=50",
        start_new_session=True,
    )
    run = SweepPaths(out).run("bs64-sgd")
    frozen: int | None = None
    try:
        pids = wait_for(lambda: first_step_pids(run.root), timeout=180)
        frozen = pids[1]
        os.kill(frozen, signal.SIGSTOP)
        status = wait_for(lambda: (s := read_json(run.status)) and s.get("stalled") and s, 60)
        assert status["state"] == "running"
        assert "no training event for" in status["stalled_reason"]
        os.kill(frozen, signal.SIGCONT)
        frozen = None
        wait_for(lambda: (s := read_json(run.status)) and s.get("stalled") is False, 60)
    finally:
        if frozen is not None:
            os.kill(frozen, signal.SIGCONT)
        os.killpg(proc.pid, signal.SIGINT)
        code, log = finish(proc, timeout=60)
    assert code == 130, log
    assert read_json(run.status)["state"] == "stopped"


def test_a_profile_changed_under_a_completed_run_name_is_refused_naming_the_keys(
    tmp_path: Path,
) -> None:
    out = SweepPaths(tmp_path / "sweep")
    plan = prepare_sweep(SMOKE, [("train.epochs", 2)], Machine(gpus=0, cpus=2))
    write_sweep_files(plan, out)
    done = out.run("bs64-sgd")
    done.write_status(COMPLETED)  # as a finished earlier sweep leaves it
    before = {p: p.read_bytes() for p in out.root.rglob("*") if p.is_file()}
    cmd = [sys.executable, "-m", "larsbench.cli", "run", "--profile", str(SMOKE)]
    cmd += ["--out", str(out.root), "--set", "train.epochs=3", "--set", "train.base_lr=0.2"]
    done_proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done_proc.returncode == 2, done_proc.stdout + done_proc.stderr
    err = done_proc.stderr
    assert f"{done.root}: completed with a different configuration" in err
    assert "train.epochs 2 -> 3" in err and "train.base_lr 0.1 -> 0.2" in err
    assert "Traceback" not in err
    assert {p: p.read_bytes() for p in out.root.rglob("*") if p.is_file()} == before


class _GroupThatEnds:
    """A torchrun group that has already exited: run_one's loop polls it once."""

    pid, started, log_path = 0, 0.0, Path("/nonexistent/torchrun.log")

    def __init__(self, status_path: Path) -> None:
        self.status_path = status_path
        self.seen: dict | None = None  # type: ignore[type-arg]

    def poll(self) -> int:
        self.seen = read_json(self.status_path)  # what a viewer reads while the run runs
        return 1


def test_a_sampler_that_cannot_start_is_recorded_and_the_run_still_launches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from larsbench import launch
    from larsbench.sweep.run_sampler import RunSampler
    from larsbench.sweep.runner import SweepRunner

    plan = prepare_sweep(SMOKE, [], Machine(gpus=0, cpus=2))
    out = SweepPaths(tmp_path / "sweep")
    run = plan.runs[0]
    write_sweep_files(plan, out)
    groups: list[_GroupThatEnds] = []

    def start(*_a: object, **_k: object) -> _GroupThatEnds:
        groups.append(_GroupThatEnds(out.run(run.run_id).status))
        return groups[-1]

    def no_sampler(*_a: object, **_k: object) -> RunSampler:
        raise RuntimeError("NVML: driver not loaded")

    monkeypatch.setattr(launch, "start", start)
    monkeypatch.setattr(launch, "failure_reason", lambda path, code: f"exit {code}")
    monkeypatch.setattr(RunSampler, "start", no_sampler)
    result = SweepRunner(plan, out, poll_seconds=0.01).run_one(run, out.run(run.run_id), 1, 1)
    assert len(groups) == 1, "the run was launched although telemetry failed"
    seen = groups[0].seen
    assert seen is not None and seen["state"] == "running"
    assert seen["telemetry_error"] == "telemetry off: RuntimeError: NVML: driver not loaded"
    assert result.status == "failed" and result.reason == "exit 1"


def test_the_same_profile_again_skips_the_completed_run_and_keeps_its_files(
    tmp_path: Path,
) -> None:
    out = SweepPaths(tmp_path / "sweep")
    plan = prepare_sweep(SMOKE, [("train.epochs", 2)], Machine(gpus=0, cpus=2))
    write_sweep_files(plan, out)
    done = out.run("bs64-sgd")
    done.write_status(COMPLETED)
    done.result.write_text('{"status": "completed"}')
    todo = [r.run_id for r in write_sweep_files(plan, out)]
    assert "bs64-sgd" not in todo and len(todo) == len(plan.runs) - 1
    assert read_json(done.status)["state"] == COMPLETED
    assert read_json(done.result) == {"status": "completed"}

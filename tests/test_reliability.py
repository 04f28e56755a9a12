"""Runs that survive: checkpoints, resume, restarts of a dead rank, divergence (faults injected)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from cli_helpers import SMOKE, finish, first_step_pids, larsbench, smoke_run, wait_for
from torch import nn

from larsbench.events import read_events
from larsbench.rundir import SweepPaths, read_json
from larsbench.train import checkpoint
from larsbench.train.setup import Parts

SGD_BS64 = ["--set", 'sweep.optimizer=[{name="sgd"}]', "--set", "sweep.train.batch_size=[64]"]


def tiny_parts() -> Parts:
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return Parts(
        model=model,
        ddp=None,  # type: ignore[arg-type]
        optimizer=opt,
        scheduler=torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0),
        scaler=torch.amp.GradScaler("cpu", enabled=False),
        criterion=nn.CrossEntropyLoss(),
        names=["weight", "bias"],
    )


def position(step: int) -> checkpoint.Position:
    return checkpoint.Position(
        epoch=1, epoch_step=step, step=step, train_seconds=1.0, events_offset=10 * step
    )


def test_checkpoints_keep_the_last_two_and_restore_state(tmp_path: Path) -> None:
    parts = tiny_parts()
    for step in (1, 2, 3):
        with torch.no_grad():
            parts.model.weight.fill_(float(step))
        checkpoint.save(tmp_path, parts, position(step), "r")
    assert [p.name for p in checkpoint.checkpoints(tmp_path)] == [
        "ckpt-000000003.pt",
        "ckpt-000000002.pt",
    ]
    fresh = tiny_parts()
    loaded = checkpoint.load_latest(tmp_path, "r")
    assert loaded is not None and loaded.position == position(3)
    checkpoint.restore(fresh, loaded)
    assert torch.equal(fresh.model.weight, torch.full((2, 3), 3.0))


def test_a_kill_between_write_and_rename_leaves_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = tiny_parts()
    checkpoint.save(tmp_path, parts, position(1), "r")

    def killed(*_: object) -> None:
        raise KeyboardInterrupt("killed before the rename")

    monkeypatch.setattr(checkpoint.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path, parts, position(2), "r")
    assert list(tmp_path.glob(".*.tmp")), "the half-written file is left behind"
    loaded = checkpoint.load_latest(tmp_path, "r")
    assert loaded is not None and loaded.position.step == 1


def test_a_corrupt_checkpoint_falls_back_to_the_previous_one_and_says_so(
    tmp_path: Path,
) -> None:
    parts = tiny_parts()
    checkpoint.save(tmp_path, parts, position(1), "r")
    newest = checkpoint.save(tmp_path, parts, position(2), "r")
    newest.write_bytes(b"not a checkpoint")
    loaded = checkpoint.load_latest(tmp_path, "r")
    assert loaded is not None and loaded.position.step == 1
    assert loaded.skipped and newest.name in loaded.skipped[0]


def test_no_readable_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "ckpt-000000001.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"no readable checkpoint.*--fresh"):
        checkpoint.load_latest(tmp_path, "r")
    assert checkpoint.load_latest(tmp_path / "none", "r") is None


def test_another_runs_checkpoint_is_not_taken(tmp_path: Path) -> None:
    checkpoint.save(tmp_path, tiny_parts(), position(1), "other-run")
    with pytest.raises(ValueError, match="belongs to run 'other-run'"):
        checkpoint.load_latest(tmp_path, "r")


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    newest = checkpoint.checkpoints(run_dir / "checkpoints")[0]
    return torch.load(newest, map_location="cpu", weights_only=False)["model"]


def kinds(run_dir: Path) -> list[str]:
    return [e["kind"] for e in read_events(run_dir / "events" / "rank0.jsonl")]


def test_a_json_write_on_a_full_disk_names_the_file_and_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from larsbench import rundir

    status = tmp_path / "status.json"
    rundir.write_json_atomic(status, {"state": "running"})

    def full(*_: object, **__: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")  # as a write reports it

    monkeypatch.setattr(rundir.json, "dump", full)
    with pytest.raises(OSError) as caught:
        rundir.write_json_atomic(status, {"state": "failed"})
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(status)
    assert read_json(status) == {"state": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


@pytest.mark.slow
def test_stop_then_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path: Path) -> None:
    common = [
        "run",
        "--profile",
        str(SMOKE),
        "--no-telemetry",
        "--set",
        "train.epochs=3",
        *SGD_BS64,
    ]
    code, log = finish(larsbench(*common, "--out", str(tmp_path / "straight")))
    assert code == 0, log

    out = tmp_path / "stopped"
    proc = larsbench(*common, "--out", str(out))
    run_dir = out / "bs64-sgd"
    wait_for(
        lambda: any(
            e["kind"] == "step" and e["epoch"] == 2
            for e in read_events(run_dir / "events" / "rank0.jsonl")
        )
    )
    proc.send_signal(signal.SIGINT)
    code, log = finish(proc, timeout=30)
    assert code == 130, log
    assert read_json(run_dir / "status.json")["state"] == "stopped"
    stop_end = read_events(run_dir / "events" / "rank0.jsonl")[-1]
    assert stop_end["kind"] == "run_end" and stop_end["status"] == "stopped"
    code, log = finish(larsbench(*common, "--out", str(out)))
    assert code == 0, log
    assert read_json(run_dir / "status.json")["state"] == "completed"
    k = kinds(run_dir)
    assert k.count("run_start") == 1 and k.count("resume") == 1 and k[-1] == "run_end"
    steps = [
        e["step"] for e in read_events(run_dir / "events" / "rank0.jsonl") if e["kind"] == "step"
    ]
    assert steps == sorted(set(steps)), "duplicated or reordered step events"
    a, b = final_weights(tmp_path / "straight" / "bs64-sgd"), final_weights(run_dir)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a)


@pytest.mark.slow
def test_a_stop_with_loader_workers_resumes_mid_epoch_with_nothing_lost(tmp_path: Path) -> None:
    # Loader workers that got the stop's SIGTERM died, and their ranks with them, before the
    # stop checkpoint; the stop also waited for a report (here only at the epoch's end).
    # Batch 16: 89 steps an epoch, so that the stop, a few steps after the first report,
    # lands mid-epoch even on a fast machine (at batch 64 the 22 steps could all be done).
    sgd_bs16 = ["--set", 'sweep.optimizer=[{name="sgd"}]', "--set", "sweep.train.batch_size=[16]"]
    common = ["run", "--profile", str(SMOKE), "--no-telemetry", *sgd_bs16]
    common += ["--set", "train.epochs=2", "--set", "data.workers=2", "--set", "train.log_every=2"]
    code, log = finish(larsbench(*common, "--out", str(tmp_path / "straight")))
    assert code == 0, log

    out = tmp_path / "stopped"
    proc = larsbench(*common, "--out", str(out))
    run_dir = out / "bs16-sgd"
    wait_for(lambda: "step" in kinds(run_dir))
    proc.send_signal(signal.SIGINT)
    code, log = finish(proc, timeout=60)
    assert code == 130, log
    events = read_events(run_dir / "events" / "rank0.jsonl")
    stop_end, saved = events[-1], events[-2]
    assert stop_end["kind"] == "run_end" and stop_end["status"] == "stopped", log
    assert saved["kind"] == "checkpoint" and saved["step"] == stop_end["step"]
    steps_per_epoch = events[0]["steps_per_epoch"]
    assert 0 < saved["epoch_step"] < steps_per_epoch, "the stop landed mid-epoch"
    code, log = finish(larsbench(*common, "--out", str(out)))
    assert code == 0, log
    resume = next(
        e for e in read_events(run_dir / "events" / "rank0.jsonl") if e["kind"] == "resume"
    )
    assert (resume["epoch"], resume["epoch_step"]) == (saved["epoch"], saved["epoch_step"])
    a, b = final_weights(tmp_path / "straight" / "bs16-sgd"), final_weights(run_dir)
    assert all(torch.equal(a[key], b[key]) for key in a)


@pytest.mark.slow
def test_a_dead_rank_is_restarted_by_torchrun_and_the_run_resumes(tmp_path: Path) -> None:
    out = tmp_path / "restart"
    proc = smoke_run(
        out,
        "--set",
        "train.epochs=3",
        "--set",
        "launch.max_restarts=1",
        *SGD_BS64,
    )
    run_dir = out / "bs64-sgd"
    wait_for(lambda: "checkpoint" in kinds(run_dir) and first_step_pids(run_dir))
    os.kill(first_step_pids(run_dir)[1], signal.SIGKILL)
    code, log = finish(proc)
    assert code == 0, log
    assert read_json(run_dir / "status.json")["state"] == "completed"
    resume = next(
        e for e in read_events(run_dir / "events" / "rank0.jsonl") if e["kind"] == "resume"
    )
    assert resume["restart_count"] == 1 and resume["epoch"] >= 2


@pytest.mark.slow
def test_a_forced_nan_marks_the_run_diverged_and_the_sweep_goes_on(tmp_path: Path) -> None:
    out = tmp_path / "nan"
    code, log = finish(
        smoke_run(
            out,
            "--set",
            "train.epochs=2",
            "--set",
            'sweep.optimizer=[{name="sgd"}]',
            "--set",
            "sweep.train.base_lr=[1e8, 0.1]",
            "--set",
            "sweep.train.batch_size=[64]",
        )
    )
    assert code == 1, log
    sweep = SweepPaths(out)
    first, second = sweep.run_ids()
    status = read_json(sweep.run(first).status)
    assert status["state"] == "diverged" and "non-finite loss" in status["reason"]
    assert read_json(sweep.run(second).status)["state"] == "completed"
    summary = json.loads(sweep.summary("json").read_text())
    assert "diverged" in json.dumps(summary)


FULL_DISK_SCRIPT = """
mount -t tmpfs -o size=2m tmpfs "$DISK" || exit 97
"$PY" -m larsbench.cli "$@" > "$KEEP/first.log" 2>&1; echo $? > "$KEEP/first.code"
cp -r "$DISK/sweep" "$KEEP/after-full"
mount -o remount,size=64m "$DISK" || exit 98
"$PY" -m larsbench.cli "$@" > "$KEEP/again.log" 2>&1; echo $? > "$KEEP/again.code"
cp -r "$DISK/sweep" "$KEEP/after-room"
"""


@pytest.mark.slow
def test_a_full_disk_fails_the_run_clearly_the_sweep_goes_on_and_resumes(
    tmp_path: Path,
) -> None:
    """--out on a 2 MiB tmpfs (a checkpoint needs 3): both runs fail at their first checkpoint
    with the file and the free space named, nothing half-written stays, the sweep's files are
    readable; with room again, the same command trains both runs to the end."""
    import shutil
    import subprocess
    import sys

    if shutil.which("unshare") is None:
        pytest.skip("needs util-linux's unshare to mount a small tmpfs without root")
    disk, keep = tmp_path / "disk", tmp_path / "keep"
    disk.mkdir()
    keep.mkdir()
    args = ["run", "--profile", str(SMOKE), "--out", str(disk / "sweep"), "--no-telemetry"]
    args += ["--set", "train.epochs=2", "--set", "train.checkpoint_every=1"]
    args += ["--set", "sweep.train.batch_size=[64]"]
    env = {**os.environ, "DISK": str(disk), "KEEP": str(keep), "PY": sys.executable}
    # A user and mount namespace of our own: the tmpfs exists only for this script.
    cmd = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", FULL_DISK_SCRIPT]
    done = subprocess.run([*cmd, "sh", *args], env=env, capture_output=True, text=True)
    if done.returncode == 97 or not (keep / "first.code").exists():
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {done.stderr.strip()}")
    first_log = (keep / "first.log").read_text()
    assert (keep / "first.code").read_text().strip() == "1", first_log
    full = SweepPaths(keep / "after-full")
    assert full.run_ids() == ["bs64-sgd", "bs64-larc-tc0.02"]
    for run_id in full.run_ids():
        status = read_json(full.run(run_id).status)
        assert status["state"] == "failed", (run_id, status)
        assert f"writing the checkpoint {disk}/sweep/{run_id}/checkpoints/" in status["reason"]
        assert "MiB free on its disk" in status["reason"]
        assert read_json(full.run(run_id).result)["status"] == "failed"
        assert not list(full.run(run_id).root.rglob("*.tmp")), "a partial file was left"
        epochs = [e for e in read_events(full.run(run_id).rank0_events) if e["kind"] == "epoch"]
        assert [e["epoch"] for e in epochs] == [1], "the epoch before the failure is kept"
    summary = json.loads(full.summary("json").read_text())
    assert [r["status"] for r in summary["rows"]] == ["failed", "failed"]
    assert "free on its disk" in first_log

    assert (keep / "again.code").read_text().strip() == "0", (keep / "again.log").read_text()
    room = SweepPaths(keep / "after-room")
    assert [read_json(room.run(r).status)["state"] for r in room.run_ids()] == ["completed"] * 2


@pytest.mark.slow
def test_two_nodes_on_localhost_train_one_run_together(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a free port for node 0's rendezvous store
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "two-nodes"
    args = [
        "run",
        "--profile",
        str(SMOKE),
        "--out",
        str(out),
        "--set",
        "train.epochs=1",
        "--set",
        "launch.nnodes=2",
        "--set",
        "launch.nproc_per_node=1",
        "--set",
        f"launch.rdzv_endpoint=127.0.0.1:{port}",
        *SGD_BS64,
    ]
    leader = larsbench(*args, "--node-rank", "0")
    follower = larsbench(*args, "--node-rank", "1")
    code, log = finish(leader)
    assert code == 0, log
    follower_code, follower_log = finish(follower, timeout=60)
    assert follower_code == 0, follower_log
    run_dir = out / "bs64-sgd"
    start = read_events(run_dir / "events" / "rank0.jsonl")[0]
    assert start["world_size"] == 2 and start["nnodes"] == 2
    assert read_json(run_dir / "status.json")["state"] == "completed"
    systems = sorted(p.name for p in (run_dir / "events").glob("system-*.jsonl"))
    assert len(systems) == 2 and systems[0].endswith("-n0.jsonl"), systems
    assert (run_dir / "logs" / "torchrun.log").is_file()
    assert list((run_dir / "logs").glob("torchrun-*-n1.log"))

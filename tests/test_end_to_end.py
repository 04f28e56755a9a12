"""End to end through torchrun on CPU: the smoke sweep's files, resume, failures, stops."""

from __future__ import annotations

import csv
import json
import os
import signal
import time
from pathlib import Path

import pytest
from cli_helpers import SMOKE, alive, finish, first_step_pids, larsbench, smoke_run, wait_for

from larsbench.events import read_events
from larsbench.rundir import SweepPaths, read_json

pytestmark = pytest.mark.slow


def test_smoke_sweep_writes_every_file_and_a_rerun_skips_completed_runs(tmp_path: Path) -> None:
    out = tmp_path / "smoke"
    code, log = finish(
        larsbench("run", "--profile", str(SMOKE), "--out", str(out), "--set", "train.epochs=2")
    )
    assert code == 0, log
    sweep = SweepPaths(out)
    assert sweep.run_ids() == ["bs64-sgd", "bs64-larc-tc0.02", "bs512-sgd", "bs512-larc-tc0.02"]
    assert sweep.profile.read_text() == SMOKE.read_text()
    assert read_json(sweep.runner)["state"] == "finished"
    for run_id in sweep.run_ids():
        run = sweep.run(run_id)
        assert read_json(run.status)["state"] == "completed"
        config = read_json(run.config)
        assert config["run_id"] == run_id and config["world_size"] == 2
        result = read_json(run.result)
        assert result["status"] == "completed" and 0 <= result["top1"] <= 100
        assert result["images_per_sec"] > 0 and result["epochs_done"] == 2
        events = read_events(run.rank0_events)
        kinds = [e["kind"] for e in events]
        assert kinds[0] == "run_start" and kinds[-1] == "run_end"
        assert kinds.count("eval") == 2 and kinds.count("epoch") == 2
        if run_id.startswith("bs64"):  # 44 steps; bs512 takes 4, fewer than stats_every
            assert ("trust" in kinds) == ("larc" in run_id)
        assert list(run.events_dir.glob("system-*.jsonl")), "no telemetry file"
        assert (run.logs_dir / "torchrun.log").is_file()
        rank_logs = list(run.logs_dir.rglob("stderr.log"))
        assert len(rank_logs) == 2
    trust = next(
        e for e in read_events(sweep.run("bs64-larc-tc0.02").rank0_events) if e["kind"] == "trust"
    )
    assert "fc.weight" in trust["layers"]
    assert len(trust["factor"]) == len(trust["layers"]) == len(trust["clipped"])
    # The summary files, all four, parseable.
    rows = list(csv.DictReader(sweep.summary("csv").read_text().splitlines()))
    assert [r["run_id"] for r in rows].count("bs64-sgd") == 1 and len(rows) == 4
    summary = json.loads(sweep.summary("json").read_text())
    assert summary["recommendation"]
    assert "bs64-sgd" in sweep.summary("md").read_text()
    assert sweep.summary("png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The same command again: nothing to redo.
    started = time.monotonic()
    code, log = finish(
        larsbench("run", "--profile", str(SMOKE), "--out", str(out), "--set", "train.epochs=2")
    )
    assert code == 0, log
    assert log.count("already completed") == 4
    assert time.monotonic() - started < 60


def test_a_killed_rank_fails_its_run_and_the_sweep_goes_on(tmp_path: Path) -> None:
    out = tmp_path / "kill"
    proc = smoke_run(
        out,
        "--set",
        "train.epochs=3",
        "--set",
        'sweep.optimizer=[{name="sgd"}]',
    )
    pids = wait_for(lambda: first_step_pids(out / "bs64-sgd"))
    os.kill(pids[1], signal.SIGKILL)
    code, log = finish(proc)
    assert code == 1, log
    sweep = SweepPaths(out)
    first = read_json(sweep.run("bs64-sgd").status)
    assert first["state"] == "failed"
    assert "exit" in first["reason"] or "Signal" in first["reason"], first
    assert read_json(sweep.run("bs64-sgd").result)["status"] == "failed"
    assert read_json(sweep.run("bs512-sgd").status)["state"] == "completed"
    # Nothing already written was lost: the failed run's events are still readable.
    assert read_events(sweep.run("bs64-sgd").rank0_events)[0]["kind"] == "run_start"


def test_sigint_stops_the_sweep_and_every_child_within_ten_seconds(tmp_path: Path) -> None:
    out = tmp_path / "stop"
    proc = larsbench(
        "run",
        "--profile",
        str(SMOKE),
        "--out",
        str(out),
        "--set",
        "train.epochs=5",
        "--set",
        'sweep.optimizer=[{name="sgd"}]',
    )
    pids = wait_for(lambda: first_step_pids(out / "bs64-sgd"))
    torchrun_pid = read_json(out / "bs64-sgd" / "status.json")["torchrun_pid"]
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    code, log = finish(proc, timeout=30)
    assert code == 130, log
    assert time.monotonic() - started < 10
    assert not any(alive(p) for p in [*pids, torchrun_pid])
    sweep = SweepPaths(out)
    assert read_json(sweep.run("bs64-sgd").status)["state"] == "stopped"
    assert read_json(sweep.run("bs512-sgd").status)["state"] == "queued"
    assert read_json(sweep.runner)["state"] == "stopped"
    # A stopped sweep is resumable: the same command runs what is left.
    code, log = finish(
        smoke_run(
            out,
            "--set",
            "train.epochs=5",
            "--set",
            'sweep.optimizer=[{name="sgd"}]',
        )
    )
    assert code == 0, log
    assert read_json(sweep.run("bs64-sgd").status)["state"] == "completed"
    # It resumed from the checkpoint the stop wrote, in the same event stream.
    kinds = [e["kind"] for e in read_events(sweep.run("bs64-sgd").rank0_events)]
    assert kinds.count("run_start") == 1 and kinds.count("resume") == 1


def test_sigusr1_stops_only_the_current_run(tmp_path: Path) -> None:
    out = tmp_path / "skip"
    proc = smoke_run(
        out,
        "--set",
        "train.epochs=5",
        "--set",
        'sweep.optimizer=[{name="sgd"}]',
    )
    wait_for(lambda: first_step_pids(out / "bs64-sgd"))
    proc.send_signal(signal.SIGUSR1)
    code, log = finish(proc)
    assert code == 1, log  # a run did not complete
    sweep = SweepPaths(out)
    assert read_json(sweep.run("bs64-sgd").status)["state"] == "stopped"
    assert read_json(sweep.run("bs512-sgd").status)["state"] == "completed"


def test_compiled_model_and_folded_larc_train_and_report_their_compile(tmp_path: Path) -> None:
    """model.compile and LARC's fold_into_sgd through torchrun on 2 CPU ranks: both compile
    before the clock (compile events), and the run trains and evaluates as any other."""
    out = tmp_path / "compiled"
    code, log = finish(
        smoke_run(
            out,
            "--set",
            "train.epochs=1",
            "--set",
            "train.max_steps_per_epoch=6",
            "--set",
            "sweep.train.batch_size=[64]",
            "--set",
            'sweep.optimizer=[{name="larc", fold_into_sgd=true}]',
            "--set",
            "model.compile=true",
        ),
        timeout=1500,
    )
    assert code == 0, log
    sweep = SweepPaths(out)
    (run_id,) = sweep.run_ids()
    events = read_events(sweep.run(run_id).rank0_events)
    compiles = {e["what"]: e["seconds"] for e in events if e["kind"] == "compile"}
    assert set(compiles) == {"model", "larc_fused_update"} and min(compiles.values()) > 0
    kinds = [e["kind"] for e in events]
    assert kinds.index("compile") < kinds.index("step")  # before the first step is timed
    steps = [e for e in events if e["kind"] == "step"]
    # img/s leaves the compile out: the first interval's steps took less than compiling
    assert steps[0]["step_seconds"] < compiles["model"]
    result = read_json(sweep.run(run_id).result)
    assert result["status"] == "completed" and 0 <= result["top1"] <= 100
    assert "compiled the model in" in log and "compiled LARC's fused update in" in log


def test_bf16_with_accumulation_trains_end_to_end_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "bf16"
    code, log = finish(
        smoke_run(
            out,
            "--set",
            'train.amp="bf16"',
            "--set",
            "train.accumulate_steps=2",
            "--set",
            "train.epochs=2",
            "--set",
            "sweep.train.batch_size=[64]",
            "--set",
            'sweep.optimizer=[{name="larc", trust_coefficient=0.02}]',
        )
    )
    assert code == 0, log
    run = SweepPaths(out).run("bs64-larc-tc0.02")
    assert read_json(run.status)["state"] == "completed"
    events = read_events(run.rank0_events)
    start = next(e for e in events if e["kind"] == "run_start")
    assert (start["global_batch"], start["accumulate_steps"], start["micro_batch"]) == (64, 2, 16)
    assert start["config"]["train"]["amp"] == "bf16"
    losses = [e["loss"] for e in events if e["kind"] == "step"]
    assert losses and all(0 < loss < 10 for loss in losses)
    # LARC and its statistics once per optimizer step: no scaler, so no step is skipped.
    trust = [e for e in events if e["kind"] == "trust"]
    assert trust and all(e["larc_step"] == e["step"] and e["step"] % 5 == 0 for e in trust)
    assert [e["epoch"] for e in events if e["kind"] == "eval"] == [1, 2]
    assert events[-1]["kind"] == "run_end" and events[-1]["status"] == "completed"

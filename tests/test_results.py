"""Folding a run's events into its result: speeds over training time, best top-1, status."""

from __future__ import annotations

import math
from pathlib import Path

from larsbench.events import make_event
from larsbench.results import RunResult, fold_run, fold_training
from larsbench.rundir import RunPaths, write_json_atomic

CONFIG = {
    "world_size": 2,
    "per_rank_batch": 32,
    "lr": 0.025,
    "device": "cpu",
    "model": {"arch": "resnet18"},
    "train": {"epochs": 3, "batch_size": 64},
    "optimizer": {"name": "larc", "trust_coefficient": 0.02},
}


def ev(kind: str, t: float, **fields: object) -> dict[str, object]:
    return {**make_event(kind, **fields), "t": t}


EVENTS = [
    ev("run_start", 100.0, world_size=2, device_names=["cpu", "cpu"]),
    ev("step", 101.0, step=10, data_wait_fraction=0.1),
    ev("epoch", 102.0, epoch=1, images=640, seconds=2.0, loss=1.5, train_seconds=2.0),
    ev("eval", 103.0, epoch=1, top1=80.0, top5=95.0),
    ev("step", 104.0, step=20, data_wait_fraction=0.3),
    ev("epoch", 105.0, epoch=2, images=640, seconds=6.0, loss=0.5, train_seconds=8.0),
    ev("eval", 106.0, epoch=2, top1=90.0, top5=99.0),
    ev("epoch", 108.0, epoch=3, images=640, seconds=2.0, loss=0.4, train_seconds=10.0),
    ev("eval", 109.0, epoch=3, top1=88.0, top5=99.5),
    ev("run_end", 110.0, status="completed", wall_seconds=10.0),
]


def test_fold_training_takes_speed_over_training_time_and_best_epoch() -> None:
    r = fold_training("bs64-larc-tc0.02", CONFIG, EVENTS)
    assert r.images_per_sec == 1920 / 10.0
    assert r.images_per_sec_per_gpu == 1920 / 10.0 / 2
    assert (r.top1, r.top5, r.best_top1, r.best_epoch) == (88.0, 99.5, 90.0, 2)
    assert r.time_to_best_seconds == 6.0
    assert r.train_seconds == 10.0
    assert r.epochs_done == 3 and r.steps == 20
    assert math.isclose(r.data_wait_fraction, 0.2)
    assert r.trust_coefficient == 0.02 and r.optimizer == "larc"
    assert r.status == "completed"


def test_sgd_has_no_trust_coefficient_and_empty_events_give_nan() -> None:
    cfg = {**CONFIG, "optimizer": {"name": "sgd", "trust_coefficient": 0.02}}
    r = fold_training("bs64-sgd", cfg, [])
    assert r.trust_coefficient is None
    assert math.isnan(r.top1) and math.isnan(r.images_per_sec)


def test_fold_run_status_file_has_the_last_word_and_round_trips(tmp_path: Path) -> None:
    run = RunPaths(tmp_path / "bs64-larc-tc0.02")
    write_json_atomic(run.config, CONFIG)
    run.events_dir.mkdir(parents=True)
    run.rank0_events.write_text("".join(__import__("json").dumps(e) + "\n" for e in EVENTS))
    run.write_status("stopped", "stopped by SIGINT")
    r = fold_run(run)
    assert (r.status, r.reason) == ("stopped", "stopped by SIGINT")
    again = RunResult.from_dict({**r.to_dict(), "unknown_field": 1})
    assert again.best_top1 == r.best_top1 == 90.0

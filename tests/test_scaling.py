"""Scaling efficiency of the same per-rank batch at several world sizes."""

from __future__ import annotations

import pytest

from larsbench.plan.expand import expand
from larsbench.plan.machine import Machine
from larsbench.profile.loading import parse_profile
from larsbench.results import RunResult
from larsbench.summary.scaling import scaling_markdown, scaling_rows


def result(run_id: str, world: int, ips: float, **kw: object) -> RunResult:
    base = dict(
        run_id=run_id,
        status="completed",
        model="resnet50",
        optimizer="sgd",
        per_rank_batch=256,
        world_size=world,
        images_per_sec=ips,
        mode="throughput",
    )
    return RunResult(**{**base, **kw})  # type: ignore[arg-type]


def test_efficiency_is_per_gpu_speed_against_the_fewest_ranks() -> None:
    rows = scaling_rows(
        [
            result("np2", 2, 1900.0),
            result("np1", 1, 1000.0),
            result("np8", 8, 6400.0),
        ]
    )
    assert [(r.world_size, r.efficiency) for r in rows] == [
        (1, 1.0),
        (2, pytest.approx(0.95)),
        (8, pytest.approx(0.8)),
    ]
    assert [r.low for r in rows] == [False, False, False]
    low = scaling_rows([result("a", 1, 1000.0), result("b", 4, 3000.0)])
    assert low[1].low and low[1].efficiency == pytest.approx(0.75)
    assert "75.0% (low)" in scaling_markdown(low)


def test_groups_are_kept_apart_and_single_world_sizes_give_nothing() -> None:
    rows = scaling_rows(
        [
            result("sgd1", 1, 1000.0),
            result("sgd2", 2, 2000.0),
            result("larc1", 1, 900.0, optimizer="larc", trust_coefficient=0.02),
            result("failed2", 2, 10.0, status="failed"),
            result("other", 1, 500.0, per_rank_batch=128),
        ]
    )
    assert {r.run_id for r in rows} == {"sgd1", "sgd2"}
    assert scaling_markdown([]) == ""


def test_batch_per_rank_sets_the_global_batch_from_the_world_size() -> None:
    profile = parse_profile(
        {
            "name": "s",
            "launch": {"device": "cpu", "threads_per_rank": 1},
            "train": {"batch_per_rank": 16, "base_lr": 0.1, "reference_batch": 256},
            "data": {"source": "synthetic"},
            "sweep": {"launch.nproc_per_node": [1, 2, 4]},
        }
    )
    runs = expand(profile, Machine(gpus=0, cpus=4))
    assert [(r.run_id, r.train.batch_size, r.per_rank_batch) for r in runs] == [
        ("bs16-sgd-np1", 16, 16),
        ("bs32-sgd-np2", 32, 16),
        ("bs64-sgd-np4", 64, 16),
    ]
    assert [r.lr for r in runs] == [0.1 * 16 / 256, 0.1 * 32 / 256, 0.1 * 64 / 256]

"""One throughput step plan: the dry run, the configure preview and the worker count alike."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from larsbench.headless import plan_table
from larsbench.plan.expand import expand
from larsbench.plan.machine import Machine
from larsbench.plan.run import RunConfig
from larsbench.plan.sizes import dataset_sizes
from larsbench.plan.steps import ThroughputSteps, plan_run, planned_steps, throughput_steps
from larsbench.profile.loading import parse_profile
from larsbench.profile.overrides import apply_overrides
from larsbench.tui.form import ProfileForm

PROFILES = Path(__file__).resolve().parent.parent / "profiles"
CPU = Machine(gpus=0, cpus=2)


def throughput_runs(name: str, *overrides: tuple[str, Any]) -> list[RunConfig]:
    raw = tomllib.loads((PROFILES / f"{name}.toml").read_text(encoding="utf-8"))
    raw = apply_overrides(raw, [("train.mode", "throughput"), *overrides])
    return expand(parse_profile(raw), CPU)


@pytest.mark.parametrize(
    ("data", "steps", "expected"),
    [
        ("synthetic", 30, ThroughputSteps(warmup=10, plain=30, phased=30, no_sync=15, held=0)),
        ("synthetic", 7, ThroughputSteps(warmup=10, plain=7, phased=7, no_sync=3, held=0)),
        ("synthetic", 2, ThroughputSteps(warmup=10, plain=2, phased=2, no_sync=1, held=0)),
        ("real", 30, ThroughputSteps(warmup=10, plain=30, phased=30, no_sync=15, held=30)),
    ],
)
def test_the_windows_of_a_throughput_run(data: str, steps: int, expected: ThroughputSteps) -> None:
    (run, *_) = throughput_runs(
        "smoke", ("train.throughput_data", data), ("train.throughput_steps", steps)
    )
    plan = throughput_steps(run.train)
    assert plan == expected
    assert plan.total == 10 + 2 * steps + max(steps // 2, 1) + (steps if data == "real" else 0)
    # window D repeats one batch: it draws a single one from the loader
    assert plan.loader_batches == plan.total - plan.held + (1 if plan.held else 0)


def test_the_dry_run_shows_the_steps_of_the_plan() -> None:
    runs = throughput_runs("cpu-throughput", ("train.throughput_data", "real"))
    console = Console(width=200, record=True)
    console.print(plan_table(runs))
    text = console.export_text()
    for run in runs:
        row = next(line for line in text.splitlines() if f" {run.run_id} " in line)
        cells = [c.strip() for c in row.split("│") if c.strip()]
        assert cells[-2] == str(throughput_steps(run.train).total)
        assert cells[-3] == str(run.train.throughput_warmup_steps)


def test_a_synthetic_throughput_set_holds_the_batches_the_windows_draw() -> None:
    for run in throughput_runs("smoke"):
        steps = throughput_steps(run.train)
        assert run.data.synthetic_train_images == run.train.batch_size * steps.synthetic_batches
        assert steps.synthetic_batches == steps.warmup + 3 * run.train.throughput_steps
        sizes = dataset_sizes(run.data)
        assert sizes is not None
        assert plan_run(run, *sizes).steps_per_epoch >= steps.loader_batches  # one epoch


def test_the_preview_shows_a_throughput_run_as_the_dry_run_does() -> None:
    raw = tomllib.loads((PROFILES / "smoke.toml").read_text(encoding="utf-8"))
    result = ProfileForm(raw, CPU).validate({}, "train.mode=throughput")
    assert result.ok
    for run, row in zip(result.runs, result.rows, strict=True):
        plan = planned_steps(run)
        assert plan is not None
        assert row.steps_per_epoch == plan.steps_per_epoch == 1437 // run.train.batch_size
        assert row.throughput_steps == plan.total_steps == throughput_steps(run.train).total
    assert all(r.throughput_steps is None for r in ProfileForm(raw, CPU).validate({}).rows)


def test_the_worker_runs_the_windows_of_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    from larsbench.train import throughput
    from larsbench.train.setup import Dist

    (run, *_) = throughput_runs("smoke", ("train.throughput_data", "real"))
    windows: list[int] = []

    def window(steps: int, *args: Any, **kwargs: Any) -> dict[str, float]:
        windows.append(steps)
        return {"seconds": 1.0, "images": 1.0, "data": 0, "forward_backward": 0, "optimizer": 0}

    class Sampler:
        def set_epoch(self, epoch: int) -> None:
            pass

    monkeypatch.setattr(throughput, "_window", window)
    d = Dist(rank=0, world=1, local_rank=0, local_world=1, device=torch.device("cpu"))
    batch = (torch.zeros(1), torch.zeros(1))
    throughput._timed_windows(run, None, [batch], Sampler(), d)  # type: ignore[arg-type]
    plan = throughput_steps(run.train)
    assert windows == [plan.warmup, plan.plain, plan.phased, plan.no_sync, plan.held]
    assert sum(windows) == plan.total

"""Step plans: a training run's steps per epoch, and the steps a throughput run takes."""

from __future__ import annotations

import math
from dataclasses import dataclass

from larsbench.plan.run import RunConfig
from larsbench.plan.sizes import dataset_sizes
from larsbench.profile.schema import TrainConfig


@dataclass(frozen=True)
class RunPlan:
    """Steps a run will take, derived from its config and its data size."""

    train_images: int
    val_images: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int


def plan_run(run: RunConfig, train_images: int, val_images: int) -> RunPlan:
    """The sampler pads to ceil(N / world) per rank; the loader drops the last partial batch."""
    per_rank = math.ceil(train_images / run.world_size)
    steps = per_rank // run.per_rank_batch
    if run.train.max_steps_per_epoch:
        steps = min(steps, run.train.max_steps_per_epoch)
    return RunPlan(
        train_images=train_images,
        val_images=val_images,
        steps_per_epoch=steps,
        total_steps=steps * run.train.epochs,
        warmup_steps=round(run.train.warmup_epochs * steps),
    )


@dataclass(frozen=True)
class ThroughputSteps:
    """The windows of a throughput run (larsbench/train/throughput.py runs exactly these)."""

    warmup: int  # untimed steps first
    plain: int  # A: synchronised only at the ends, the headline img/s
    phased: int  # B: a device sync between data, forward+backward and optimizer
    no_sync: int  # C: forward+backward under DDP's no_sync(), without the all-reduce
    held: int  # D, real data only: one batch on the device again, without the loader

    @property
    def total(self) -> int:
        """Every step the run takes: warm-up + timed."""
        return self.warmup + self.plain + self.phased + self.no_sync + self.held

    @property
    def loader_batches(self) -> int:
        """Batches drawn from the loader: window D draws one and repeats it."""
        return self.warmup + self.plain + self.phased + self.no_sync + (1 if self.held else 0)

    @property
    def synthetic_batches(self) -> int:
        """The synthetic set of a synthetic-data run, in batches: warm-up + 3 x the window, a
        few more than the windows draw (what config.json has always said: a sweep folder
        written before keeps matching its profile)."""
        return self.warmup + 3 * self.plain


def throughput_steps(train: TrainConfig) -> ThroughputSteps:
    """The windows of `train.throughput_steps` steps (C: half as many) after the warm-up."""
    n = train.throughput_steps
    return ThroughputSteps(
        warmup=train.throughput_warmup_steps,
        plain=n,
        phased=n,
        no_sync=max(n // 2, 1),
        held=n if train.throughput_data == "real" else 0,
    )


def throughput_plan(run: RunConfig) -> RunPlan:
    """A throughput run's steps, and the epoch its timed steps project to."""
    t = run.train
    return RunPlan(
        train_images=t.throughput_epoch_images,
        val_images=0,
        steps_per_epoch=t.throughput_epoch_images // t.batch_size,
        total_steps=throughput_steps(t).total,
        warmup_steps=t.throughput_warmup_steps,
    )


def planned_steps(run: RunConfig, count_folders: bool = True) -> RunPlan | None:
    """What a dry run and the configure form's preview show of a run's steps: a throughput
    run's windows, else its epochs over its data; None when the data size is not known
    (an ImageFolder is counted only with `count_folders`: that walks the whole tree)."""
    if run.train.mode == "throughput":
        return throughput_plan(run)
    if run.data.source == "imagefolder" and not count_folders:
        return None
    sizes = dataset_sizes(run.data)
    return plan_run(run, *sizes) if sizes else None

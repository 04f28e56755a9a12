"""Which loader feeds a run: the torch DataLoader (train/data.py) or DALI (train/dali.py)."""

from __future__ import annotations

from pathlib import Path

from larsbench.plan.run import RunConfig
from larsbench.train.dali import DaliBatches, build_dali_data, dali_train_loader, dali_val_loader
from larsbench.train.data import (
    DeviceBatches,
    ResumableSampler,
    RunData,
    build_torch_data,
    torch_train_loader,
    torch_val_loader,
)


def build_data(run: RunConfig, cache_dir: Path | None = None) -> RunData:
    """The run's data sets; `cache_dir` holds the sweep's cached ImageFolder file lists."""
    if run.data.loader == "dali":
        return build_dali_data(run, cache_dir)
    return build_torch_data(run, cache_dir)


def train_loader(
    data: RunData, run: RunConfig, rank: int, world: int, pin: bool
) -> tuple[DeviceBatches | DaliBatches, ResumableSampler]:
    """This rank's training batches, on the device, and the sampler that orders them."""
    if run.data.loader == "dali":
        return dali_train_loader(data, run, rank, world)
    return torch_train_loader(data, run, rank, world, pin)


def val_loader(
    data: RunData, run: RunConfig, rank: int, world: int, pin: bool
) -> DeviceBatches | DaliBatches:
    """This rank's share of the validation set (each image evaluated by exactly one rank)."""
    if run.data.loader == "dali":
        return dali_val_loader(data, run, rank, world)
    return torch_val_loader(data, run, rank, world, pin)

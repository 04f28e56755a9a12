"""A rank's runtime: process group, device, AMP, model, optimizer, scheduler and scaler."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from larsbench.config import RunConfig, RunPlan
from larsbench.train.model import build_model
from larsbench.train.schedule import Schedule, lr_at


@dataclass
class Dist:
    rank: int
    world: int
    local_rank: int
    local_world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(run: RunConfig) -> Dist:
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    if run.device == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
        torch.backends.cudnn.benchmark = True
    else:
        device = torch.device("cpu")
        torch.set_num_threads(run.threads_per_rank)
    dist.init_process_group(backend=run.backend, device_id=device if run.device == "cuda" else None)
    return Dist(rank, world, local_rank, local_world, device)


def build_optimizer(model: nn.Module, run: RunConfig) -> torch.optim.Optimizer:
    sgd = torch.optim.SGD(
        model.parameters(),
        lr=run.lr,
        momentum=run.train.momentum,
        nesterov=run.train.nesterov,
        weight_decay=run.train.weight_decay,
    )
    if run.optimizer.name == "sgd":
        return sgd
    from larsbench.optim import LARC

    o = run.optimizer
    return LARC(
        sgd,
        trust_coefficient=o.trust_coefficient,
        clip=o.clip,
        eps=o.eps,
        exclude_bias_and_norm=o.exclude_bias_and_norm,
        stats_every=o.stats_every,
        fused=o.fused,
    )


def compile_ahead(optimizer: torch.optim.Optimizer, d: Dist) -> float | None:
    """Compile LARC's fused update before training's clock starts, so that neither the first
    step nor img/s carries it. Its seconds, or None when there is nothing to compile."""
    from larsbench.optim import LARC

    if not (isinstance(optimizer, LARC) and optimizer.fused):
        return None
    started = time.perf_counter()
    optimizer.compile_fused_update()
    if d.device.type == "cuda":
        torch.cuda.synchronize(d.device)
    return time.perf_counter() - started


def to_device(images, labels, d: Dist, run: RunConfig):
    fmt = torch.channels_last if run.train.channels_last else torch.contiguous_format
    images = images.to(d.device, non_blocking=True, memory_format=fmt)
    return images, labels.to(d.device, non_blocking=True)


def autocast(run: RunConfig, d: Dist) -> torch.autocast:
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(run.train.amp)
    return torch.autocast(d.device.type, dtype=dtype, enabled=dtype is not None)


def gather_identity(d: Dist) -> list[tuple[int, str, str]]:
    """Every rank's (pid, host, device name), for run_start."""
    name = torch.cuda.get_device_name(d.device) if d.device.type == "cuda" else "cpu"
    mine = (os.getpid(), socket.gethostname().split(".")[0], name)
    out: list[tuple[int, str, str] | None] = [None] * d.world
    dist.all_gather_object(out, mine)
    return [o for o in out if o is not None]


@dataclass
class Parts:
    """What one rank trains with."""

    model: nn.Module
    ddp: DDP
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    criterion: nn.Module
    names: list[str]


def build_parts(run: RunConfig, d: Dist, num_classes: int, plan: RunPlan) -> Parts:
    model = build_model(run.model, num_classes).to(d.device)
    if run.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    names = [n for n, _ in model.named_parameters()]
    ddp = DDP(model, device_ids=[d.local_rank] if d.device.type == "cuda" else None)
    optimizer = build_optimizer(model, run)
    schedule = Schedule(
        kind=run.train.schedule,
        peak_lr=run.lr,
        steps_per_epoch=plan.steps_per_epoch,
        total_steps=plan.total_steps,
        warmup_steps=plan.warmup_steps,
        warmup_start_factor=run.train.warmup_start_factor,
        step_size=run.train.step_size,
        milestones=tuple(run.train.milestones),
        gamma=run.train.gamma,
        poly_power=run.train.poly_power,
        min_lr=run.train.min_lr,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_at(schedule, s) / run.lr)
    return Parts(
        model=model,
        ddp=ddp,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=torch.amp.GradScaler(d.device.type, enabled=run.train.amp == "fp16"),
        criterion=nn.CrossEntropyLoss(label_smoothing=run.train.label_smoothing),
        names=names,
    )

"""A rank's runtime: process group, device, AMP, model, optimizer, scheduler and scaler."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from larsbench.plan.run import RunConfig
from larsbench.plan.steps import RunPlan
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


def sgd_implementation(device: torch.device) -> dict[str, bool]:
    """torch.optim.SGD's implementation keyword: ``fused=True`` on CUDA (one multi-tensor
    kernel for the whole update; with GradScaler, the inf check without a host sync), torch's
    default elsewhere (on the CPU a per-tensor loop, which is what the CPU figures measure)."""
    return {"fused": True} if device.type == "cuda" else {}


def build_optimizer(model: nn.Module, run: RunConfig) -> torch.optim.Optimizer:
    device = next(model.parameters()).device
    sgd = torch.optim.SGD(
        model.parameters(),
        lr=run.lr,
        momentum=run.train.momentum,
        nesterov=run.train.nesterov,
        weight_decay=run.train.weight_decay,
        **sgd_implementation(device),
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
        fold_into_sgd=o.fold_into_sgd,
    )


def compile_ahead(parts: Parts, run: RunConfig, d: Dist) -> list[tuple[str, float]]:
    """Compile what the run compiles before training's clock starts, so that neither the
    first step nor img/s carries it: the model (``model.compile``: one forward and backward
    on a batch of zeros, which leaves weights, buffers, gradients and the RNG as they were)
    and LARC's compiled update. ``(what, seconds)`` for each, in that order; every rank
    calls it (the model's backward all-reduces)."""
    from larsbench.optim import LARC

    done: list[tuple[str, float]] = []
    if run.model.compile:
        done.append(("model", _timed(lambda: _warm_up_model(parts, run, d), d)))
    optimizer = parts.optimizer
    if isinstance(optimizer, LARC) and (optimizer.fused or optimizer.fold_into_sgd):
        done.append(("larc_fused_update", _timed(optimizer.compile_fused_update, d)))
    return done


def _timed(fn: Callable[[], object], d: Dist) -> float:
    started = time.perf_counter()
    fn()
    if d.device.type == "cuda":
        torch.cuda.synchronize(d.device)
    return time.perf_counter() - started


def _warm_up_model(parts: Parts, run: RunConfig, d: Dist) -> None:
    """One training forward and backward of the compiled model on zeros, undone after; at the
    micro-batch's size, which is what each forward of an accumulating step sees."""
    size = run.data.image_size
    fmt = torch.channels_last if run.train.channels_last else torch.contiguous_format
    images = torch.zeros(run.micro_batch, 3, size, size, device=d.device).to(memory_format=fmt)
    labels = torch.zeros(run.micro_batch, dtype=torch.long, device=d.device)
    buffers = [b.clone() for b in parts.model.buffers()]
    with torch.random.fork_rng(devices=[d.device] if d.device.type == "cuda" else []):
        with autocast(run, d):
            loss = parts.criterion(parts.ddp(images), labels)
        loss.backward()
    with torch.no_grad():
        torch._foreach_copy_(list(parts.model.buffers()), buffers)
    parts.model.zero_grad(set_to_none=True)


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


class EvalSyncedDDP(DDP):
    """DDP that gives every rank rank 0's buffers (BatchNorm statistics) when it switches to
    evaluation, so that an evaluation sharded over ranks uses one model.

    With ``forward_sync_buffers`` (formerly ``broadcast_buffers``) on, DDP sends rank 0's
    buffers at the start of each training forward, and every rank then updates its own copy
    in that forward: at ``eval()`` the ranks hold statistics one batch apart, and only the
    next forward (the first evaluation batch) syncs them, if every rank runs one. With it
    off they have trained apart. ``eval()`` here broadcasts either way, so it is a
    collective: every rank calls it at the same point (``evaluate`` does).
    """

    def train(self, mode: bool = True) -> EvalSyncedDDP:
        if not mode and self.training:
            broadcast_buffers(self.module)
        return super().train(mode)


@torch.no_grad()
def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Every buffer of ``module`` set to rank ``src``'s, one broadcast per dtype."""
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for buffer in module.buffers():
        by_dtype.setdefault(buffer.dtype, []).append(buffer)
    for buffers in by_dtype.values():
        flat = torch.cat([b.reshape(-1) for b in buffers])
        dist.broadcast(flat, src)
        torch._foreach_copy_(
            buffers,
            [
                v.view_as(b)
                for v, b in zip(flat.split([b.numel() for b in buffers]), buffers, strict=True)
            ],
        )


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
    t = run.train
    ddp = EvalSyncedDDP(
        model,
        device_ids=[d.local_rank] if d.device.type == "cuda" else None,
        forward_sync_buffers=t.ddp_forward_sync_buffers,
        bucket_cap_mb=t.ddp_bucket_cap_mb,
        gradient_as_bucket_view=t.ddp_gradient_as_bucket_view,
        static_graph=t.ddp_static_graph,
    )
    if run.model.compile:
        ddp.compile()  # in place: still a DDP (no_sync, checkpoints' keys unchanged)
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

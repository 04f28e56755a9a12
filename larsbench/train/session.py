"""What a rank trains with: data, loaders, plan, parts, its event file, where it starts."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from typing import Any

import torch

from larsbench.events import EventWriter
from larsbench.plan.run import RunConfig
from larsbench.plan.steps import RunPlan, plan_run
from larsbench.rundir import RunPaths, SweepPaths
from larsbench.train import checkpoint
from larsbench.train.loaders import build_data, train_loader, val_loader
from larsbench.train.setup import Dist, Parts, build_parts, compile_ahead, gather_identity


class Reporter:
    """Rank 0's event file; other ranks hold a Reporter that writes nothing."""

    def __init__(self, paths: RunPaths, d: Dist, truncate_to: int | None) -> None:
        self.writer = None
        if d.is_main:
            if truncate_to is not None and paths.rank0_events.exists():
                # Events after the checkpoint are redone: drop them, no duplicates, no gaps.
                with open(paths.rank0_events, "r+b") as f:
                    f.truncate(truncate_to)
            self.writer = EventWriter(paths.rank0_events)

    def emit(self, kind: str, **fields: object) -> None:
        if self.writer is not None:
            self.writer.emit(kind, **fields)

    def offset(self) -> int:
        return self.writer.path.stat().st_size if self.writer is not None else 0

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass
class Session:
    """One rank's run, ready to train: `position` is where training (re)starts."""

    run: RunConfig
    paths: RunPaths
    d: Dist
    plan: RunPlan
    parts: Parts
    loader: Any
    sampler: Any
    val: Any
    out: Reporter
    position: checkpoint.Position
    started: float


def seed_data(seed: int, rank: int, step: int) -> None:
    """Seeds the torch RNG that a rank's augmentations draw from (in the rank, or in loader
    workers, whose seeds the DataLoader draws from it) from `train.seed`, the rank and the
    step training starts at: ranks crop and flip differently, and a resumed run does not
    replay the augmentations of the run's start. The sampler's order has its own seed."""
    digest = hashlib.blake2b(f"{seed}/{rank}/{step}".encode(), digest_size=8).digest()
    torch.manual_seed(int.from_bytes(digest, "little"))


def open_session(run: RunConfig, paths: RunPaths, d: Dist, resume: bool) -> Session:
    """Builds everything, resumes from the newest checkpoint when `resume` and there is one,
    and writes `run_start` or `resume` (and `compile`)."""
    torch.manual_seed(run.train.seed)  # the model's initial weights; DDP broadcasts rank 0's
    data = build_data(run, SweepPaths(paths.root.parent).file_lists)
    pin = d.device.type == "cuda"
    loader, sampler = train_loader(data, run, d.rank, d.world, pin)
    plan = plan_run(run, len(data.train), len(data.val))
    if plan.steps_per_epoch == 0:
        raise ValueError(
            f"train.batch_size {run.train.batch_size} exceeds the {len(data.train)} training "
            "images: no full batch per rank"
        )
    parts = build_parts(run, d, data.num_classes, plan)
    loaded = checkpoint.load_latest(paths.checkpoints_dir, run.run_id) if resume else None
    pos = checkpoint.Position(1, 0, 0, 0.0, 0)
    if loaded is not None:
        checkpoint.restore(parts, loaded)
        pos = checkpoint.next_position(loaded.position, plan.steps_per_epoch)
    seed_data(run.train.seed, d.rank, pos.step)
    out = Reporter(paths, d, loaded.position.events_offset if loaded else None)
    session = Session(
        run=run,
        paths=paths,
        d=d,
        plan=plan,
        parts=parts,
        loader=loader,
        sampler=sampler,
        val=val_loader(data, run, d.rank, d.world, pin),
        out=out,
        position=pos,
        started=time.perf_counter(),
    )
    ranks = _ranks(d)
    if loaded is None:
        out.emit("run_start", **_start_fields(run, d, plan), **ranks)
    else:
        out.emit(
            "resume",
            epoch=pos.epoch,
            epoch_step=pos.epoch_step,
            step=pos.step,
            checkpoint=loaded.path.name,
            skipped_checkpoints=loaded.skipped,
            restart_count=int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")),
            **ranks,
        )
    for what, seconds in compile_ahead(parts, run, d):
        out.emit("compile", what=what, seconds=round(seconds, 3))
    session.started = time.perf_counter()
    return session


def _ranks(d: Dist) -> dict[str, object]:
    identity = gather_identity(d)
    return {
        "world_size": d.world,
        "device_names": [i[2] for i in identity],
        "hosts": [i[1] for i in identity],
        "pids": [i[0] for i in identity],
    }


def _start_fields(run: RunConfig, d: Dist, plan: RunPlan) -> dict[str, object]:
    return {
        "run_id": run.run_id,
        "config": run.to_dict(),
        "nnodes": run.launch.nnodes,
        "local_world_size": d.local_world,
        "backend": run.backend,
        "device": d.device.type,
        "torch_version": torch.__version__,
        "train_images": plan.train_images,
        "val_images": plan.val_images,
        "global_batch": run.train.batch_size,
        "per_rank_batch": run.per_rank_batch,
        "accumulate_steps": run.train.accumulate_steps,
        "micro_batch": run.micro_batch,
        "lr": run.lr,
        "steps_per_epoch": plan.steps_per_epoch,
        "total_steps": plan.total_steps,
        "warmup_steps": plan.warmup_steps,
        "epochs": run.train.epochs,
        "start_epoch": 1,
    }

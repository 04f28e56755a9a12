"""The torchrun worker: one rank of data-parallel training that rank 0 reports as events.

Launched by larsbench (see larsbench/launch.py), never by hand, as:

    python -m torch.distributed.run --standalone --nproc-per-node 2 \
        -m larsbench.train.worker --run-dir RUN

It reads RUN/config.json, trains with DistributedDataParallel (nccl on CUDA, gloo on CPU),
evaluates every epoch exactly over the whole validation set, and rank 0 appends events to
RUN/events/rank0.jsonl (docs/events.md). Host-device syncs happen only in `report_interval`,
`evaluate` and LARC's `to_host()`, each every N steps or once per epoch.

It checkpoints every `train.checkpoint_every` epochs and when asked to stop (SIGTERM), and
resumes from RUN/checkpoints/ when started again, by larsbench or by torchrun's restarts.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.elastic.multiprocessing.errors import record

from larsbench.config import RunConfig, plan_run
from larsbench.events import EventWriter
from larsbench.rundir import RunPaths, SweepPaths, read_json
from larsbench.train import checkpoint
from larsbench.train.data import build_data, train_loader, val_loader
from larsbench.train.setup import (
    Dist,
    autocast,
    build_parts,
    compile_ahead,
    gather_identity,
    setup_distributed,
    to_device,
)


@dataclass
class Interval:
    """Per-rank sums since the last report, kept on the device so the step never syncs."""

    device: torch.device
    loss_sum: torch.Tensor = field(init=False)
    nonfinite: torch.Tensor = field(init=False)
    steps: int = 0
    images: int = 0
    data_seconds: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        self.nonfinite = torch.zeros((), device=self.device, dtype=torch.bool)

    def add(self, loss: torch.Tensor, images: int, data_seconds: float) -> None:
        loss = loss.detach()
        self.nonfinite |= ~torch.isfinite(loss)
        self.loss_sum += loss.double()
        self.steps += 1
        self.images += images
        self.data_seconds += data_seconds


def report_interval(iv: Interval, d: Dist, stop_requested: bool) -> dict[str, object]:
    """Gathers every rank's interval sums and stop flag. A CPU-GPU sync point (once every
    log_every steps): every rank sees the same gathered values, so they decide together."""
    wall = time.perf_counter() - iv.started
    mine = torch.stack(
        [
            iv.loss_sum,
            iv.nonfinite.double() + (2.0 if stop_requested else 0.0),
            torch.tensor(float(iv.steps), device=d.device, dtype=torch.float64),
            torch.tensor(float(iv.images), device=d.device, dtype=torch.float64),
            torch.tensor(iv.data_seconds, device=d.device, dtype=torch.float64),
            torch.tensor(wall, device=d.device, dtype=torch.float64),
        ]
    )
    gathered = [torch.empty_like(mine) for _ in range(d.world)]
    dist.all_gather(gathered, mine)
    rows = torch.stack(gathered).cpu().tolist()  # the sync
    loss_sum = sum(r[0] for r in rows)
    steps = sum(r[2] for r in rows)
    walls = [max(r[5], 1e-9) for r in rows]
    rank_ips = [r[3] / w for r, w in zip(rows, walls, strict=True)]
    rank_wait = [r[4] / w for r, w in zip(rows, walls, strict=True)]
    return {
        "loss": loss_sum / steps if steps else math.nan,
        "nonfinite": any(int(r[1]) & 1 for r in rows),
        "stop": any(int(r[1]) & 2 for r in rows),
        "images_per_sec": sum(r[3] for r in rows) / max(walls),
        "rank_images_per_sec": rank_ips,
        "data_wait_fraction": sum(rank_wait) / len(rank_wait),
        "rank_data_wait_fraction": rank_wait,
        "step_seconds": walls[0] / max(iv.steps, 1),
        "interval_steps": iv.steps,
    }


@torch.no_grad()
def evaluate(model: nn.Module, loader, d: Dist, run: RunConfig) -> dict[str, float]:
    """Top-1/top-5 over the whole validation set, summed over ranks (one sync at the end)."""
    model.eval()
    totals = torch.zeros(4, device=d.device, dtype=torch.float64)  # correct1, correct5, loss, n
    criterion = nn.CrossEntropyLoss(reduction="sum")
    for images, labels in loader:
        images, labels = to_device(images, labels, d, run)
        with autocast(run, d):
            logits = model(images)
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        hits = top.eq(labels.unsqueeze(1))
        totals += torch.stack(
            [
                hits[:, :1].sum().double(),
                hits.sum().double(),
                criterion(logits.float(), labels).double(),
                torch.tensor(float(labels.numel()), device=d.device, dtype=torch.float64),
            ]
        )
    dist.all_reduce(totals)
    c1, c5, loss, n = totals.cpu().tolist()  # the sync
    model.train()
    n = max(n, 1.0)
    return {"top1": 100 * c1 / n, "top5": 100 * c5 / n, "loss": loss / n, "images": int(n)}


def trust_event(optimizer, names: list[str]) -> dict[str, object] | None:
    stats = getattr(optimizer, "latest_stats", None)
    if stats is None:
        return None
    host = stats.to_host()  # the sync, every optimizer.stats_every steps
    layers = [names[i] for i in stats.param_index]
    return {"layers": layers, **{k: host[k] for k in host if k in TRUST_FIELDS}}


TRUST_FIELDS = ("weight_norm", "grad_norm", "local_lr", "factor", "clipped")


class StopRequest:
    """SIGTERM/SIGINT set a flag; the ranks act on it together at the next report."""

    def __init__(self) -> None:
        self.requested = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._set)

    def _set(self, signum: int, _frame: object) -> None:
        self.requested = True


def exploded(history: list[float], loss: float, factor: float) -> bool:
    """True when the loss exceeds `factor` times the median of the earlier reports."""
    if factor <= 0 or len(history) < 5:
        return False
    return loss > factor * statistics.median(history[-20:])


def trust_collapsed(factors: list[float]) -> bool:
    """Every adapted layer's factor ~0: LARC has stopped all learning."""
    return bool(factors) and max(factors) < 1e-6


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


def train(run: RunConfig, paths: RunPaths, d: Dist, stop: StopRequest) -> None:
    torch.manual_seed(run.train.seed)
    data = build_data(run, SweepPaths(paths.root.parent).file_lists)
    pin = d.device.type == "cuda"
    loader, sampler = train_loader(data, run, d.rank, d.world, pin)
    val = val_loader(data, run, d.rank, d.world, pin)
    plan = plan_run(run, len(data.train), len(data.val))
    if plan.steps_per_epoch == 0:
        raise ValueError(
            f"train.batch_size {run.train.batch_size} exceeds the {len(data.train)} training "
            "images: no full batch per rank"
        )
    parts = build_parts(run, d, data.num_classes, plan)
    ddp, optimizer, scheduler, scaler = parts.ddp, parts.optimizer, parts.scheduler, parts.scaler
    identity = gather_identity(d)
    loaded = checkpoint.load_latest(paths.checkpoints_dir, run.run_id)
    if loaded is not None:
        checkpoint.restore(parts, loaded)
    pos = loaded.position if loaded else checkpoint.Position(1, 0, 0, 0.0, 0)
    if pos.epoch_step >= plan.steps_per_epoch:  # saved at an epoch's end: start the next
        pos = checkpoint.Position(pos.epoch + 1, 0, pos.step, pos.train_seconds, pos.events_offset)
    out = Reporter(paths, d, pos.events_offset if loaded else None)
    emit = out.emit
    ranks = {
        "world_size": d.world,
        "device_names": [i[2] for i in identity],
        "hosts": [i[1] for i in identity],
        "pids": [i[0] for i in identity],
    }
    if loaded is None:
        emit(
            "run_start",
            run_id=run.run_id,
            config=run.to_dict(),
            nnodes=run.launch.nnodes,
            local_world_size=d.local_world,
            backend=run.backend,
            device=d.device.type,
            torch_version=torch.__version__,
            train_images=len(data.train),
            val_images=len(data.val),
            global_batch=run.train.batch_size,
            per_rank_batch=run.per_rank_batch,
            lr=run.lr,
            steps_per_epoch=plan.steps_per_epoch,
            total_steps=plan.total_steps,
            warmup_steps=plan.warmup_steps,
            epochs=run.train.epochs,
            start_epoch=1,
            **ranks,
        )
    else:
        emit(
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
        emit("compile", what=what, seconds=round(seconds, 3))
    started = time.perf_counter()
    if run.train.mode == "throughput":
        from larsbench.train.throughput import run_throughput

        run_throughput(run, parts, loader, sampler, d, emit)
        emit(
            "run_end",
            status="completed",
            reason="",
            epoch=0,
            step=0,
            train_seconds=0.0,
            wall_seconds=time.perf_counter() - started,
        )
        out.close()
        return

    def save(epoch: int, epoch_step: int) -> None:
        if d.is_main:
            at = checkpoint.Position(epoch, epoch_step, step, train_seconds, out.offset())
            path = checkpoint.save(paths.checkpoints_dir, parts, at, run.run_id)
            emit("checkpoint", epoch=epoch, epoch_step=epoch_step, step=step, file=path.name)

    step, train_seconds, status, reason = pos.step, pos.train_seconds, "completed", ""
    losses: list[float] = []
    epoch = pos.epoch
    for epoch in range(pos.epoch, run.train.epochs + 1):
        skip = pos.epoch_step if epoch == pos.epoch else 0
        sampler.set_epoch(epoch)
        sampler.skip = skip * run.per_rank_batch
        epoch_started = time.perf_counter()
        epoch_loss, epoch_steps, epoch_images = 0.0, 0, 0
        interval = Interval(d.device)
        fetch_started = time.perf_counter()
        for epoch_step, (images, labels) in enumerate(loader, start=skip + 1):
            data_seconds = time.perf_counter() - fetch_started
            images, labels = to_device(images, labels, d, run)
            with autocast(run, d):
                loss = parts.criterion(ddp(images), labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            # With fp16, GradScaler.step reads found_inf: a CPU-GPU sync the AMP recipe requires.
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            interval.add(loss, labels.shape[0], data_seconds)
            last = epoch_step == plan.steps_per_epoch
            if step % run.train.log_every == 0 or last:
                report = report_interval(interval, d, stop.requested)
                epoch_loss += report["loss"] * interval.steps
                epoch_steps += interval.steps
                epoch_images += interval.images * d.world  # equal per-rank batches
                nonfinite, stopping = report.pop("nonfinite"), report.pop("stop")
                emit(
                    "step",
                    epoch=epoch,
                    step=step,
                    epoch_step=epoch_step,
                    steps_per_epoch=plan.steps_per_epoch,
                    lr=optimizer.param_groups[0]["lr"],
                    **report,
                )
                if nonfinite:  # every rank saw the same gathered flag: all stop together
                    status, reason = "diverged", f"non-finite loss at step {step}"
                elif exploded(losses, report["loss"], run.train.divergence_factor):
                    status = "diverged"
                    reason = (
                        f"loss {report['loss']:.4g} at step {step} exceeds "
                        f"{run.train.divergence_factor:g}x its running median "
                        f"{statistics.median(losses[-20:]):.4g}"
                    )
                elif stopping:
                    status, reason = "stopped", f"stopped at step {step}, checkpointed"
                    train_seconds += time.perf_counter() - epoch_started
                    epoch_started = time.perf_counter()
                    save(epoch, epoch_step)
                losses.append(report["loss"])
                if status != "completed":
                    break
                interval = Interval(d.device)
            if run.optimizer.name == "larc":
                stats_every = run.optimizer.stats_every
                if stats_every and step % stats_every == 0:
                    fields = trust_event(optimizer, parts.names)  # on every rank: same values
                    if fields:
                        emit(
                            "trust",
                            epoch=epoch,
                            step=step,
                            lr=optimizer.param_groups[0]["lr"],
                            **fields,
                        )
                        if trust_collapsed(fields["factor"]):
                            status = "diverged"
                            reason = (
                                f"LARC trust ratios collapsed to 0 in every layer at step {step}"
                            )
                            break
            if last:
                break
            fetch_started = time.perf_counter()
        epoch_seconds = time.perf_counter() - epoch_started
        train_seconds += epoch_seconds
        if status == "stopped":
            break
        emit(
            "epoch",
            epoch=epoch,
            step=step,
            loss=epoch_loss / epoch_steps if epoch_steps else math.nan,
            images=epoch_images,
            seconds=epoch_seconds,
            images_per_sec=epoch_images / epoch_seconds if epoch_seconds else math.nan,
            train_seconds=train_seconds,
        )
        if status != "completed":
            break
        if epoch % run.train.eval_every == 0 or epoch == run.train.epochs:
            eval_started = time.perf_counter()
            metrics = evaluate(ddp, val, d, run)
            emit(
                "eval",
                epoch=epoch,
                step=step,
                seconds=time.perf_counter() - eval_started,
                **metrics,
            )
        every = run.train.checkpoint_every
        if every and (epoch % every == 0 or epoch == run.train.epochs):
            save(epoch, plan.steps_per_epoch)
    emit(
        "run_end",
        status=status,
        reason=reason,
        epoch=epoch,
        step=step,
        train_seconds=train_seconds,
        wall_seconds=time.perf_counter() - started,
    )
    out.close()


@record
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="larsbench.train.worker")
    parser.add_argument("--run-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    paths = RunPaths(args.run_dir)
    config = read_json(paths.config)
    if config is None:
        raise SystemExit(f"{paths.config}: missing or not JSON")
    run = RunConfig.from_dict(config)
    stop = StopRequest()
    d = setup_distributed(run)
    try:
        train(run, paths, d, stop)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()

"""The torchrun worker: one rank of data-parallel training that rank 0 reports as events.

Launched by larsbench (see larsbench/launch.py), never by hand, as:

    python -m torch.distributed.run --standalone --nproc-per-node 2 \
        -m larsbench.train.worker --run-dir RUN

It reads RUN/config.json, trains with DistributedDataParallel (nccl on CUDA, gloo on CPU),
evaluates every epoch exactly over the whole validation set, and rank 0 appends events to
RUN/events/rank0.jsonl (docs/events.md).

Where the host waits for the device: every `train.log_every` steps (`report_interval`),
every `optimizer.stats_every` LARC steps (a trust snapshot's `to_host()`), once per
evaluation, and at checkpoints. With `train.amp = "fp16"` also at every step: GradScaler's
step reads its found-inf flag, as the AMP recipe requires. With "bf16" or "off" a training
step never syncs; the stop vote travels on CPU tensors (larsbench/train/stop.py).

It checkpoints every `train.checkpoint_every` epochs and, when a rank is asked to stop
(SIGTERM/SIGINT), at the step after; it resumes from RUN/checkpoints/ when started again, by
larsbench or by torchrun's restarts.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import record

from larsbench.plan.run import RunConfig
from larsbench.rundir import RunPaths, read_json
from larsbench.train import checkpoint
from larsbench.train.evaluate import evaluate
from larsbench.train.report import Interval, Report, TrustSnapshots, report_interval
from larsbench.train.session import Session, open_session
from larsbench.train.setup import Dist, setup_distributed, to_device
from larsbench.train.step import forward_backward, optimizer_step
from larsbench.train.stop import StopRequest, StopVote

RUNNING, COMPLETED, DIVERGED, STOPPED = "running", "completed", "diverged", "stopped"


def exploded(history: list[float], loss: float, factor: float) -> bool:
    """True when the loss exceeds `factor` times the median of the earlier reports."""
    if factor <= 0 or len(history) < 5:
        return False
    return loss > factor * statistics.median(history[-20:])


def trust_collapsed(factors: list[float]) -> bool:
    """Every adapted layer's factor ~0: LARC has stopped all learning."""
    return bool(factors) and max(factors) < 1e-6


@dataclass(frozen=True)
class Ending:
    status: str  # RUNNING, COMPLETED, DIVERGED or STOPPED
    reason: str = ""


@dataclass(frozen=True)
class Signs:
    """What one step learnt that may end the run; every rank holds the same values."""

    step: int
    loss: float | None = None  # a report's loss, None between reports
    nonfinite: bool = False
    trust_factors: list[float] | None = None  # a trust snapshot's factors
    stop: bool = False  # the stop vote
    finished: bool = False  # the last step of the last epoch


def verdict(signs: Signs, history: list[float], divergence_factor: float) -> Ending:
    """Whether the run goes on, and if not how it ended: the one place that decides."""
    step = signs.step
    if signs.nonfinite:
        return Ending(DIVERGED, f"non-finite loss at step {step}")
    if signs.loss is not None and exploded(history, signs.loss, divergence_factor):
        median = statistics.median(history[-20:])
        return Ending(
            DIVERGED,
            f"loss {signs.loss:.4g} at step {step} exceeds {divergence_factor:g}x its "
            f"running median {median:.4g}",
        )
    if signs.trust_factors is not None and trust_collapsed(signs.trust_factors):
        return Ending(DIVERGED, f"LARC trust ratios collapsed to 0 in every layer at step {step}")
    if signs.finished:
        return Ending(COMPLETED)
    if signs.stop:
        return Ending(STOPPED, f"stopped at step {step}, checkpointed")
    return Ending(RUNNING)


@dataclass
class EpochResult:
    ending: Ending
    epoch_step: int  # steps of the epoch done
    step: int  # steps of the run done
    loss_sum: float = 0.0  # report loss x report steps
    loss_steps: int = 0
    images: int = 0
    seconds: float = 0.0


def train_one_epoch(
    s: Session, vote: StopVote, epoch: int, step: int, history: list[float]
) -> EpochResult:
    """Steps until the epoch ends or the verdict ends the run; skips the steps already done
    when the run resumed inside this epoch."""
    run, d, parts = s.run, s.d, s.parts
    skip = s.position.epoch_step if epoch == s.position.epoch else 0
    s.sampler.set_epoch(epoch)
    s.sampler.skip = skip * run.per_rank_batch
    trust = TrustSnapshots(parts.optimizer, parts.names)
    result = EpochResult(Ending(RUNNING), skip, step)
    started = fetch_started = time.perf_counter()
    interval = Interval(d.device)
    for epoch_step, (images, labels) in enumerate(s.loader, start=skip + 1):
        data_seconds = time.perf_counter() - fetch_started
        images, labels = to_device(images, labels, d, run)
        lr = parts.optimizer.param_groups[0]["lr"]  # this step's; the scheduler sets the next
        loss = forward_backward(parts, images, labels, run, d)
        optimizer_step(parts)
        parts.scheduler.step()
        step += 1
        interval.add(loss, labels.shape[0], data_seconds)
        last = epoch_step == s.plan.steps_per_epoch
        signs = Signs(step, stop=vote.agreed(), finished=last and epoch == run.train.epochs)
        if step % run.train.log_every == 0 or last or signs.stop:  # a stop reports its steps
            report = report_interval(interval, d)
            emit_step(s, epoch, epoch_step, step, lr, report, result)
            signs = replace(signs, loss=report.loss, nonfinite=report.nonfinite)
            interval = Interval(d.device)
        snapshot = trust.after_step(parts.optimizer, step, lr)
        if snapshot is not None:
            s.out.emit("trust", epoch=epoch, **snapshot)
            signs = replace(signs, trust_factors=snapshot["factor"])
        result.ending = verdict(signs, history, run.train.divergence_factor)
        result.epoch_step, result.step = epoch_step, step
        if signs.loss is not None:
            history.append(signs.loss)
        if result.ending.status != RUNNING or last:
            break
        fetch_started = time.perf_counter()
    result.seconds = time.perf_counter() - started
    return result


def emit_step(
    s: Session, epoch: int, epoch_step: int, step: int, lr: float, report: Report, r: EpochResult
) -> None:
    """The `step` event of a report, whose sums also go into the epoch's."""
    s.out.emit(
        "step",
        epoch=epoch,
        step=step,
        epoch_step=epoch_step,
        steps_per_epoch=s.plan.steps_per_epoch,
        lr=lr,
        **report.event_fields(),
    )
    r.loss_sum += report.loss * report.interval_steps
    r.loss_steps += report.interval_steps
    r.images += report.images


def save(s: Session, at: checkpoint.Position) -> None:
    """Rank 0 writes the checkpoint of position `at` and says so."""
    if s.d.is_main:
        path = checkpoint.save(s.paths.checkpoints_dir, s.parts, at, s.run.run_id)
        s.out.emit(
            "checkpoint", epoch=at.epoch, epoch_step=at.epoch_step, step=at.step, file=path.name
        )


def finish_epoch(s: Session, epoch: int, r: EpochResult, train_seconds: float) -> None:
    """The epoch event, its evaluation when due, its checkpoint when due or stopping."""
    s.out.emit(
        "epoch",
        epoch=epoch,
        step=r.step,
        loss=r.loss_sum / r.loss_steps if r.loss_steps else math.nan,
        images=r.images,
        seconds=r.seconds,
        images_per_sec=r.images / r.seconds if r.seconds else math.nan,
        train_seconds=train_seconds,
    )
    if r.ending.status == DIVERGED:
        return
    t = s.run.train
    if epoch % t.eval_every == 0 or epoch == t.epochs:
        eval_started = time.perf_counter()
        metrics = evaluate(s.parts.ddp, s.val, s.d, s.run)
        seconds = time.perf_counter() - eval_started
        s.out.emit("eval", epoch=epoch, step=r.step, seconds=seconds, **metrics)
    every = t.checkpoint_every
    due = every and (epoch % every == 0 or epoch == t.epochs)
    if due or r.ending.status == STOPPED:
        at = checkpoint.Position(epoch, r.epoch_step, r.step, train_seconds, s.out.offset())
        save(s, at)


def train(run: RunConfig, paths: RunPaths, d: Dist, stop: StopRequest) -> None:
    """Start or resume, then one epoch at a time until the verdict ends the run."""
    s = open_session(run, paths, d, resume=True)
    vote = StopVote(stop)
    step, train_seconds = s.position.step, s.position.train_seconds
    history: list[float] = []
    ending, epoch = Ending(RUNNING), s.position.epoch
    for epoch in range(s.position.epoch, run.train.epochs + 1):
        r = train_one_epoch(s, vote, epoch, step, history)
        step, ending = r.step, r.ending
        train_seconds += r.seconds
        if ending.status == STOPPED and r.epoch_step < s.plan.steps_per_epoch:
            save(s, checkpoint.Position(epoch, r.epoch_step, step, train_seconds, s.out.offset()))
            break
        finish_epoch(s, epoch, r, train_seconds)
        if ending.status != RUNNING:
            break
    vote.close()
    s.out.emit(
        "run_end",
        status=ending.status,
        reason=ending.reason,
        epoch=epoch,
        step=step,
        train_seconds=train_seconds,
        wall_seconds=time.perf_counter() - s.started,
    )
    s.out.close()


def measure(run: RunConfig, paths: RunPaths, d: Dist) -> None:
    """Throughput mode: timed steps on synthetic images, no checkpoints, no evaluation."""
    from larsbench.train.throughput import measure_throughput

    s = open_session(run, paths, d, resume=False)
    s.out.emit("throughput", **measure_throughput(run, s.parts, s.loader, s.sampler, d))
    s.out.emit(
        "run_end",
        status=COMPLETED,
        reason="",
        epoch=0,
        step=0,
        train_seconds=0.0,
        wall_seconds=time.perf_counter() - s.started,
    )
    s.out.close()


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
    # Training catches SIGTERM/SIGINT to checkpoint first; a throughput run just ends.
    stop = StopRequest() if run.train.mode == "train" else None
    d = setup_distributed(run)
    try:
        if stop is None:
            measure(run, paths, d)
        else:
            train(run, paths, d, stop)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()

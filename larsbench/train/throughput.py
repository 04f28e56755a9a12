"""Throughput mode: warm-up steps, then timed steps on synthetic data, no evaluation.

Three windows of `train.throughput_steps` steps each, after `throughput_warmup_steps`:
  A. plain steps, synchronised only at the ends: the headline img/s;
  B. the same steps with a device sync between phases: data, forward+backward, optimizer;
  C. half as many steps under DDP's no_sync(): forward+backward without the gradient
     all-reduce. Communication wait = B's forward+backward - C's (what overlap did not hide).
Window B and C's syncs cost throughput, which is why A is measured apart.

With `train.throughput_data = "real"` the batches come through the run's real loader
(decode included) and a fourth window repeats A on one batch already on the device: the
same steps without the input pipeline. `input_bound_share` = 1 - A / D: the share of the
step rate the loader costs (0 when the loader keeps up).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist

from larsbench.plan.run import RunConfig
from larsbench.plan.steps import throughput_steps
from larsbench.train.report import wait_for_device
from larsbench.train.setup import Dist, Parts, to_device
from larsbench.train.step import forward_backward, optimizer_step


def _sync(d: Dist) -> None:
    wait_for_device(d)  # a deliberate CPU-GPU sync: phases are being timed


def _batches(loader: Any, sampler: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def _window(
    steps: int,
    parts: Parts,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    run: RunConfig,
    d: Dist,
    phases: bool,
    communicate: bool = True,
) -> dict[str, float]:
    """Runs `steps` steps; returns seconds (total and, with phases, per phase) and images."""
    spent = {"data": 0.0, "forward_backward": 0.0, "optimizer": 0.0}
    images_done = 0
    _sync(d)
    started = time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        images, labels = next(batches)
        images, labels = to_device(images, labels, d, run)
        if phases:
            _sync(d)
        t1 = time.perf_counter()
        forward_backward(parts, images, labels, run, d, communicate)
        if phases:
            _sync(d)
        t2 = time.perf_counter()
        optimizer_step(parts)
        if phases:
            _sync(d)
        t3 = time.perf_counter()
        spent["data"] += t1 - t0
        spent["forward_backward"] += t2 - t1
        spent["optimizer"] += t3 - t2
        images_done += labels.shape[0]
    _sync(d)
    return {"seconds": time.perf_counter() - started, "images": float(images_done), **spent}


def _repeat(
    batch: tuple[torch.Tensor, torch.Tensor],
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One batch, again and again: the steps without the input pipeline."""
    while True:
        yield batch


def _gather(values: list[float], d: Dist) -> list[list[float]]:
    mine = torch.tensor(values, dtype=torch.float64, device=d.device)
    out = [torch.empty_like(mine) for _ in range(d.world)]
    dist.all_gather(out, mine)
    return torch.stack(out).cpu().tolist()


def peak_memory_bytes(d: Dist) -> float:
    if d.device.type == "cuda":
        return float(torch.cuda.max_memory_allocated(d.device))
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # Linux: KiB


def _timed_windows(run: RunConfig, parts: Parts, loader: Any, sampler: Any, d: Dist) -> list[float]:
    """This rank's figures of windows A, B, C (and D with real data), in `_gather`'s order."""
    steps = throughput_steps(run.train)
    batches = _batches(loader, sampler)
    if steps.warmup:
        _window(steps.warmup, parts, batches, run, d, phases=False)
    a = _window(steps.plain, parts, batches, run, d, phases=False)
    b = _window(steps.phased, parts, batches, run, d, phases=True)
    c = _window(steps.no_sync, parts, batches, run, d, phases=True, communicate=False)
    held = {"images": 0.0, "seconds": 1.0}
    if steps.held:
        held = _window(steps.held, parts, _repeat(next(batches)), run, d, phases=False)
    return [
        a["images"],
        a["seconds"],
        b["data"],
        b["forward_backward"],
        b["optimizer"],
        b["seconds"],
        c["forward_backward"],
        peak_memory_bytes(d),
        held["images"],
        held["seconds"],
    ]


def measure_throughput(
    run: RunConfig, parts: Parts, loader: Any, sampler: Any, d: Dist
) -> dict[str, Any]:
    """The fields of the `throughput` event (the same on every rank)."""
    t = run.train
    steps = throughput_steps(t)
    rows = _gather(_timed_windows(run, parts, loader, sampler, d), d)
    c_steps = steps.no_sync
    real = bool(steps.held)
    n = steps.plain
    rank_ips = [r[0] / r[1] for r in rows]
    step_seconds = max(r[1] for r in rows) / n
    images_per_sec = sum(r[0] for r in rows) / max(r[1] for r in rows)
    per_step = {
        "data": _mean([r[2] for r in rows]) / n,
        "forward_backward": _mean([r[6] for r in rows]) / c_steps,
        "optimizer": _mean([r[4] for r in rows]) / n,
    }
    per_step["communication_wait"] = max(
        _mean([r[3] for r in rows]) / n - per_step["forward_backward"], 0.0
    )
    phased = _mean([r[5] for r in rows]) / n
    steps_per_epoch = t.throughput_epoch_images // t.batch_size
    input_pipeline: dict[str, Any] = {"throughput_data": t.throughput_data}
    if real:
        held_ips = sum(r[8] for r in rows) / max(r[9] for r in rows)
        input_pipeline["synthetic_images_per_sec"] = held_ips
        input_pipeline["input_bound_share"] = max(0.0, 1.0 - images_per_sec / held_ips)
    return {
        **input_pipeline,
        "images_per_sec": images_per_sec,
        "images_per_sec_per_gpu": images_per_sec / d.world,
        "rank_images_per_sec": rank_ips,
        "step_seconds": step_seconds,
        "split_seconds": per_step,
        "phased_step_seconds": phased,
        "optimizer_share": per_step["optimizer"] / phased if phased else float("nan"),
        "peak_memory_bytes": max(r[7] for r in rows),
        "timed_steps": n,
        "warmup_steps": t.throughput_warmup_steps,
        "epoch_images": t.throughput_epoch_images,
        "projected_epoch_seconds": steps_per_epoch * step_seconds,
        "projected_run_seconds": steps_per_epoch * step_seconds * t.epochs,
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)

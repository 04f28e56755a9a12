"""One optimizer step: forward and backward over micro-batches, then the scaler and optimizer.

Host syncs: with `train.amp = "fp16"`, GradScaler.step reads its found-inf flag on the host
(the AMP recipe requires it); with "bf16" or "off" no scaler runs and nothing here syncs.
"""

from __future__ import annotations

import contextlib

import torch

from larsbench.plan.run import RunConfig
from larsbench.train.setup import Dist, Parts, autocast


def forward_backward(
    parts: Parts,
    images: torch.Tensor,
    labels: torch.Tensor,
    run: RunConfig,
    d: Dist,
    communicate: bool = True,
) -> torch.Tensor:
    """Gradients of the per-rank batch's mean loss, in `train.accumulate_steps` micro-batches.

    DDP all-reduces the gradients during the last micro-batch's backward only (`no_sync` on
    the others; `communicate=False` skips it on all). Each micro-batch's loss is divided by
    their count, so the gradients equal those of the whole batch. Returns the batch's mean
    loss, on the device.
    """
    k = run.train.accumulate_steps
    parts.optimizer.zero_grad(set_to_none=True)
    losses = []
    pieces = zip(images.chunk(k), labels.chunk(k), strict=True)
    for i, (micro_images, micro_labels) in enumerate(pieces):
        reduce = communicate and i == k - 1
        with contextlib.nullcontext() if reduce else parts.ddp.no_sync():
            with autocast(run, d):
                loss = parts.criterion(parts.ddp(micro_images), micro_labels) / k
            parts.scaler.scale(loss).backward()
        losses.append(loss.detach())
    return losses[0] if k == 1 else torch.stack(losses).sum()


def optimizer_step(parts: Parts) -> None:
    """LARC (or SGD) once per optimizer step, after every micro-batch's backward."""
    parts.scaler.step(parts.optimizer)  # fp16: reads found_inf, the AMP recipe's host sync
    parts.scaler.update()

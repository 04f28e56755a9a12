"""Exact evaluation: top-1/top-5 and loss over the whole validation set, summed over ranks."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from larsbench.plan.run import RunConfig
from larsbench.train.setup import Dist, autocast, to_device


@torch.no_grad()
def evaluate(model: nn.Module, loader: Any, d: Dist, run: RunConfig) -> dict[str, float]:
    """Each rank's shard, then one all-reduce and one sync at the end. The image count stays
    on the host (a batch's size is known there), so no batch copies anything to the device."""
    model.eval()
    totals = torch.zeros(3, device=d.device, dtype=torch.float64)  # correct1, correct5, loss
    images = 0
    criterion = nn.CrossEntropyLoss(reduction="sum")
    for batch_images, labels in loader:
        batch_images, labels = to_device(batch_images, labels, d, run)
        with autocast(run, d):
            logits = model(batch_images)
        k = min(5, logits.shape[1])
        hits = logits.topk(k, dim=1).indices.eq(labels.unsqueeze(1))
        totals += torch.stack(
            [
                hits[:, :1].sum().double(),
                hits.sum().double(),
                criterion(logits.float(), labels).double(),
            ]
        )
        images += labels.shape[0]
    count = torch.tensor([float(images)], dtype=torch.float64).to(d.device)
    summed = torch.cat([totals, count])
    dist.all_reduce(summed)
    c1, c5, loss, n = summed.cpu().tolist()  # the sync
    model.train()
    n = max(n, 1.0)
    return {"top1": 100 * c1 / n, "top5": 100 * c5 / n, "loss": loss / n, "images": int(n)}

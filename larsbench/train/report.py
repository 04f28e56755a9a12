"""The every-N-steps report: per-rank sums kept on the device, gathered across ranks."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.distributed as dist

from larsbench.train.setup import Dist


def wait_for_device(d: Dist) -> None:
    """Waits until the device has run everything queued: the clock then measures the work."""
    if d.device.type == "cuda":
        torch.cuda.synchronize(d.device)  # a CPU-GPU sync point


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


@dataclass(frozen=True)
class Report:
    """What every rank learns at a report: the same values on each, so they decide together."""

    loss: float
    nonfinite: bool
    images_per_sec: float
    rank_images_per_sec: list[float]
    data_wait_fraction: float
    rank_data_wait_fraction: list[float]
    step_seconds: float
    interval_steps: int
    images: int

    def event_fields(self) -> dict[str, object]:
        """The `step` event's share of the report (docs/events.md)."""
        fields = asdict(self)
        del fields["nonfinite"], fields["images"]
        return fields


def report_interval(iv: Interval, d: Dist) -> Report:
    """Gathers every rank's interval sums: CPU-GPU sync points, once every log_every steps.
    The device is waited for before the clock is read, so the interval's wall time holds
    all of its steps even when nothing synced during them (bf16, SGD)."""
    wait_for_device(d)
    wall = time.perf_counter() - iv.started
    host = torch.tensor(
        [float(iv.steps), float(iv.images), iv.data_seconds, wall], dtype=torch.float64
    )
    mine = torch.cat(
        [torch.stack([iv.loss_sum, iv.nonfinite.double()]), host.to(d.device, non_blocking=True)]
    )
    gathered = [torch.empty_like(mine) for _ in range(d.world)]
    dist.all_gather(gathered, mine)
    rows = torch.stack(gathered).cpu().tolist()  # the sync
    loss_sum = sum(r[0] for r in rows)
    steps = sum(r[2] for r in rows)
    walls = [max(r[5], 1e-9) for r in rows]
    rank_ips = [r[3] / w for r, w in zip(rows, walls, strict=True)]
    rank_wait = [r[4] / w for r, w in zip(rows, walls, strict=True)]
    return Report(
        loss=loss_sum / steps if steps else math.nan,
        nonfinite=any(r[1] > 0 for r in rows),
        images_per_sec=sum(r[3] for r in rows) / max(walls),
        rank_images_per_sec=rank_ips,
        data_wait_fraction=sum(rank_wait) / len(rank_wait),
        rank_data_wait_fraction=rank_wait,
        step_seconds=walls[0] / max(iv.steps, 1),
        interval_steps=iv.steps,
        images=int(sum(r[3] for r in rows)),
    )


TRUST_FIELDS = ("weight_norm", "grad_norm", "local_lr", "factor", "clipped")


class TrustSnapshots:
    """LARC's trust-ratio statistics as `trust` fields, labelled with the step that recorded
    them. LARC records on its own step count, which steps GradScaler skips do not advance, so
    a new snapshot is recognised by its identity, not by the worker's step number."""

    def __init__(self, optimizer: torch.optim.Optimizer, names: list[str]) -> None:
        self.names = names
        self.seen = getattr(optimizer, "latest_stats", None)

    def after_step(
        self, optimizer: torch.optim.Optimizer, step: int, lr: float
    ) -> dict[str, object] | None:
        """The fields of a snapshot recorded by this step (its number and lr), else None."""
        stats = getattr(optimizer, "latest_stats", None)
        if stats is None or stats is self.seen:
            return None
        self.seen = stats
        host = stats.to_host()  # the sync, every optimizer.stats_every LARC steps
        layers = [self.names[i] for i in stats.param_index]
        fields = {k: host[k] for k in TRUST_FIELDS}
        return {"step": step, "lr": lr, "larc_step": stats.step, "layers": layers, **fields}

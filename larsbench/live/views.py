"""The immutable snapshots of one run that the screens render: the run, its nodes, GPUs, ranks."""

from __future__ import annotations

import math
from dataclasses import dataclass

from larsbench.live.series import EMPTY_CURVE, Curve
from larsbench.live.trust_history import TrustView


@dataclass(frozen=True)
class DeviceView:
    """One GPU's latest sample and its utilisation history."""

    index: int | None
    local_rank: int | None
    name: str
    util_gpu: float
    util_mem: float
    mem_used: float
    mem_total: float
    power_w: float
    power_limit_w: float
    temp_c: float
    sm_clock_mhz: float
    throttle: str
    util_history: tuple[float, ...]


@dataclass(frozen=True)
class RankView:
    """One training process on a node: its CPU, memory and data-loader workers."""

    local_rank: int | None
    pid: int | None
    cpu_percent: float
    rss_bytes: float
    workers: int | None
    workers_cpu_percent: float
    workers_rss_bytes: float
    gpu_mem_bytes: float
    cpu_history: tuple[float, ...]


@dataclass(frozen=True)
class NodeView:
    """The latest `system` sample of one node."""

    node: str
    source: str
    t: float
    devices: tuple[DeviceView, ...]
    ranks: tuple[RankView, ...]
    host_cpu_percent: float
    host_mem_used: float
    host_mem_total: float


@dataclass(frozen=True)
class RunView:
    """Everything the live screen shows about one run, as an immutable snapshot."""

    run_id: str
    status: str = "queued"
    reason: str = ""
    model: str = ""
    optimizer: str = ""
    trust_coefficient: float | None = None
    batch_size: int = 0
    per_rank_batch: int = 0
    world_size: int = 0
    device: str = ""
    peak_lr: float = math.nan
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    total_steps: int = 0
    steps_per_epoch: int = 0
    epoch_step: int = 0
    loss: float = math.nan
    lr: float = math.nan
    images_per_sec: float = math.nan
    rank_images_per_sec: tuple[float, ...] = ()
    data_wait: float = math.nan
    rank_data_wait: tuple[float, ...] = ()
    input_bound: bool = False
    straggler: int | None = None
    # accuracy: the newest evaluation, the best so far (the first of equals), and its curve
    top1: float = math.nan
    top5: float = math.nan
    best_top1: float = math.nan
    best_epoch: int = 0
    top1_curve: Curve = EMPTY_CURVE
    eta_seconds: float = math.nan
    started_t: float = math.nan
    last_event_t: float = math.nan
    ended_t: float = math.nan
    energy_per_image: float = math.nan
    loss_curve: Curve = EMPTY_CURVE
    lr_curve: Curve = EMPTY_CURVE
    ips_curve: Curve = EMPTY_CURVE
    rank_ips_curves: tuple[Curve, ...] = ()
    data_wait_curve: Curve = EMPTY_CURVE
    nodes: tuple[NodeView, ...] = ()
    trust: TrustView | None = None
    log_lines: tuple[str, ...] = ()
    log_total: int = 0
    events_seen: int = 0

    @property
    def is_larc(self) -> bool:
        return self.optimizer == "larc"

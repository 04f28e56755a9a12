"""Folds one run's events, config, status and log into bounded immutable views (no Textual)."""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from larsbench.format import finite
from larsbench.live.fold import RunFold
from larsbench.live.series import Series
from larsbench.live.trust_history import TrustHistory
from larsbench.live.views import DeviceView, NodeView, RankView, RunView
from larsbench.telemetry.summarize import INPUT_BOUND_THRESHOLD, STRAGGLER_RATIO

# Bounds that keep memory flat over a 90-epoch run whatever the event rate (curves and the
# trust heatmap: see series.py and trust_history.py).
RANK_CURVE_POINTS = 300
MAX_RANK_CURVES = 16  # beyond this only the global throughput is plotted
SPARK_SAMPLES = 40  # per device / rank utilisation sparkline
RATE_WINDOW = 30  # step events used for the current step rate (ETA)
LOG_LINES = 200

# The input-bound and straggler rules are the telemetry summary's, so that the live screen and
# summary.md flag the same runs: data wait above INPUT_BOUND_THRESHOLD of step time; a rank
# slower than STRAGGLER_RATIO times the median rank.


def _f(value: Any) -> float:
    return float(value) if finite(value) else math.nan


def _pick(d: dict[str, Any], *names: str) -> Any:
    """The first of several field names present (event field names have changed once)."""
    for name in names:
        value = d.get(name)
        if value is not None:
            return value
    return None


@dataclass
class RunState:
    """Folds one run's config, status, events and log lines; `view()` snapshots it."""

    run_id: str
    config: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    record: RunFold = field(default_factory=RunFold)  # what the training events mean
    best_top1: float = math.nan
    best_epoch: int = 0
    last_event_t: float = math.nan
    events_seen: int = 0
    version: int = 0

    def __post_init__(self) -> None:
        self.loss = Series()
        self.lr = Series()
        self.ips = Series()
        self.rank_ips: list[Series] = []
        self.top1_series = Series()
        self.data_wait = Series()
        self.trust = TrustHistory()
        self.rate: deque[tuple[float, float]] = deque(maxlen=RATE_WINDOW)
        self.nodes: dict[str, dict[str, Any]] = {}
        self.device_names: dict[tuple[str, Any], str] = {}
        self.util_rings: dict[tuple[str, Any], deque[float]] = {}
        self.cpu_rings: dict[tuple[str, Any], deque[float]] = {}
        self.energy0: tuple[float, float] | None = None  # (joules, images) at first sample
        self.energy_now: tuple[float, float] | None = None
        self.log: deque[str] = deque(maxlen=LOG_LINES)
        self.log_total = 0
        self._view: RunView | None = None
        self._view_version = -1

    # --- input ----------------------------------------------------------------------------

    def set_config(self, config: dict[str, Any]) -> None:
        if config != self.config:
            self.config = dict(config)
            self.version += 1

    def set_status(self, status: dict[str, Any]) -> None:
        if status != self.status:
            self.status = dict(status)
            self.version += 1

    def add_log_lines(self, lines: list[str]) -> None:
        if lines:
            self.log.extend(lines)
            self.log_total += len(lines)
            self.version += 1

    @property
    def start(self) -> dict[str, Any]:
        return self.record.start

    @property
    def last_step(self) -> dict[str, Any]:
        return self.record.last_step

    @property
    def end(self) -> dict[str, Any]:
        return self.record.end

    @property
    def top1(self) -> float:
        """The newest evaluation's top-1 (NaN when it is not a finite number)."""
        return _f(self.record.last_eval.get("top1"))

    @property
    def top5(self) -> float:
        return _f(self.record.last_eval.get("top5"))

    @property
    def eval_seconds(self) -> float:
        return _f(self.record.last_eval.get("seconds"))

    def add(self, source: str, event: dict[str, Any]) -> None:
        """Fold one event from `source` (rank0, system-NODE); unknown kinds are ignored."""
        kind = event.get("kind")
        t = _f(event.get("t"))
        self.events_seen += 1
        if finite(t) and not t <= self.last_event_t:
            self.last_event_t = t
        self.record.add(event)
        handler = _HANDLERS.get(kind)  # type: ignore[arg-type]
        if handler is not None:
            handler(self, event)
        if kind in _SHOWN_KINDS:
            self.version += 1

    # The record (RunFold) holds what each training event means; these add what only the
    # app shows: the bounded curves, the trust heatmap, the best accuracy and the samples.

    def _on_run_start(self, e: dict[str, Any]) -> None:
        if isinstance(e.get("config"), dict) and not self.config:
            self.config = e["config"]

    def _on_step(self, e: dict[str, Any]) -> None:
        step = e.get("step")
        self.loss.add(step, e.get("loss"))
        self.lr.add(step, e.get("lr"))
        self.ips.add(step, e.get("images_per_sec"))
        self.data_wait.add(step, e.get("data_wait_fraction"))
        ranks = e.get("rank_images_per_sec")
        if isinstance(ranks, list):
            for r, value in enumerate(ranks[:MAX_RANK_CURVES]):
                while len(self.rank_ips) <= r:
                    self.rank_ips.append(Series(RANK_CURVE_POINTS))
                self.rank_ips[r].add(step, value)
        if finite(e.get("t")) and finite(step):
            self.rate.append((float(e["t"]), float(step)))

    def _on_eval(self, e: dict[str, Any]) -> None:
        self.top1_series.add(e.get("epoch"), e.get("top1"))
        top1 = _f(e.get("top1"))
        if finite(top1) and not top1 <= self.best_top1:  # the first of equal bests
            self.best_top1 = top1
            self.best_epoch = int(e.get("epoch") or 0)

    def _on_trust(self, e: dict[str, Any]) -> None:
        self.trust.add(e)

    def _on_system_info(self, e: dict[str, Any]) -> None:
        node = str(e.get("node") or "node")
        for d in e.get("devices") or []:
            if isinstance(d, dict) and d.get("name"):
                self.device_names[(node, d.get("index"))] = str(d["name"])

    def _on_system(self, e: dict[str, Any]) -> None:
        node = str(e.get("node") or "node")
        self.nodes[node] = e
        for d in e.get("devices") or []:
            if isinstance(d, dict):
                ring = self.util_rings.setdefault(
                    (node, d.get("index")), deque(maxlen=SPARK_SAMPLES)
                )
                ring.append(_f(_pick(d, "gpu_util", "util_gpu")))
        for r in e.get("ranks") or []:
            if isinstance(r, dict):
                ring = self.cpu_rings.setdefault(
                    (node, r.get("local_rank")), deque(maxlen=SPARK_SAMPLES)
                )
                ring.append(_f(r.get("cpu_percent")))
        joules = [
            _f(_pick(d, "energy", "energy_j"))
            for d in e.get("devices") or []
            if isinstance(d, dict)
        ]
        if joules and all(finite(j) for j in joules) and len(self.nodes) == 1:
            images = self._images_done()
            if self.energy0 is None:
                self.energy0 = (sum(joules), images)
            self.energy_now = (sum(joules), images)

    def _images_done(self) -> float:
        step = _f(self.last_step.get("step"))
        batch = _f(self.start.get("global_batch"))
        if not finite(batch):
            train = self.config.get("train")
            batch = _f(train.get("batch_size")) if isinstance(train, dict) else math.nan
        return step * batch if finite(step) and finite(batch) else 0.0

    # --- output ---------------------------------------------------------------------------

    def eta_seconds(self) -> float:
        """Remaining training steps at the recent step rate, plus the evaluations left."""
        if self.end or len(self.rate) < 2:
            return math.nan
        (t0, s0), (t1, s1) = self.rate[0], self.rate[-1]
        if t1 <= t0 or s1 <= s0:
            return math.nan
        total = _f(self.start.get("total_steps"))
        if not finite(total):
            return math.nan
        remaining = max(0.0, total - s1) * (t1 - t0) / (s1 - s0)
        epochs_left = _f(self.start.get("epochs")) - _f(self.last_step.get("epoch")) + 1
        if finite(self.eval_seconds) and finite(epochs_left):
            remaining += max(0.0, epochs_left) * self.eval_seconds
        return remaining

    def view(self) -> RunView:
        if self._view is not None and self._view_version == self.version:
            return self._view
        cfg, start, step = self.config, self.start, self.last_step
        train = cfg.get("train", {}) if isinstance(cfg.get("train"), dict) else {}
        opt = cfg.get("optimizer", {}) if isinstance(cfg.get("optimizer"), dict) else {}
        model = cfg.get("model", {}) if isinstance(cfg.get("model"), dict) else {}
        rank_wait = tuple(_f(v) for v in step.get("rank_data_wait_fraction") or [])
        wait = _f(step.get("data_wait_fraction"))
        rank_ips = tuple(_f(v) for v in step.get("rank_images_per_sec") or [])
        straggler = _straggler(rank_ips)
        energy = math.nan
        if self.energy0 and self.energy_now:
            d_img = self.energy_now[1] - self.energy0[1]
            if d_img > 0:
                energy = (self.energy_now[0] - self.energy0[0]) / d_img
        trust = self.trust.view() if self.trust.snapshots else None
        self._view = RunView(
            run_id=self.run_id,
            status=str(self.status.get("state") or ("running" if start else "queued")),
            reason=str(self.status.get("reason") or self.end.get("reason") or ""),
            model=str(model.get("arch", "")),
            optimizer=str(opt.get("name", "")),
            trust_coefficient=_f(opt.get("trust_coefficient"))
            if opt.get("name") == "larc"
            else None,
            batch_size=_int(start.get("global_batch"), train.get("batch_size")),
            per_rank_batch=_int(start.get("per_rank_batch"), cfg.get("per_rank_batch")),
            world_size=_int(start.get("world_size"), cfg.get("world_size")),
            device=str(start.get("device") or cfg.get("device") or ""),
            peak_lr=_f(start.get("lr", cfg.get("lr"))),
            epoch=_int(step.get("epoch")),
            epochs=_int(start.get("epochs"), train.get("epochs")),
            step=_int(step.get("step")),
            total_steps=_int(start.get("total_steps")),
            steps_per_epoch=_int(step.get("steps_per_epoch"), start.get("steps_per_epoch")),
            epoch_step=_int(step.get("epoch_step")),
            loss=_f(step.get("loss")),
            lr=_f(step.get("lr")),
            images_per_sec=_f(step.get("images_per_sec")),
            rank_images_per_sec=rank_ips,
            data_wait=wait,
            rank_data_wait=rank_wait,
            input_bound=finite(wait) and wait > INPUT_BOUND_THRESHOLD,
            straggler=straggler,
            top1=self.top1,
            top5=self.top5,
            best_top1=self.best_top1,
            best_epoch=self.best_epoch,
            eta_seconds=self.eta_seconds(),
            started_t=_f(start.get("t")),
            last_event_t=self.last_event_t,
            ended_t=_f(self.end.get("t")),
            energy_per_image=energy,
            loss_curve=self.loss.curve(),
            lr_curve=self.lr.curve(),
            ips_curve=self.ips.curve(),
            rank_ips_curves=tuple(s.curve() for s in self.rank_ips),
            top1_curve=self.top1_series.curve(),
            data_wait_curve=self.data_wait.curve(),
            nodes=tuple(self._node_view(n, e) for n, e in sorted(self.nodes.items())),
            trust=trust,
            log_lines=tuple(self.log),
            log_total=self.log_total,
            events_seen=self.events_seen,
        )
        self._view_version = self.version
        return self._view

    def _node_view(self, node: str, e: dict[str, Any]) -> NodeView:
        host = e.get("host") if isinstance(e.get("host"), dict) else {}
        devices = []
        for d in e.get("devices") or []:
            if not isinstance(d, dict):
                continue
            devices.append(
                DeviceView(
                    index=d.get("index"),
                    local_rank=d.get("local_rank"),
                    name=str(d.get("name") or self.device_names.get((node, d.get("index"))) or ""),
                    util_gpu=_f(_pick(d, "gpu_util", "util_gpu")),
                    util_mem=_f(_pick(d, "mem_util", "util_mem")),
                    mem_used=_f(_pick(d, "memory_used", "mem_used_bytes")),
                    mem_total=_f(_pick(d, "memory_total", "mem_total_bytes")),
                    power_w=_f(_pick(d, "power_draw", "power_w")),
                    power_limit_w=_f(_pick(d, "power_limit", "power_limit_w")),
                    temp_c=_f(_pick(d, "temperature", "temp_c")),
                    sm_clock_mhz=_f(_pick(d, "sm_clock", "sm_clock_mhz")),
                    throttle=_throttle_text(_pick(d, "throttle_reasons", "throttle")),
                    util_history=tuple(self.util_rings.get((node, d.get("index")), ())),
                )
            )
        ranks = []
        for r in e.get("ranks") or []:
            if not isinstance(r, dict):
                continue
            ranks.append(
                RankView(
                    local_rank=r.get("local_rank"),
                    pid=r.get("pid"),
                    cpu_percent=_f(r.get("cpu_percent")),
                    rss_bytes=_f(r.get("rss_bytes")),
                    workers=r.get("workers") if isinstance(r.get("workers"), int) else None,
                    workers_cpu_percent=_f(r.get("workers_cpu_percent")),
                    workers_rss_bytes=_f(r.get("workers_rss_bytes")),
                    gpu_mem_bytes=_f(r.get("gpu_mem_bytes")),
                    cpu_history=tuple(self.cpu_rings.get((node, r.get("local_rank")), ())),
                )
            )
        return NodeView(
            node=node,
            source=str(e.get("source") or ""),
            t=_f(e.get("t")),
            devices=tuple(devices),
            ranks=tuple(ranks),
            host_cpu_percent=_f(host.get("cpu_percent")),
            host_mem_used=_f(_pick(host, "memory_used", "mem_used_bytes")),
            host_mem_total=_f(_pick(host, "memory_total", "mem_total_bytes")),
        )


def _int(*candidates: Any) -> int:
    """The first candidate that is a finite number, as an int; else 0."""
    for c in candidates:
        if finite(c):
            return int(c)
    return 0


def _straggler(rank_ips: tuple[float, ...]) -> int | None:
    """The slowest rank when it is below STRAGGLER_RATIO of the median rank, else None."""
    known = sorted(v for v in rank_ips if finite(v))
    if len(known) < 2:
        return None
    median = statistics.median(known)
    slowest = min((i for i, v in enumerate(rank_ips) if finite(v)), key=lambda i: rank_ips[i])
    return slowest if rank_ips[slowest] < STRAGGLER_RATIO * median else None


def _throttle_text(value: Any) -> str:
    """The throttle field may be a list of reasons, a string, a bitmask or None."""
    if value is None or value is False or value == 0:
        return ""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


_HANDLERS = {
    "run_start": RunState._on_run_start,
    "step": RunState._on_step,
    "eval": RunState._on_eval,
    "trust": RunState._on_trust,
    "system": RunState._on_system,
    "system_info": RunState._on_system_info,
}
# The kinds that change the view: a new snapshot is built after one of them.
_SHOWN_KINDS = frozenset(_HANDLERS) | {"run_end"}

"""LARC trust-ratio history: a bounded layer x time matrix of factors and clipping counts."""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from larsbench.format import finite

HEAT_COLUMNS = 240  # trust-ratio snapshots kept per layer (merged in log space when full)


def _f(value: Any) -> float:
    return float(value) if finite(value) else math.nan


@dataclass(frozen=True)
class LayerStat:
    """How LARC treated one parameter tensor over the run so far."""

    name: str
    clipped_share: float  # share of snapshots in which clipping bit (factor < 1)
    snapshots: int
    last_factor: float
    min_factor: float
    local_lr: float
    weight_norm: float
    grad_norm: float


@dataclass(frozen=True)
class TrustView:
    """Trust-ratio history: log10 of the applied factor per layer and snapshot column."""

    layers: tuple[str, ...]
    steps: tuple[float, ...]  # one per column
    # [column][layer]; NaN where absent; a column may be shorter than `layers` (layers that
    # appeared later). Columns are shared with the history, which never changes them in place.
    log_factors: tuple[Sequence[float], ...]
    stats: tuple[LayerStat, ...]  # in layer order
    lr: float
    snapshots: int
    version: int


class TrustHistory:
    """Folds `trust` events: a bounded layer x time matrix plus per-layer clipping counts."""

    def __init__(self, capacity: int = HEAT_COLUMNS) -> None:
        self.capacity = max(4, capacity - capacity % 2)
        self.layers: list[str] = []
        self.index: dict[str, int] = {}
        self.steps: list[float] = []
        self.columns: list[array[float]] = []
        self.stride = 1
        self._pending: array[float] | None = None
        self._pending_n = 0
        self._pending_step = 0.0
        self._counts: list[int] = []
        self.clipped: list[int] = []
        self.seen: list[int] = []
        self.last_factor: list[float] = []
        self.min_factor: list[float] = []
        self.local_lr: list[float] = []
        self.weight_norm: list[float] = []
        self.grad_norm: list[float] = []
        self.lr = math.nan
        self.snapshots = 0
        self.version = 0
        self._cache: TrustView | None = None

    def _layer(self, name: str) -> int:
        i = self.index.get(name)
        if i is None:
            i = self.index[name] = len(self.layers)
            self.layers.append(name)
            for lst, init in (
                (self.clipped, 0),
                (self.seen, 0),
                (self.last_factor, math.nan),
                (self.min_factor, math.nan),
                (self.local_lr, math.nan),
                (self.weight_norm, math.nan),
                (self.grad_norm, math.nan),
            ):
                lst.append(init)
            # Copies, not in-place appends: published views share the column arrays.
            self.columns = [col + array("d", [math.nan]) for col in self.columns]
            if self._pending is not None:
                self._pending.append(0.0)
        return i

    def add(self, event: dict[str, Any]) -> None:
        names = event.get("layers")
        if not isinstance(names, list):
            return
        factor = event.get("factor") or []
        clipped = event.get("clipped") or []
        local = event.get("local_lr") or []
        wn = event.get("weight_norm") or []
        gn = event.get("grad_norm") or []

        def at(lst: Any, i: int) -> Any:
            return lst[i] if isinstance(lst, list) and i < len(lst) else None

        col = array("d", [math.nan]) * len(self.layers)
        for j, name in enumerate(names):
            i = self._layer(str(name))
            if len(col) < len(self.layers):
                col.extend([math.nan] * (len(self.layers) - len(col)))
            f = _f(at(factor, j))
            col[i] = math.log10(f) if f > 0 else math.nan
            self.seen[i] += 1
            if at(clipped, j) is True or (not isinstance(at(clipped, j), bool) and f < 1):
                self.clipped[i] += 1
            self.last_factor[i] = f
            if finite(f) and not f >= self.min_factor[i]:
                self.min_factor[i] = f
            self.local_lr[i] = _f(at(local, j))
            self.weight_norm[i] = _f(at(wn, j))
            self.grad_norm[i] = _f(at(gn, j))
        self.lr = _f(event.get("lr"))
        self.snapshots += 1
        self.version += 1
        self._add_column(_f(event.get("step")), col)

    def _add_column(self, step: float, col: array[float]) -> None:
        # Average in log space, treating NaN as absent.
        if self._pending is None:
            self._pending = array("d", [0.0]) * len(col)
            self._counts = [0] * len(col)
        while len(self._pending) < len(col):
            self._pending.append(0.0)
            self._counts.append(0)
        for i, v in enumerate(col):
            if v == v:
                self._pending[i] += v
                self._counts[i] += 1
        self._pending_n += 1
        self._pending_step = step
        if self._pending_n >= self.stride:
            self.columns.append(self._mean_pending())
            self.steps.append(self._pending_step)
            self._pending, self._pending_n = None, 0
            if len(self.columns) >= self.capacity:
                merged = []
                for a, b in zip(self.columns[0::2], self.columns[1::2], strict=True):
                    merged.append(array("d", (_nanmean2(x, y) for x, y in zip(a, b, strict=True))))
                self.columns = merged
                self.steps = self.steps[1::2]
                self.stride *= 2

    def _mean_pending(self) -> array[float]:
        assert self._pending is not None
        return array(
            "d",
            (s / n if n else math.nan for s, n in zip(self._pending, self._counts, strict=True)),
        )

    def view(self) -> TrustView:
        if self._cache is not None and self._cache.version == self.version:
            return self._cache
        n = len(self.layers)
        cols: list[Sequence[float]] = list(self.columns)
        steps = list(self.steps)
        if self._pending is not None and self._pending_n:
            cols.append(self._mean_pending())
            steps.append(self._pending_step)
        stats = tuple(
            LayerStat(
                name=self.layers[i],
                clipped_share=self.clipped[i] / self.seen[i] if self.seen[i] else math.nan,
                snapshots=self.seen[i],
                last_factor=self.last_factor[i],
                min_factor=self.min_factor[i],
                local_lr=self.local_lr[i],
                weight_norm=self.weight_norm[i],
                grad_norm=self.grad_norm[i],
            )
            for i in range(n)
        )
        self._cache = TrustView(
            layers=tuple(self.layers),
            steps=tuple(steps),
            log_factors=tuple(cols),
            stats=stats,
            lr=self.lr,
            snapshots=self.snapshots,
            version=self.version,
        )
        return self._cache


def _nanmean2(a: float, b: float) -> float:
    if a != a:
        return b
    if b != b:
        return a
    return (a + b) / 2

"""A bounded (x, y) series that keeps a whole run's history at decreasing resolution."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from larsbench.format import finite

CURVE_POINTS = 600  # per curve; older points are merged pairwise when it fills


@dataclass(frozen=True)
class Curve:
    """An immutable (x, y) series for a plot; `version` changes whenever the points do."""

    xs: tuple[float, ...] = ()
    ys: tuple[float, ...] = ()
    version: int = 0


class Series:
    """A bounded series that keeps the whole history by halving its resolution when full.

    Points are averaged `stride` at a time; when `capacity` points are stored, neighbours are
    merged pairwise and the stride doubles. Memory is O(capacity) for any run length.
    """

    def __init__(self, capacity: int = CURVE_POINTS) -> None:
        self.capacity = max(4, capacity - capacity % 2)
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.stride = 1
        self._px = 0.0
        self._psum = 0.0
        self._pn = 0
        self.version = 0
        self._cache: Curve = Curve()

    def __len__(self) -> int:
        return len(self.xs) + (1 if self._pn else 0)

    def add(self, x: Any, y: Any) -> None:
        if not (finite(x) and finite(y)):
            return
        self._px = float(x)
        self._psum += float(y)
        self._pn += 1
        self.version += 1
        if self._pn >= self.stride:
            self.xs.append(self._px)
            self.ys.append(self._psum / self._pn)
            self._psum, self._pn = 0.0, 0
            if len(self.xs) >= self.capacity:
                self._halve()

    def _halve(self) -> None:
        self.xs = self.xs[1::2]
        self.ys = [(a + b) / 2 for a, b in zip(self.ys[0::2], self.ys[1::2], strict=True)]
        self.stride *= 2

    @property
    def last(self) -> float:
        if self._pn:
            return self._psum / self._pn
        return self.ys[-1] if self.ys else math.nan

    def curve(self) -> Curve:
        if self._cache.version != self.version:
            xs, ys = list(self.xs), list(self.ys)
            if self._pn:  # the bucket being filled, so the plot reaches the newest point
                xs.append(self._px)
                ys.append(self._psum / self._pn)
            self._cache = Curve(tuple(xs), tuple(ys), self.version)
        return self._cache


EMPTY_CURVE = Curve()

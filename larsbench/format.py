"""Number, size and duration formatting for the screens: anything missing renders as n/a."""

from __future__ import annotations

import math
from typing import Any

NA = "n/a"


def is_num(value: Any) -> bool:
    """True for a finite int or float (bools excluded)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def num(value: Any, fmt: str = ".3g", suffix: str = "") -> str:
    """A number with a format spec, or n/a."""
    if not is_num(value):
        return NA
    return f"{value:{fmt}}{suffix}"


def si(value: Any, digits: int = 3) -> str:
    """1234 -> 1.23k, 9_800_000 -> 9.80M; small numbers as they are."""
    if not is_num(value):
        return NA
    v = float(value)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.{digits}g}{unit}"
    return f"{v:.{digits}g}"


def pct(value: Any, digits: int = 0, fraction: bool = False) -> str:
    """A percentage; `fraction=True` multiplies a 0..1 share by 100 first."""
    if not is_num(value):
        return NA
    v = float(value) * (100.0 if fraction else 1.0)
    return f"{v:.{digits}f}%"


def gib(value: Any, unit: str = "") -> str:
    """Bytes as GiB with one decimal ('61.2', with unit 'G': '61.2G'); n/a bare."""
    if not is_num(value):
        return NA
    return f"{float(value) / 2**30:.1f}{unit}"


def duration(seconds: Any) -> str:
    """3h05m, 12m30s, 45s; n/a when unknown."""
    if not is_num(seconds) or seconds < 0:
        return NA
    s = round(float(seconds))
    if s >= 86400:
        return f"{s // 86400}d{(s % 86400) // 3600:02d}h"
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def count(value: Any) -> str:
    """An integer with thousands separators."""
    if not is_num(value):
        return NA
    return f"{int(value):,}"


SPARK_CHARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Any, lo: float | None = None, hi: float | None = None) -> str:
    """A one-line sparkline of the finite values; gaps (None/NaN) as spaces."""
    vals = list(values)
    finite = [float(v) for v in vals if is_num(v)]
    if not finite:
        return " " * len(vals)
    low = min(finite) if lo is None else lo
    high = max(finite) if hi is None else hi
    span = high - low
    out = []
    for v in vals:
        if not is_num(v):
            out.append(" ")
            continue
        frac = 0.0 if span <= 0 else (float(v) - low) / span
        idx = min(len(SPARK_CHARS) - 1, max(0, int(frac * (len(SPARK_CHARS) - 1) + 0.5)))
        out.append(SPARK_CHARS[idx])
    return "".join(out)


def bar(fraction: Any, width: int) -> str:
    """A horizontal bar of `width` cells filled by a 0..1 fraction (blank when unknown)."""
    if width <= 0:
        return ""
    if not is_num(fraction):
        return "·" * width
    f = min(1.0, max(0.0, float(fraction)))
    full = int(f * width + 0.5)
    return "█" * full + "·" * (width - full)

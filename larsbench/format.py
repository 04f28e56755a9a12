"""Numbers, rates, percentages, sizes and durations as text, and the one finite-number check."""

from __future__ import annotations

import math
from typing import Any

# What a formatter writes for a value that is not a finite number: the app writes NA, the
# summary's cells and sentences stay blank, the console writes a dash.
NA = "n/a"
DASH = "-"


def finite(value: Any) -> bool:
    """True for a finite int or float (not None, NaN, infinity, a bool or anything else)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def nan_to_none(value: Any) -> Any:
    """The value, with a float NaN or infinity as None (strict JSON, a blank CSV cell)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


# --- numbers ----------------------------------------------------------------------------


def num(value: Any, fmt: str = ".3g", suffix: str = "") -> str:
    """A number with a format spec, or n/a."""
    if not finite(value):
        return NA
    return f"{value:{fmt}}{suffix}"


def plain(value: Any) -> str:
    """A number in its shortest form (0.1, 1024, 1e-05); blank when missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def two_figures(value: float) -> str:
    """2,470 -> "2,500"; 9,630 -> "9,600": two significant figures from 100 on, as a sentence
    speaks (the feed verdict's img/s)."""
    if value >= 100:
        digits = len(str(int(value))) - 2
        value = round(value, -digits)
    return f"{value:,.0f}"


def si(value: Any, digits: int = 3) -> str:
    """1234 -> 1.23k, 9_800_000 -> 9.8M; small numbers as they are; n/a when missing."""
    if not finite(value):
        return NA
    v = float(value)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.{digits}g}{unit}"
    return f"{v:.{digits}g}"


def count(value: Any) -> str:
    """An integer with thousands separators."""
    if not finite(value):
        return NA
    return f"{int(value):,}"


def gib(value: Any, unit: str = "", missing: str = NA) -> str:
    """Bytes as GiB with one decimal ('61.2', with unit 'G': '61.2G'); `missing` bare."""
    if not finite(value):
        return missing
    return f"{float(value) / 2**30:.1f}{unit}"


# --- rates ------------------------------------------------------------------------------


def rate(value: Any) -> str:
    """9,520 (img/s); one decimal below 100; blank when missing (the summary)."""
    if not finite(value):
        return ""
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def short_rate(value: Any) -> str:
    """9,520 (img/s); 12.3k from 10,000 on; a dash when missing (the console)."""
    if not finite(value):
        return DASH
    return f"{value / 1000:.1f}k" if value >= 10_000 else f"{value:,.0f}"


# --- percentages ------------------------------------------------------------------------


def percent(value: Any, digits: int = 2, fraction: bool = False, missing: str = "") -> str:
    """76.42%; `fraction=True` multiplies a 0..1 share by 100 first; `missing` when missing."""
    if not finite(value):
        return missing
    return f"{float(value) * (100.0 if fraction else 1.0):.{digits}f}%"


def pct(value: Any, digits: int = 0, fraction: bool = False) -> str:
    """The app's percentage: whole percent unless told, n/a when missing."""
    return percent(value, digits, fraction, missing=NA)


# --- durations --------------------------------------------------------------------------


def duration(seconds: Any) -> str:
    """3h47m, 2m05s, 42s, 4.2s; blank when missing (the summary's cells and sentences)."""
    if not finite(seconds) or seconds < 0:
        return ""
    if seconds < 10:
        return f"{seconds:.1f}s"
    minutes = round(seconds / 60)
    if minutes >= 60:
        return f"{minutes // 60}h{minutes % 60:02d}m"
    whole = round(seconds)
    if whole >= 60:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole}s"


def clock(seconds: Any) -> str:
    """0m42s, 12m30s, 3h05m: always minutes and seconds below an hour; a dash when missing
    (the console's run lines)."""
    if not finite(seconds):
        return DASH
    h, rem = divmod(round(seconds), 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def eta(seconds: Any) -> str:
    """45s, 12m30s, 3h05m, 2d04h in whole seconds; n/a when unknown (the app's ETAs and ages)."""
    if not finite(seconds) or seconds < 0:
        return NA
    s = round(float(seconds))
    if s >= 86400:
        return f"{s // 86400}d{(s % 86400) // 3600:02d}h"
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


# --- the app's small charts -------------------------------------------------------------

SPARK_CHARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Any, lo: float | None = None, hi: float | None = None) -> str:
    """A one-line sparkline of the finite values; gaps (None/NaN) as spaces."""
    vals = list(values)
    known = [float(v) for v in vals if finite(v)]
    if not known:
        return " " * len(vals)
    low = min(known) if lo is None else lo
    high = max(known) if hi is None else hi
    span = high - low
    out = []
    for v in vals:
        if not finite(v):
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
    if not finite(fraction):
        return "·" * width
    f = min(1.0, max(0.0, float(fraction)))
    full = int(f * width + 0.5)
    return "█" * full + "·" * (width - full)

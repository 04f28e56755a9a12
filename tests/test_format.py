"""larsbench.format: the one finite check, and each front end's spelling of the same numbers."""

from __future__ import annotations

import math

import pytest

from larsbench.format import (
    DASH,
    NA,
    bar,
    clock,
    count,
    duration,
    eta,
    finite,
    gib,
    nan_to_none,
    num,
    pct,
    percent,
    plain,
    rate,
    short_rate,
    si,
    sparkline,
)


@pytest.mark.parametrize("value", [0, 1, -2.5, 1e300, 7])
def test_finite_numbers(value: float) -> None:
    assert finite(value)


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf, True, False, "1", [1]])
def test_not_finite_numbers(value: object) -> None:
    assert not finite(value)


def test_nan_to_none_keeps_everything_else() -> None:
    assert nan_to_none(math.nan) is None and nan_to_none(math.inf) is None
    assert nan_to_none(1.5) == 1.5 and nan_to_none("x") == "x" and nan_to_none(None) is None
    assert nan_to_none(True) is True


def test_the_three_durations_of_42_seconds() -> None:
    assert duration(42) == "42s"  # summary.md, the advice
    assert clock(42) == "0m42s"  # the console's run lines
    assert eta(42) == "42s"  # the app's ETAs and ages


def test_durations_long_short_and_missing() -> None:
    assert duration(4.25) == "4.2s" and duration(3 * 3600 + 47 * 60 + 40) == "3h48m"
    assert duration(None) == "" and duration(-1) == ""
    assert clock(3 * 3600 + 5 * 60 + 20) == "3h05m" and clock(750) == "12m30s"
    assert clock(None) == DASH and clock(math.nan) == DASH
    assert eta(4.4) == "4s" and eta(750) == "12m30s" and eta(3 * 3600 + 5 * 60 + 59) == "3h05m"
    assert eta(2 * 86400 + 4 * 3600) == "2d04h" and eta(None) == NA and eta(-3) == NA


def test_rates_and_percentages_per_front_end() -> None:
    assert rate(9520.4) == "9,520" and rate(12.34) == "12.3" and rate(None) == ""
    assert short_rate(9520.4) == "9,520" and short_rate(12_345) == "12.3k"
    assert short_rate(None) == DASH
    assert percent(76.422) == "76.42%" and percent(None) == ""
    assert percent(None, missing=DASH) == DASH and percent(0.1234, 1, fraction=True) == "12.3%"
    assert pct(42.4) == "42%" and pct(0.5, 1, fraction=True) == "50.0%" and pct(None) == NA


def test_numbers_sizes_and_charts() -> None:
    assert num(0.012345) == "0.0123" and num(None) == NA and num(3, ".1f", " W") == "3.0 W"
    assert plain(0.1) == "0.1" and plain(1024) == "1024" and plain(math.nan) == ""
    assert si(1234) == "1.23k" and si(9_800_000) == "9.8M" and si(12) == "12"
    assert count(1234567) == "1,234,567" and count(None) == NA
    assert gib(61.2 * 2**30) == "61.2" and gib(2**30, "G") == "1.0G"
    assert gib(None) == NA and gib(None, "G", missing="") == ""
    assert sparkline([0, None, 1]) == "▁ █" and sparkline([None]) == " "
    assert bar(0.5, 4) == "██··" and bar(None, 3) == "···" and bar(1, 0) == ""

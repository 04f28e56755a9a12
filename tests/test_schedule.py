"""The lr schedule at its boundaries: warmup, step and multistep decays, cosine and poly ends."""

from __future__ import annotations

import math

import pytest

from larsbench.train.schedule import Schedule, lr_at

SPE = 10  # steps per epoch


def sched(kind: str, **kw: object) -> Schedule:
    base = dict(kind=kind, peak_lr=0.4, steps_per_epoch=SPE, total_steps=90 * SPE)
    return Schedule(**{**base, **kw})  # type: ignore[arg-type]


def test_warmup_is_linear_per_step_and_reaches_the_peak() -> None:
    s = sched("step", warmup_steps=50)
    assert lr_at(s, 0) == pytest.approx(0.4 / 50)
    assert lr_at(s, 24) == pytest.approx(0.4 * 25 / 50)
    assert lr_at(s, 49) == pytest.approx(0.4)
    assert lr_at(s, 50) == pytest.approx(0.4)


def test_warmup_can_start_from_a_chosen_share_of_the_peak() -> None:
    s = sched("step", warmup_steps=50, warmup_start_factor=0.1)
    assert lr_at(s, 0) == pytest.approx(0.4 * (0.1 + 0.9 / 50))
    assert lr_at(s, 24) == pytest.approx(0.4 * (0.1 + 0.9 * 25 / 50))
    assert lr_at(s, 49) == pytest.approx(0.4)


def test_step_decays_at_whole_epochs_from_the_start() -> None:
    s = sched("step", warmup_steps=5 * SPE, step_size=30, gamma=0.1)
    assert lr_at(s, 30 * SPE - 1) == pytest.approx(0.4)
    assert lr_at(s, 30 * SPE) == pytest.approx(0.04)
    assert lr_at(s, 60 * SPE - 1) == pytest.approx(0.04)
    assert lr_at(s, 60 * SPE) == pytest.approx(0.004)
    assert lr_at(s, 90 * SPE - 1) == pytest.approx(0.004)


def test_multistep_decays_at_each_milestone_in_any_order() -> None:
    s = sched("multistep", milestones=(80, 30, 60), gamma=0.1)
    assert lr_at(s, 30 * SPE - 1) == pytest.approx(0.4)
    assert lr_at(s, 30 * SPE) == pytest.approx(0.04)
    assert lr_at(s, 80 * SPE) == pytest.approx(0.0004)


def test_cosine_starts_at_peak_after_warmup_and_ends_at_min_lr() -> None:
    s = sched("cosine", warmup_steps=100, min_lr=0.001)
    assert lr_at(s, 100) == pytest.approx(0.4)
    mid = 100 + (900 - 100) // 2
    assert lr_at(s, mid) == pytest.approx(0.001 + (0.4 - 0.001) * 0.5)
    assert lr_at(s, 900) == pytest.approx(0.001)
    assert lr_at(s, 10_000) == pytest.approx(0.001)  # clamped past the end


def test_poly_decays_to_min_lr_with_its_power() -> None:
    s = sched("poly", poly_power=2.0)
    assert lr_at(s, 0) == pytest.approx(0.4)
    assert lr_at(s, 450) == pytest.approx(0.4 * 0.25)
    assert lr_at(s, 900) == pytest.approx(0.0)


def test_constant_and_unknown() -> None:
    assert lr_at(sched("constant"), 899) == 0.4
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_at(sched("linear"), 0)


def test_schedule_never_negative_or_nan() -> None:
    for kind in ("step", "multistep", "cosine", "poly", "constant"):
        s = sched(kind, warmup_steps=7, milestones=(30,))
        values = [lr_at(s, i) for i in range(0, 900, 7)]
        assert all(v >= 0 and math.isfinite(v) for v in values)

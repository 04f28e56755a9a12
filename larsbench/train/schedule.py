"""The learning-rate schedule: linear warmup per step, then step, multistep, cosine or poly."""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """Everything the lr at a step depends on (built from TrainConfig and the run's plan)."""

    kind: str
    peak_lr: float
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int = 0
    warmup_start_factor: float = 0.0
    step_size: int = 30
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    poly_power: float = 2.0
    min_lr: float = 0.0


def lr_at(s: Schedule, step: int) -> float:
    """The lr used by optimizer step `step` (0-based).

    Warmup ramps linearly per step to the peak, from peak x (f + (1 - f) / warmup_steps) at
    step 0, f the start factor (0: from peak / warmup_steps); the last warmup step runs at
    the peak. Step and multistep
    decay at whole epochs counted from the start of training (as torchvision's StepLR stepped
    once per epoch); cosine and poly decay per step over the steps after warmup.
    """
    if step < s.warmup_steps:
        f = s.warmup_start_factor
        return s.peak_lr * (f + (1 - f) * (step + 1) / s.warmup_steps)
    epoch = step // max(s.steps_per_epoch, 1)
    if s.kind == "constant":
        return s.peak_lr
    if s.kind == "step":
        return s.peak_lr * s.gamma ** (epoch // s.step_size)
    if s.kind == "multistep":
        return s.peak_lr * s.gamma ** bisect_right(sorted(s.milestones), epoch)
    span = max(s.total_steps - s.warmup_steps, 1)
    progress = min((step - s.warmup_steps) / span, 1.0)
    if s.kind == "cosine":
        return s.min_lr + (s.peak_lr - s.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
    if s.kind == "poly":
        return s.min_lr + (s.peak_lr - s.min_lr) * (1 - progress) ** s.poly_power
    raise ValueError(f"unknown schedule {s.kind!r}")

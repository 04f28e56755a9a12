"""Scaling efficiency: the same per-GPU batch at 1, 2, ... N ranks, against the fewest ranks."""

from __future__ import annotations

import math
from dataclasses import dataclass

from larsbench.format import finite
from larsbench.results import RunResult

LOW_EFFICIENCY = 0.80  # below this a scaling step is flagged


@dataclass(frozen=True)
class ScalingRow:
    run_id: str
    group: str
    world_size: int
    per_rank_batch: int
    images_per_sec: float
    images_per_sec_per_gpu: float
    efficiency: float  # per-GPU img/s relative to the group's fewest-ranks run
    low: bool


def _group(r: RunResult) -> str:
    opt = r.optimizer + (f" tc {r.trust_coefficient:g}" if r.trust_coefficient else "")
    return f"{r.model} {opt} {r.per_rank_batch}/rank"


def scaling_rows(results: list[RunResult]) -> list[ScalingRow]:
    """Rows for each group of runs (model, optimizer, per-rank batch) run at several world
    sizes; efficiency = img/s per GPU / the same at the group's smallest world size."""
    groups: dict[str, list[RunResult]] = {}
    for r in results:
        if r.status == "completed" and finite(r.images_per_sec) and r.world_size:
            groups.setdefault(_group(r), []).append(r)
    rows: list[ScalingRow] = []
    for name, runs in groups.items():
        if len({r.world_size for r in runs}) < 2:
            continue
        runs.sort(key=lambda r: r.world_size)
        base = runs[0].images_per_sec / runs[0].world_size
        for r in runs:
            per_gpu = r.images_per_sec / r.world_size
            eff = per_gpu / base if base > 0 else math.nan
            rows.append(
                ScalingRow(
                    run_id=r.run_id,
                    group=name,
                    world_size=r.world_size,
                    per_rank_batch=r.per_rank_batch,
                    images_per_sec=r.images_per_sec,
                    images_per_sec_per_gpu=per_gpu,
                    efficiency=eff,
                    low=eff < LOW_EFFICIENCY,
                )
            )
    return rows


def scaling_markdown(rows: list[ScalingRow]) -> str:
    """The scaling section of summary.md ('' when no group ran at several world sizes)."""
    if not rows:
        return ""
    lines = [
        "## Scaling efficiency",
        "",
        "Same per-GPU batch at each world size; efficiency = img/s per GPU relative to the "
        f"fewest ranks. Below {LOW_EFFICIENCY:.0%} is flagged. (NVIDIA's published ResNet50 "
        "scaling from 1 to 8 GPUs: 96-97% in TF32/FP32, 84-87% with AMP.)",
        "",
        "| run | group | ranks | img/s | img/s/GPU | efficiency |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        flag = " (low)" if r.low else ""
        lines.append(
            f"| {r.run_id} | {r.group} | {r.world_size} | {r.images_per_sec:,.0f} | "
            f"{r.images_per_sec_per_gpu:,.0f} | {r.efficiency:.1%}{flag} |"
        )
    return "\n".join(lines) + "\n"

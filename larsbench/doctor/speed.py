"""The training-speed check: ResNet50 in throughput mode on 1 device and on all, SGD and LARC."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from larsbench.doctor.plans import doctor_plan, run_plan
from larsbench.doctor.verdict import FAIL, OK, Verdict, by_ratio
from larsbench.format import finite
from larsbench.gpu_reference import reference_speed
from larsbench.plan.machine import Machine
from larsbench.plan.run import RunConfig
from larsbench.plan.sizes import IMAGENET_TRAIN_IMAGES
from larsbench.results import RunResult
from larsbench.summary.scaling import LOW_EFFICIENCY, scaling_rows
from larsbench.sweep.prepare import SweepPlan

# img/s against the published figure: below 80% warn, below 50% fail.
SPEED_WARN, SPEED_FAIL = 0.8, 0.5
# LARC's img/s against SGD's on the same node: LARC adds a few norms per layer.
LARC_WARN, LARC_FAIL = 0.85, 0.5
SCALING_FAIL = 0.5


@dataclass(frozen=True)
class SpeedSettings:
    """What the doctor times: the published table's workload on a GPU, a small one on CPU."""

    image_size: int
    batch_per_rank: int
    warmup_steps: int
    timed_steps: int


def speed_settings(device: str, quick: bool) -> SpeedSettings:
    if device == "cuda":  # DeepLearningExamples' ResNet50 runs: 224 px, 256 per GPU
        return SpeedSettings(224, 256, 10, 20 if quick else 50)
    return SpeedSettings(32, 4, 1, 2) if quick else SpeedSettings(64, 8, 2, 5)


def speed_plan(base: SweepPlan, run: RunConfig, machine: Machine, quick: bool) -> Any:
    """ResNet50 throughput runs at 1 and all local ranks x {SGD, LARC}, the profile's amp."""
    s = speed_settings(run.device, quick)
    tc = run.optimizer.trust_coefficient
    overrides: list[tuple[str, Any]] = [
        ("name", f"{run.profile_name}-doctor-speed"),
        ("launch.device", run.device),
        ("launch.backend", run.backend),
        ("model.arch", "resnet50"),
        ("model.small_input", False),
        ("model.width", 1.0),
        ("data.source", "synthetic"),
        ("data.image_size", s.image_size),
        ("data.num_classes", 1000),
        # On a GPU the profile's loader workers collate the synthetic batches in parallel, as
        # in its own throughput runs; on the CPU they would only take the ranks' cores.
        ("data.workers", run.data.workers if run.device == "cuda" else 0),
        ("train.mode", "throughput"),
        ("train.batch_per_rank", s.batch_per_rank),
        ("train.throughput_warmup_steps", s.warmup_steps),
        ("train.throughput_steps", s.timed_steps),
        ("train.throughput_epoch_images", IMAGENET_TRAIN_IMAGES),
        ("train.channels_last", run.device == "cuda"),
        ("optimizer.stats_every", 0),
    ]
    ranks = sorted({1, run.nproc_per_node})
    sweep = {
        "launch.nproc_per_node": ranks,
        "optimizer": [{"name": "sgd"}, {"name": "larc", "trust_coefficient": tc}],
    }
    return doctor_plan(base, overrides, sweep, machine)


def measure_speed(
    base: SweepPlan, run: RunConfig, machine: Machine, quick: bool, work: Path
) -> list[RunResult]:
    return run_plan(speed_plan(base, run, machine, quick), work / "speed")


def _unit(device: str, n: int) -> str:
    what = "GPU" if device == "cuda" else "rank"
    return f"{n} {what}{'s' * (n != 1)}"


def judge_speed(
    results: list[RunResult], device: str, gpu_name: str | None, amp: str
) -> list[Verdict]:
    """img/s against the published table, scaling efficiency, and LARC against SGD."""
    verdicts: list[Verdict] = []
    done = {(r.optimizer, r.world_size): r for r in results if r.status == "completed"}
    for r in results:
        if r.status != "completed":
            verdicts.append(
                Verdict(
                    f"speed {r.optimizer} {_unit(device, r.world_size)}",
                    f"{r.status}: {r.reason}",
                    "completes",
                    FAIL,
                    f"the throughput run failed: read {r.run_id}/logs/torchrun.log in the work "
                    "folder named below",
                )
            )
    ref = reference_speed(gpu_name, amp) if device == "cuda" and gpu_name else None
    for (opt, world), r in sorted(done.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        check = f"speed {opt} {_unit(device, world)}"
        measured = f"{r.images_per_sec:,.0f} img/s ({r.images_per_sec_per_gpu:,.0f} per device)"
        figures = {"images_per_sec": r.images_per_sec, "world": world}
        if opt != "sgd":
            continue
        if ref is None:
            why = "CPU" if device == "cpu" else f"{gpu_name or 'this GPU'} not in the table"
            verdicts.append(
                Verdict(check, measured, f"no published figure ({why})", OK, figures=figures)
            )
            continue
        per_gpu_ref = ref.images_per_sec_1 if world == 1 else ref.per_gpu_at_8
        ratio = r.images_per_sec_per_gpu / per_gpu_ref
        status = by_ratio(ratio, SPEED_WARN, SPEED_FAIL)
        approx = " (approx.: bf16 vs fp16 column)" if ref.approximate else ""
        expected = f"{per_gpu_ref:,.0f} img/s per GPU, {ref.gpu} {ref.precision}{approx}"
        advice = ""
        if status != OK:
            advice = (
                f"{ratio:.0%} of the published speed: check the GPU clocks and throttle reasons "
                "(nvidia-smi -q -d PERFORMANCE), that nothing else runs on the GPU, and "
                "train.amp/channels_last as in the table (fp16, NHWC)"
            )
        verdicts.append(
            Verdict(check, measured, expected, status, advice, figures | {"ratio": ratio})
        )
    verdicts += _judge_scaling(results, device)
    verdicts += _judge_larc(done, device)
    return verdicts


def _judge_scaling(results: list[RunResult], device: str) -> list[Verdict]:
    out = []
    rows = scaling_rows(results)
    base = {row.group: min(r.world_size for r in rows if r.group == row.group) for row in rows}
    for row in rows:
        if row.world_size == base[row.group]:
            continue  # the group's reference point, 100% by definition
        opt = row.group.split(" ")[1]
        status = by_ratio(row.efficiency, LOW_EFFICIENCY, SCALING_FAIL)
        advice = ""
        if status != OK:
            advice = (
                f"per-device speed drops to {row.efficiency:.0%} at {row.world_size} ranks: "
                "the gradient all-reduce is not hidden; see the all-reduce bandwidth row, and "
                "on CPU give each rank its own cores (launch.threads_per_rank)"
            )
        out.append(
            Verdict(
                f"scaling {opt} 1 -> {_unit(device, row.world_size)}",
                f"{row.efficiency:.0%} ({row.images_per_sec_per_gpu:,.0f} img/s per device)",
                f">= {LOW_EFFICIENCY:.0%} (NVIDIA's ResNet50: 84-97% at 8 GPUs)",
                status,
                advice,
                {"efficiency": row.efficiency, "world": row.world_size},
            )
        )
    return out


def _judge_larc(done: dict[tuple[str, int], RunResult], device: str) -> list[Verdict]:
    out = []
    for (opt, world), larc in sorted(done.items(), key=lambda kv: kv[0][1]):
        sgd = done.get(("sgd", world))
        if opt != "larc" or sgd is None or not sgd.images_per_sec > 0:
            continue
        ratio = larc.images_per_sec / sgd.images_per_sec
        share = larc.optimizer_share
        sgd_share = sgd.optimizer_share
        shares = (
            f"; optimizer {share:.0%} of LARC's step, {sgd_share:.0%} of SGD's"
            if finite(share) and finite(sgd_share)
            else ""
        )
        status = by_ratio(ratio, LARC_WARN, LARC_FAIL)
        advice = ""
        if status != OK:
            advice = (
                f"LARC runs at {ratio:.0%} of SGD's speed: try optimizer.fused = true (one "
                "compiled pass) and see benchmarks/optimizer_step.py --parts for where it goes"
            )
        out.append(
            Verdict(
                f"LARC vs SGD {_unit(device, world)}",
                f"{larc.images_per_sec:,.0f} img/s = {ratio:.0%} of SGD's{shares}",
                f">= {LARC_WARN:.0%} of SGD's img/s",
                status,
                advice,
                {"ratio": ratio, "optimizer_share": share, "sgd_optimizer_share": sgd_share},
            )
        )
    return out

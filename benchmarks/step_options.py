"""Times larsbench's training step under its options: amp off/bf16, accumulate 1/2 steps.

Run from the repository root:

    python benchmarks/step_options.py                  # smoke model, CPU, 2 threads
    python benchmarks/step_options.py --image-size 32 --batch 128 --reps 15

One rank in this process (a one-member gloo group), the smoke profile's model (a quarter-width
ResNet18 for small inputs) and LARC, random images of the given size: the step is exactly
`larsbench.train.step.forward_backward` + `optimizer_step` + the scheduler, as the worker runs
it. The variants take turns within each repetition (rotating who goes first); the table gives
median step times and, against the baseline (amp off, no accumulation) measured in the same
run, the median over repetitions of each repetition's ratio. Results go in docs/benchmarks.md.
On the CPU bf16 autocast shows its cost or gain on these kernels only; what bf16 buys on a
GPU (tensor cores, no GradScaler sync) is not measured here.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import tomllib
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist

from larsbench.plan.expand import expand
from larsbench.plan.machine import Machine
from larsbench.plan.steps import plan_run
from larsbench.profile.loading import parse_profile
from larsbench.profile.overrides import apply_overrides, parse_override
from larsbench.train.setup import Dist, build_parts, to_device
from larsbench.train.step import forward_backward, optimizer_step

SMOKE = Path(__file__).resolve().parent.parent / "profiles" / "smoke.toml"
VARIANTS = (("off", 1), ("bf16", 1), ("off", 2), ("bf16", 2))


def smoke_run(batch: int, image_size: int, threads: int):  # type: ignore[no-untyped-def]
    raw = tomllib.loads(SMOKE.read_text(encoding="utf-8"))
    settings = [
        "launch.nproc_per_node=1",
        f"launch.threads_per_rank={threads}",
        f"sweep.train.batch_size=[{batch}]",
        'sweep.optimizer=[{name="larc"}]',
        f"data.image_size={image_size}",
    ]
    raw = apply_overrides(raw, [parse_override(o) for o in settings])
    return expand(parse_profile(raw, str(SMOKE)), Machine(gpus=0, cpus=threads), str(SMOKE))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant per rep")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = smoke_run(args.batch, args.image_size, args.threads)
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    d = Dist(0, 1, 0, 1, torch.device("cpu"))
    runs, parts = {}, {}
    for amp, k in VARIANTS:
        train = base.train.model_copy(update={"amp": amp, "accumulate_steps": k})
        runs[amp, k] = replace(base, train=train)
        parts[amp, k] = build_parts(runs[amp, k], d, 10, plan_run(base, 1437, 360))
    size = args.image_size
    images, labels = torch.randn(args.batch, 3, size, size), torch.randint(0, 10, (args.batch,))

    def steps(variant: tuple[str, int], n: int) -> float:
        run, p = runs[variant], parts[variant]
        started = time.perf_counter()
        for _ in range(n):
            x, y = to_device(images, labels, d, run)
            forward_backward(p, x, y, run, d)
            optimizer_step(p)
            p.scheduler.step()
        return (time.perf_counter() - started) / n

    for variant in VARIANTS:
        steps(variant, 2)  # warm-up
    times: dict[tuple[str, int], list[float]] = {v: [] for v in VARIANTS}
    for rep in range(args.reps):
        order = VARIANTS[rep % len(VARIANTS) :] + VARIANTS[: rep % len(VARIANTS)]
        for variant in order:
            times[variant].append(steps(variant, args.steps))
    dist.destroy_process_group()
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{args.threads} threads, batch {args.batch}, {size}x{size} images, LARC, "
        f"{args.reps} reps x {args.steps} steps"
    )
    print("| amp | accumulate_steps | step ms (median) | x baseline (median of per-rep ratios) |")
    print("|---|---|---|---|")
    baseline = times[VARIANTS[0]]
    for variant, ts in times.items():
        ratio = statistics.median(t / b for t, b in zip(ts, baseline, strict=True))
        print(f"| {variant[0]} | {variant[1]} | {1000 * statistics.median(ts):.1f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()

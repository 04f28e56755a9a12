"""Telemetry overhead: the sampler's CPU time per sample, and training img/s with it on vs off.

    .venv/bin/python benchmarks/telemetry_overhead.py [--rounds 8] [--steps 20] [--threads 1]

Part 1 times the sampler's own CPU per sample (psutil path; NVML where the machine has it)
for 2 ranks with 4 data-loader workers each. Part 2 trains torchvision's resnet18 on random
64x64 images on the CPU in this process, in blocks of equal work, interleaving: telemetry off,
on at 1 s, on at 0.25 s (the floor), the order rotated each round. The sampler samples this
very process from a thread of it, sharing its GIL: a worst case, since `larsbench run` samples
from the launcher, a separate process. The last line is the on/off throughput ratio (median of
per-round ratios); the target is >= 0.99.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from larsbench.events import EventWriter
from larsbench.telemetry.procs import find_rank_pids
from larsbench.telemetry.sampler import MIN_INTERVAL, Sampler

# A stand-in for torchrun: 2 ranks (LOCAL_RANK set), each with 4 idle data-loader workers.
TREE = """
import os, subprocess, sys, time
role = sys.argv[1]
if role == "torchrun":
    for r in range(2):
        env = dict(os.environ, LOCAL_RANK=str(r))
        subprocess.Popen([sys.executable, __file__, "rank"], env=env)
elif role == "rank":
    for _ in range(4):
        subprocess.Popen([sys.executable, __file__, "worker"])
time.sleep(600)
"""


@contextmanager
def fake_torchrun(tmp: Path) -> Iterator[dict[int, int]]:
    """Start the stand-in tree; yield local rank -> pid once every worker is up."""
    import psutil

    script = tmp / "tree.py"
    script.write_text(TREE)
    env = {k: v for k, v in os.environ.items() if k != "LOCAL_RANK"}
    root = subprocess.Popen([sys.executable, str(script), "torchrun"], env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pids = find_rank_pids(root.pid)
            if len(pids) == 2 and all(
                len(psutil.Process(p).children()) == 4 for p in pids.values()
            ):
                break
            time.sleep(0.1)
        yield pids
    finally:
        for proc in psutil.Process(root.pid).children(recursive=True):
            proc.kill()
        root.kill()
        root.wait()


def sampler_cost(tmp: Path, samples: int) -> list[tuple[str, float, float, float]]:
    """(case, mean, p50, p99) of the sampler's CPU microseconds per sample, event written."""
    rows = []
    with fake_torchrun(tmp) as pids, EventWriter(tmp / "cost.jsonl") as writer:
        for device in ("cpu", "cuda"):
            sampler = Sampler(writer, proc_interval=1e9, device=device)
            if device == "cuda" and sampler.source != "nvml":
                continue
            sampler.set_ranks(pids)
            sampler.sample_once()  # baselines, worker discovery
            rows.append((f"{sampler.source}, 2 ranks x 4 workers", *_timed(sampler, samples)))
        # Every proc_interval a sample also walks /proc for the ranks' workers (and, with
        # NVML, lists GPU processes): time that slow sample on its own.
        slow = Sampler(writer, interval=MIN_INTERVAL, proc_interval=MIN_INTERVAL, device="cuda")
        slow.set_ranks(pids)
        slow.sample_once()
        costs = []
        for _ in range(min(samples // 50, 40)):
            time.sleep(MIN_INTERVAL)
            cpu0 = time.thread_time()
            writer.emit("system", **slow.sample_once().to_event())
            costs.append(1e6 * (time.thread_time() - cpu0))
        rows.append((f"{slow.source}, with /proc walk (every 5 s)", *_stats(costs)))
    return rows


def _timed(sampler: Sampler, samples: int) -> tuple[float, float, float]:
    costs = []
    for _ in range(samples):
        cpu0 = time.thread_time()
        sampler.writer.emit("system", **sampler.sample_once().to_event())
        costs.append(1e6 * (time.thread_time() - cpu0))
    return _stats(costs)


def _stats(costs: list[float]) -> tuple[float, float, float]:
    ordered = sorted(costs)
    return statistics.fmean(costs), ordered[len(costs) // 2], ordered[int(0.99 * len(costs))]


def training_overhead(
    tmp: Path, rounds: int, steps: int, batch: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per configuration, per block: img/s, and the process's CPU ms per image (all threads)."""
    import torch
    import torchvision

    model = torchvision.models.resnet18(num_classes=10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images, labels = torch.randn(batch, 3, 64, 64), torch.randint(0, 10, (batch,))

    def block(name: str, n: int) -> None:
        start, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
        speeds[name].append(n * batch / (time.perf_counter() - start))
        cpu_ms[name].append(1e3 * (time.process_time() - cpu0) / (n * batch))

    configs: dict[str, float | None] = {"off": None, "on 1 s": 1.0, "on 0.25 s": MIN_INTERVAL}
    speeds: dict[str, list[float]] = {name: [] for name in configs}
    cpu_ms: dict[str, list[float]] = {name: [] for name in configs}
    block("off", 3)  # warm-up
    speeds["off"].clear()
    cpu_ms["off"].clear()
    cost: dict[str, list[float]] = {name: [] for name in configs if configs[name]}
    names = list(configs)
    for r in range(rounds):
        for name in names[r % 3 :] + names[: r % 3]:
            interval = configs[name]
            if interval is None:
                block(name, steps)
                continue
            with EventWriter(tmp / f"train-{r}-{interval}.jsonl") as writer:
                sampler = Sampler(writer, interval=interval, device="cuda")
                sampler.set_ranks({0: os.getpid()})
                sampler.start()
                block(name, steps)
                sampler.stop()
            if sampler.cpu_seconds_per_sample is not None:
                cost[name].append(1e6 * sampler.cpu_seconds_per_sample)
        done = ", ".join(f"{n} {speeds[n][-1]:.1f}" for n in names)
        print(f"  round {r + 1}/{rounds}: {done} img/s", flush=True)
    for name, values in cost.items():
        per_sample = statistics.fmean(values)
        share = 100 * per_sample * 1e-6 / (configs[name] or 1.0)
        print(
            f"  live sampler, {name}: {per_sample:.0f} us CPU per sample = {share:.2f}% of one"
            " core (the most it can take from training)"
        )
    return speeds, cpu_ms


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000, help="samples timed in part 1")
    parser.add_argument("--rounds", type=int, default=8, help="interleaved rounds in part 2")
    parser.add_argument("--steps", type=int, default=20, help="training steps per block")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        print(f"sampler CPU time per sample ({args.samples} samples, event written):")
        print(f"  {'case':<42} {'mean us':>8} {'p50 us':>8} {'p99 us':>8}")
        for case, mean, p50, p99 in sampler_cost(tmp, args.samples):
            print(f"  {case:<42} {mean:>8.0f} {p50:>8.0f} {p99:>8.0f}")

        import torch

        torch.set_num_threads(args.threads)
        print(
            f"\ntraining resnet18, 64x64, batch {args.batch}, {args.threads} torch threads, "
            f"{args.rounds} rounds of {args.steps} steps per configuration:"
        )
        speeds, cpu_ms = training_overhead(tmp, args.rounds, args.steps, args.batch)

    def paired(values: list[float], base: list[float]) -> float:
        """Median over rounds of value / base: each round's blocks ran back to back."""
        return statistics.median(v / b for v, b in zip(values, base, strict=True))

    print(
        f"\n  {'telemetry':<10} {'img/s median':>12} {'min':>7} {'max':>7} {'vs off':>7}"
        f" {'CPU ms/img':>10} {'vs off':>7}"
    )
    for name, values in speeds.items():
        print(
            f"  {name:<10} {statistics.median(values):>12.1f} {min(values):>7.1f}"
            f" {max(values):>7.1f} {paired(values, speeds['off']):>7.3f}"
            f" {statistics.median(cpu_ms[name]):>10.2f} {paired(cpu_ms[name], cpu_ms['off']):>7.3f}"
        )
    ratios = {name: paired(v, speeds["off"]) for name, v in speeds.items() if name != "off"}
    verdict = "ok" if min(ratios.values()) >= 0.99 else "BELOW 0.99"
    shown = ", ".join(f"{name} {ratio:.3f}" for name, ratio in ratios.items())
    print(f"on/off ratio: {shown} (target >= 0.99: {verdict})")


if __name__ == "__main__":
    main()

"""Training-step overhead: larsbench's training loop against the plain DDP loop of the tutorials.

    .venv/bin/python benchmarks/train_overhead.py [--reps 3] [--epochs 3] [--batch 64]

Both sides train the same thing under torchrun with 2 gloo ranks on the CPU: the smoke profile's
quarter-width ResNet18 (small-input stem) on scikit-learn's digits, SGD only, one global batch,
the same seed, sampler, threads per rank and SGD hyper-parameters.

- larsbench: `python -m larsbench.cli run --profile profiles/smoke.toml --out TMP --set ...`,
  once with `--no-telemetry` and once with telemetry on (the default: the psutil sampler runs
  at 1 s in the launcher process, on the same 2 cores). Its img/s is `result.json`'s
  `images_per_sec`: the training images of all epochs over their training wall time (no
  evaluation), as the worker's `epoch` events time them.
- plain: `benchmarks/_plain_ddp_loop.py` under torchrun, given larsbench's resolved RunConfig:
  DistributedSampler, DataLoader, DDP, SGD, forward, loss, zero_grad, backward, step, with
  `loss.item()` every step as tutorials print it (`--no-item` leaves it out); no schedule, no
  events. Its img/s: the same sum of images over the sum of epoch wall times.

The three take turns in every repetition, the order rotated each time, so a shared machine's
drifts hit them alike. The table shows each repetition; the LAST line is the median over
repetitions of larsbench/plain img/s (target >= 0.98).

Other engineers' jobs on a small shared machine move wall-clock img/s by tens of percent
within seconds, so two figures less sensitive to them come before it: the ranks' CPU time per
training image (user+sys of the rank processes, sampled with psutil every 0.1 s and
interpolated to the first epoch's start and the last epoch's end; a preempted rank uses no CPU),
and the lower quartile of the step time over each `train.log_every` steps (larsbench: from one
`step` event's time stamp to the next in the same epoch, its report included; plain: timed in
the loop), pooled over the repetitions. Then what larsbench's loop does per step beyond the
plain loop (scheduler, bookkeeping, the report every `train.log_every` steps, ...) is timed piece
by piece in this process, in CPU microseconds, against the plain loop's CPU per step.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
PLAIN_LOOP = Path(__file__).resolve().parent / "_plain_ddp_loop.py"
TARGET = 0.98
SAMPLE_SECONDS = 0.1

# The variants of one repetition, in their first-rep order.
VARIANTS = ("larsbench", "plain", "larsbench+telemetry")


@dataclass
class Measured:
    images_per_sec: float  # training images / training wall seconds, all epochs
    cpu_ms_per_image: float  # the ranks' CPU over the training epochs
    step_seconds: list[float]  # mean step time of each log_every-step interval


class RankCpu(threading.Thread):
    """Samples the summed CPU seconds of the rank processes under `root` (those whose command
    line holds `marker`, torchrun's agent left out) every SAMPLE_SECONDS, as (time.time(),
    seconds) pairs, once all `ranks` are found."""

    def __init__(self, root: int, marker: str, ranks: int) -> None:
        super().__init__(daemon=True)
        self.root, self.marker, self.ranks = root, marker, ranks
        self.samples: list[tuple[float, float]] = []
        self.done = threading.Event()

    def run(self) -> None:
        procs: list[psutil.Process] = []
        while not self.done.wait(SAMPLE_SECONDS):
            try:
                if len(procs) < self.ranks:
                    procs = [
                        p
                        for p in psutil.Process(self.root).children(recursive=True)
                        if _is_rank(p.cmdline(), self.marker)
                    ]
                    if len(procs) < self.ranks:
                        procs = []
                        continue
                now = time.time()
                self.samples.append((now, sum(sum(p.cpu_times()[:2]) for p in procs)))
            except psutil.Error:
                if self.samples:  # the ranks are gone: the training is over
                    return

    def at(self, t: float) -> float:
        """CPU seconds at time t, interpolated between the samples around it."""
        times = [s[0] for s in self.samples]
        i = min(max(bisect.bisect_left(times, t), 1), len(times) - 1)
        (t0, c0), (t1, c1) = self.samples[i - 1], self.samples[i]
        return c0 + (c1 - c0) * (t - t0) / (t1 - t0)


def _is_rank(cmdline: list[str], marker: str) -> bool:
    """A rank's command line names the marker; torchrun's own (the agent) names it too."""
    return any(marker in part for part in cmdline) and "torch.distributed.run" not in cmdline


def overrides(args: argparse.Namespace) -> list[str]:
    """The `--set` items that make the smoke profile one short SGD run."""
    return [
        f"train.batch_size={args.batch}",
        "optimizer.name=sgd",
        f"train.epochs={args.epochs}",
        "train.checkpoint_every=0",  # after the epoch: untimed, but it costs the rep's wall time
        "train.eval_every=1000",  # untimed too; only the last epoch's runs, after training
        *args.set,
    ]


def resolved_config(args: argparse.Namespace) -> dict[str, object]:
    """The RunConfig larsbench will train, resolved as `larsbench run` resolves it."""
    from larsbench.plan.machine import Machine
    from larsbench.profile.overrides import parse_override
    from larsbench.sweep.prepare import prepare_sweep

    plan = prepare_sweep(args.profile, [parse_override(o) for o in overrides(args)], Machine.here())
    if len(plan.runs) != 1:
        raise SystemExit(f"expected one run, the overrides give {len(plan.runs)}")
    return plan.runs[0].to_dict()


def run_larsbench(args: argparse.Namespace, out: Path, telemetry: bool, ranks: int) -> Measured:
    cmd = [sys.executable, "-m", "larsbench.cli", "run", "--profile", str(args.profile)]
    cmd += ["--out", str(out)]
    if not telemetry:
        cmd += ["--no-telemetry"]
    for item in overrides(args):
        cmd += ["--set", item]
    cpu = _run(cmd, out.with_suffix(".log"), "larsbench.train.worker", ranks)
    (result,) = out.glob("*/result.json")
    data = json.loads(result.read_text())
    if data.get("status") != "completed":
        raise SystemExit(f"{result}: status {data.get('status')!r}: {data.get('reason')}")
    events = [json.loads(line) for line in (result.parent / "events" / "rank0.jsonl").open()]
    epochs = [e for e in events if e["kind"] == "epoch"]
    steps = [e for e in events if e["kind"] == "step"]
    # From one step event to the next in the same epoch: everything the loop does, per step.
    intervals = [
        (b["t"] - a["t"]) / b["interval_steps"]
        for a, b in itertools.pairwise(steps)
        if a["epoch"] == b["epoch"]
    ]
    return Measured(float(data["images_per_sec"]), _cpu_ms_per_image(cpu, epochs, "t"), intervals)


def run_plain(args: argparse.Namespace, config: dict[str, object], out: Path) -> Measured:
    out.mkdir(parents=True)
    (out / "config.json").write_text(json.dumps(config))
    ranks = int(config["nproc_per_node"])  # type: ignore[call-overload]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += ["--nproc-per-node", str(ranks), str(PLAIN_LOOP)]
    cmd += ["--config", str(out / "config.json"), "--out", str(out / "result.json")]
    if args.no_item:
        cmd += ["--no-item"]
    env = {"OMP_NUM_THREADS": str(config["threads_per_rank"])}
    cpu = _run(cmd, out / "torchrun.log", PLAIN_LOOP.name, ranks, env)
    result = json.loads((out / "result.json").read_text())
    return Measured(
        float(result["images_per_sec"]),
        _cpu_ms_per_image(cpu, result["epochs"], "end"),
        result["interval_step_seconds"],
    )


def _cpu_ms_per_image(cpu: RankCpu, epochs: list[dict], end_key: str) -> float:
    """The ranks' CPU from the first epoch's start to the last one's end, per training image
    (nothing runs between the epochs: no evaluation, no checkpoint)."""
    start = epochs[0][end_key] - epochs[0]["seconds"]
    seconds = cpu.at(epochs[-1][end_key]) - cpu.at(start)
    return 1e3 * seconds / sum(e["images"] for e in epochs)


def _run(
    cmd: list[str], log: Path, marker: str, ranks: int, env: dict[str, str] | None = None
) -> RankCpu:
    with open(log, "wb") as f:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        cpu = RankCpu(proc.pid, marker, ranks)
        cpu.start()
        proc.wait()
        cpu.done.set()
        cpu.join()
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise SystemExit(f"{' '.join(cmd)}\nexit {proc.returncode}:\n" + "\n".join(tail))
    if len(cpu.samples) < 2:
        raise SystemExit(f"{' '.join(cmd)}: no CPU samples of the ranks ({marker})")
    return cpu


def step_extras(config: dict[str, object], steps: int) -> dict[str, float]:
    """CPU microseconds per step of each thing larsbench's loop does that the plain loop does
    not, each timed alone in this process (process time: load from elsewhere barely moves it),
    with the run's own model, optimizer, scheduler and a one-rank gloo group."""
    import torch
    import torch.distributed as dist

    from larsbench.events import EventWriter
    from larsbench.plan.run import RunConfig
    from larsbench.plan.steps import plan_run
    from larsbench.train.report import Interval, report_interval
    from larsbench.train.setup import Dist, autocast, build_parts, to_device
    from larsbench.train.stop import StopRequest, StopVote

    run = RunConfig.from_dict(config)
    torch.set_num_threads(run.threads_per_rank)
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        d = Dist(0, 1, 0, 1, torch.device("cpu"))
        parts = build_parts(run, d, 10, plan_run(run, 1437, 360))
        size = run.data.image_size
        images = torch.randn(run.per_rank_batch, 3, size, size)
        labels = torch.randint(0, 10, (run.per_rank_batch,))
        loss = parts.criterion(parts.ddp(images), labels)
        parts.optimizer.step()  # the scheduler expects a step before its own
        interval = Interval(d.device)
        every = run.train.log_every
        vote = StopVote(StopRequest())

        def to_device_autocast() -> None:
            to_device(images, labels, d, run)
            with autocast(run, d):
                pass

        def scaler() -> None:  # with AMP off: pass-throughs (step calls optimizer.step)
            parts.scaler.scale(loss)
            parts.scaler.update()

        def bookkeeping() -> None:
            fetch = time.perf_counter()
            interval.add(loss, labels.shape[0], time.perf_counter() - fetch)

        with tempfile.TemporaryDirectory() as tmp_dir, EventWriter(Path(tmp_dir) / "e") as out:

            def report() -> None:  # every log_every steps: one all-gather, one event line
                fields = report_interval(interval, d).event_fields()
                out.emit(
                    "step", epoch=1, step=1, epoch_step=1, steps_per_epoch=22, lr=0.1, **fields
                )

            parts_timed = {
                "to_device + autocast (off)": (to_device_autocast, 1),
                "GradScaler scale/update (off)": (scaler, 1),
                "scheduler.step (LambdaLR)": (parts.scheduler.step, 1),
                "Interval.add + perf_counter": (bookkeeping, 1),
                "StopVote.agreed (async gloo all-reduce)": (vote.agreed, 1),
                f"report + step event / {every}": (report, every),
            }
            costs = {}
            for name, (fn, per) in parts_timed.items():
                for _ in range(20):
                    fn()
                cpu0 = time.process_time()
                for _ in range(steps):
                    fn()
                costs[name] = 1e6 * (time.process_time() - cpu0) / steps / per
        vote.close()
        return costs
    finally:
        dist.destroy_process_group()


def _quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(100 * q) - 1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per run")
    parser.add_argument("--batch", type=int, default=64, help="global batch (2 ranks)")
    parser.add_argument("--profile", type=Path, default=ROOT / "profiles" / "smoke.toml")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="more overrides"
    )
    parser.add_argument("--no-item", action="store_true", help="plain loop without loss.item()")
    parser.add_argument(
        "--extra-steps", type=int, default=2000, help="repetitions timing each per-step extra"
    )
    parser.add_argument(
        "--no-telemetry-column", action="store_true", help="skip larsbench with telemetry on"
    )
    args = parser.parse_args(argv)

    config = resolved_config(args)
    ranks = int(config["nproc_per_node"])  # type: ignore[call-overload]
    variants = [v for v in VARIANTS if not (args.no_telemetry_column and "telemetry" in v)]
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, torch {version('torch')}; "
        f"{ranks} ranks x {config['threads_per_rank']} thread, {config['backend']}; "
        f"{config['model']['arch']} width {config['model']['width']}, "
        f"{config['data']['source']}, batch {args.batch}, {args.epochs} epochs; "
        f"plain loop {'without' if args.no_item else 'with'} loss.item() per step"
    )
    runs: dict[str, list[Measured]] = {v: [] for v in variants}
    loads = []
    with tempfile.TemporaryDirectory(prefix="larsbench-overhead-") as tmp_dir:
        tmp = Path(tmp_dir)
        for rep in range(args.reps):
            for name in variants[rep % len(variants) :] + variants[: rep % len(variants)]:
                out = tmp / f"rep{rep}-{name.replace('+', '-')}"
                started = time.perf_counter()
                if name == "plain":
                    m = run_plain(args, config, out)
                else:
                    m = run_larsbench(args, out, telemetry=name != "larsbench", ranks=ranks)
                runs[name].append(m)
                print(
                    f"  rep {rep + 1}/{args.reps} {name:<20} {m.images_per_sec:7.1f} img/s, "
                    f"{m.cpu_ms_per_image:5.2f} CPU ms/img, median step "
                    f"{1e3 * statistics.median(m.step_seconds):.1f} ms "
                    f"({time.perf_counter() - started:.0f} s wall)",
                    flush=True,
                )
            loads.append(os.getloadavg()[0])

    def ratios(figure: str, invert: bool = False) -> dict[str, list[float]]:
        """Per variant but plain, per repetition: variant/plain (plain/variant if invert)."""
        out = {}
        for v in variants:
            if v != "plain":
                pairs = zip(runs[v], runs["plain"], strict=True)
                values = [(getattr(a, figure), getattr(b, figure)) for a, b in pairs]
                out[f"{v}/plain"] = [b / a if invert else a / b for a, b in values]
        return out

    speed = ratios("images_per_sec")
    print("\n" + f"{'rep':>4} " + " ".join(f"{v + ' img/s':>26}" for v in variants), end="")
    print("".join(f" {name:>26}" for name in speed))
    for rep in range(args.reps):
        print(
            f"{rep + 1:>4} " + " ".join(f"{runs[v][rep].images_per_sec:>26.1f}" for v in variants),
            end="",
        )
        print("".join(f" {r[rep]:>26.3f}" for r in speed.values()))
    medians = [statistics.median(m.images_per_sec for m in runs[v]) for v in variants]
    print(f"{'med':>4} " + " ".join(f"{x:>26.1f}" for x in medians), end="")
    print("".join(f" {statistics.median(r):>26.3f}" for r in speed.values()))
    print(f"load average (1 min) after each rep: {', '.join(f'{x:.2f}' for x in loads)}")

    print(
        "\nless sensitive to load from elsewhere (plain/variant: above 1, the variant costs less):"
    )
    cpu = ratios("cpu_ms_per_image", invert=True)
    for v in variants:
        med = statistics.median(m.cpu_ms_per_image for m in runs[v])
        pooled = [s for m in runs[v] for s in m.step_seconds]
        plain = [s for m in runs["plain"] for s in m.step_seconds]
        p25 = _quantile(pooled, 0.25)
        shown = f"  {v:<20} CPU {med:5.2f} ms/img"
        if v != "plain":
            shown += f" (plain/this, median of reps {statistics.median(cpu[f'{v}/plain']):.3f})"
        shown += (
            f"; step time p25 {1e3 * p25:.1f} ms (plain/this {_quantile(plain, 0.25) / p25:.3f})"
        )
        print(shown)
    costs = step_extras(config, args.extra_steps)
    plain_step_us = 1e3 * statistics.median(m.cpu_ms_per_image for m in runs["plain"])
    plain_step_us *= args.batch / ranks  # one rank's CPU per step
    print(f"\nlarsbench's per-step extras, CPU us per step and rank ({args.extra_steps} timed):")
    for name, us in costs.items():
        print(f"  {name:<32} {us:8.1f}")
    total = sum(costs.values())
    print(
        f"  {'total':<32} {total:8.1f} = {100 * total / plain_step_us:.2f}% of the plain loop's "
        f"{plain_step_us / 1e3:.1f} ms CPU per step and rank"
    )
    ratio = statistics.median(speed["larsbench/plain"])
    verdict = "ok" if ratio >= TARGET else f"BELOW {TARGET}"
    print(
        f"larsbench/plain img/s ratio (median of {args.reps}): {ratio:.3f} "
        f"(target >= {TARGET}: {verdict})"
    )


if __name__ == "__main__":
    main()

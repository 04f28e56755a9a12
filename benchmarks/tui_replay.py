"""The terminal app following a synthetic 8-GPU LARC run: its CPU share and memory over time.

A writer in this process appends, to a temporary sweep folder, what `larsbench run` would
write for one ResNet50 LARC run on 8 GPUs: 20 step events per second, a 161-layer trust
snapshot every 50 steps, one NVML system sample per second (8 GPUs, 8 ranks), an epoch and
an evaluation every 1000 steps, and two torchrun log lines per second. The app runs in a
child process on a pseudo-terminal (the real terminal driver, output read and dropped), or
headless with --headless, and follows the run. This process samples the child's CPU time and
RSS; the writer's own cost is not counted.

    .venv/bin/python benchmarks/tui_replay.py --minutes 10
    .venv/bin/python benchmarks/tui_replay.py --minutes 2 --size 80x24
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import os
import pty
import select
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from larsbench.rundir import node_name

TARGET_CPU = 0.10  # share of one core
STEP_RATE = 20.0  # step events per second
STEPS_PER_EPOCH = 1000
STATS_EVERY = 50
WORLD = 8
WARMUP_SECONDS = 10.0  # start-up (imports, first full read) is left out of the CPU share


def resnet50_parameters() -> list[str]:
    """The 161 parameter tensors of torchvision's resnet50, by name (no torch needed)."""
    names = ["conv1.weight", "bn1.weight", "bn1.bias"]
    for layer, blocks in enumerate((3, 4, 6, 3), start=1):
        for b in range(blocks):
            p = f"layer{layer}.{b}"
            for i in (1, 2, 3):
                names += [f"{p}.conv{i}.weight", f"{p}.bn{i}.weight", f"{p}.bn{i}.bias"]
            if b == 0:
                names += [f"{p}.downsample.0.weight", f"{p}.downsample.1.weight"]
                names += [f"{p}.downsample.1.bias"]
    return [*names, "fc.weight", "fc.bias"]


def line(kind: str, **fields: Any) -> str:
    event = {"v": 1, "t": round(time.time(), 4), "kind": kind, **fields}
    return json.dumps(event, separators=(",", ":")) + "\n"


def write_sweep(root: Path, epochs: int) -> Path:
    """sweep.json, runner.json (this process as the runner) and the run's config and status."""
    run_id = "bs2048-larc-tc0.02"
    config = {
        "run_id": run_id,
        "profile_name": "replay",
        "device": "cuda",
        "world_size": WORLD,
        "per_rank_batch": 256,
        "lr": 0.8,
        "model": {"arch": "resnet50"},
        "train": {"epochs": epochs, "batch_size": 2048},
        "optimizer": {"name": "larc", "trust_coefficient": 0.02},
    }
    sweep = {"name": "replay", "runs": [{"run_id": run_id, "config": config}]}
    (root / "sweep.json").write_text(json.dumps(sweep))
    runner = {"pid": os.getpid(), "host": node_name(), "state": "running", "current": run_id}
    (root / "runner.json").write_text(json.dumps(runner))
    run = root / run_id
    (run / "events").mkdir(parents=True)
    (run / "logs").mkdir()
    (run / "config.json").write_text(json.dumps(config))
    (run / "status.json").write_text(json.dumps({"state": "running", "reason": ""}))
    return run


class Writer(threading.Thread):
    """Appends the run's events at the benchmark's rates until stopped."""

    def __init__(self, run: Path, epochs: int) -> None:
        super().__init__(daemon=True)
        self.run_dir = run
        self.epochs = epochs
        self.stop = threading.Event()
        self.lines = 0
        self.bytes = 0
        self.layers = resnet50_parameters()

    def _emit(self, f: Any, text: str) -> None:
        f.write(text)
        f.flush()
        self.lines += 1
        self.bytes += len(text)

    def run(self) -> None:
        ev = self.run_dir / "events"
        with (
            open(ev / "rank0.jsonl", "a") as rank0,
            open(ev / f"system-{node_name()}.jsonl", "a") as system,
            open(self.run_dir / "logs" / "torchrun.log", "a") as log,
        ):
            total = self.epochs * STEPS_PER_EPOCH
            self._emit(
                rank0,
                line(
                    "run_start",
                    run_id=self.run_dir.name,
                    world_size=WORLD,
                    device="cuda",
                    global_batch=2048,
                    per_rank_batch=256,
                    lr=0.8,
                    steps_per_epoch=STEPS_PER_EPOCH,
                    total_steps=total,
                    warmup_steps=5 * STEPS_PER_EPOCH,
                    epochs=self.epochs,
                    start_epoch=1,
                ),
            )
            self._emit(
                system,
                line(
                    "system_info",
                    node=node_name(),
                    source="nvml",
                    devices=[
                        {"index": i, "local_rank": i, "name": "NVIDIA H100 80GB HBM3"}
                        for i in range(8)
                    ],
                ),
            )
            start = time.monotonic()
            step, sample, energy = 0, 0, 0.0
            while not self.stop.is_set() and step < total:
                step += 1
                epoch = (step - 1) // STEPS_PER_EPOCH + 1
                ips = 9800 + 300 * math.sin(step / 200)
                rank = [ips / WORLD * (0.97 if r == 7 else 1.0) for r in range(WORLD)]
                self._emit(
                    rank0,
                    line(
                        "step",
                        epoch=epoch,
                        step=step,
                        epoch_step=(step - 1) % STEPS_PER_EPOCH + 1,
                        steps_per_epoch=STEPS_PER_EPOCH,
                        loss=6.9 * math.exp(-step / 20000) + 1.0,
                        lr=0.8 * min(1.0, step / (5 * STEPS_PER_EPOCH)),
                        images_per_sec=ips,
                        rank_images_per_sec=rank,
                        data_wait_fraction=0.03,
                        rank_data_wait_fraction=[0.03] * 7 + [0.19],
                        step_seconds=0.21,
                        interval_steps=1,
                    ),
                )
                if step % STATS_EVERY == 0:
                    n = len(self.layers)
                    factor = [
                        min(1.0, 10 ** (-2 + 2 * i / n + 0.2 * math.sin(step / 300)))
                        for i in range(n)
                    ]
                    self._emit(
                        rank0,
                        line(
                            "trust",
                            epoch=epoch,
                            step=step,
                            layers=self.layers,
                            weight_norm=[1.0 + i / 10 for i in range(n)],
                            grad_norm=[0.1] * n,
                            local_lr=[f * 0.8 for f in factor],
                            factor=factor,
                            clipped=[f < 1 for f in factor],
                            lr=0.8,
                        ),
                    )
                if step % STEPS_PER_EPOCH == 0:
                    self._emit(
                        rank0,
                        line(
                            "epoch",
                            epoch=epoch,
                            step=step,
                            loss=2.0,
                            images=2_048_000,
                            seconds=210.0,
                            images_per_sec=9750.0,
                            train_seconds=210.0 * epoch,
                        ),
                    )
                    self._emit(
                        rank0,
                        line(
                            "eval",
                            epoch=epoch,
                            step=step,
                            top1=min(76.0, 20 + epoch),
                            top5=90.0,
                            loss=1.5,
                            images=50000,
                            seconds=12.0,
                        ),
                    )
                elapsed = time.monotonic() - start
                while sample < elapsed:  # one system sample per second
                    sample += 1
                    energy += 8 * 600.0
                    self._emit(
                        system,
                        line(
                            "system",
                            node=node_name(),
                            source="nvml",
                            devices=[
                                {
                                    "index": i,
                                    "local_rank": i,
                                    "gpu_util": 97.0 - 20 * (i == 7),
                                    "mem_util": 40.0,
                                    "memory_used": 61 * 2**30,
                                    "memory_total": 80 * 2**30,
                                    "power_draw": 600.0,
                                    "power_limit": 700.0,
                                    "energy": energy / 8,
                                    "temperature": 70,
                                    "sm_clock": 1980,
                                    "throttle_reasons": [],
                                }
                                for i in range(8)
                            ],
                            host={
                                "cpu_percent": 35.0,
                                "memory_used": 200 * 2**30,
                                "memory_total": 2**40,
                            },
                            ranks=[
                                {
                                    "local_rank": r,
                                    "pid": 1000 + r,
                                    "cpu_percent": 110.0,
                                    "rss_bytes": 6 * 2**30,
                                    "workers": 8,
                                    "workers_cpu_percent": 600.0,
                                    "workers_rss_bytes": 20 * 2**30,
                                    "gpu_mem_bytes": 60 * 2**30,
                                }
                                for r in range(8)
                            ],
                        ),
                    )
                    self._emit(
                        log,
                        f"[default0]:step {step} loss ok\n[default7]:worker heartbeat {sample}\n",
                    )
                self.stop.wait(max(0.0, step / STEP_RATE - (time.monotonic() - start)))


CHILD = """
import sys
from pathlib import Path
from larsbench.tui.app import make_app
app = make_app(watch_dir=Path(sys.argv[1]))
app.run(headless=sys.argv[2] == "headless", size=tuple(map(int, sys.argv[3].split("x"))))
"""


def start_app(
    sweep: Path, size: tuple[int, int], headless: bool
) -> tuple[subprocess.Popen[bytes], int | None]:
    """The app in a child process: on a pty (read and dropped by a thread) or headless."""
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(size[0]), "LINES": str(size[1])}
    args = [
        sys.executable,
        "-c",
        CHILD,
        str(sweep),
        "headless" if headless else "tty",
        f"{size[0]}x{size[1]}",
    ]
    if headless:
        return subprocess.Popen(
            args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        ), None
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    proc = subprocess.Popen(
        args, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
    )
    os.close(slave)

    def drain() -> None:
        while True:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    if not os.read(master, 65536):
                        return
                except OSError:
                    return
            elif proc.poll() is not None:
                return

    threading.Thread(target=drain, daemon=True).start()
    return proc, master


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minutes", type=float, default=10.0, help="how long to follow (default 10)"
    )
    parser.add_argument("--size", default="160x48", help="terminal size, e.g. 80x24")
    parser.add_argument("--headless", action="store_true", help="Textual's headless driver, no pty")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    seconds = args.minutes * 60
    epochs = 90

    with tempfile.TemporaryDirectory(prefix="larsbench-replay-") as tmp:
        sweep = Path(tmp) / "replay"
        sweep.mkdir()
        run = write_sweep(sweep, epochs)
        writer = Writer(run, epochs)
        writer.start()
        proc, master = start_app(sweep, size, args.headless)  # type: ignore[arg-type]
        child = psutil.Process(proc.pid)
        t0 = time.monotonic()
        time.sleep(WARMUP_SECONDS)
        cpu0 = sum(child.cpu_times()[:4])
        w0 = time.monotonic()
        rss: list[tuple[float, int]] = [(w0 - t0, child.memory_info().rss)]
        next_sample = w0 + 30
        while time.monotonic() - t0 < seconds:
            if proc.poll() is not None:
                print(f"the app exited early with code {proc.returncode}", file=sys.stderr)
                return 1
            time.sleep(0.5)
            if time.monotonic() >= next_sample:
                rss.append((time.monotonic() - t0, child.memory_info().rss))
                next_sample += 30
        cpu1 = sum(child.cpu_times()[:4])
        w1 = time.monotonic()
        rss.append((w1 - t0, child.memory_info().rss))
        writer.stop.set()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if master is not None:
            os.close(master)

    share = (cpu1 - cpu0) / (w1 - w0)
    mib = 2**20
    print(
        f"tui replay: {args.minutes:g} min at {size[0]}x{size[1]}, "
        f"{'headless' if args.headless else 'pty'}, 8 GPUs x 1 Hz, {STEP_RATE:g} steps/s, "
        f"trust every {STATS_EVERY} steps (161 layers)"
    )
    print(f"  writer: {writer.lines:,} lines, {writer.bytes / mib:.1f} MiB")
    print("  RSS over time: " + ", ".join(f"{t / 60:.1f}m {r / mib:.0f}MiB" for t, r in rss))
    print()
    print(f"| {'metric':<34} | {'value':>12} |")
    print(f"|{'-' * 36}|{'-' * 14}|")
    print(f"| {'app CPU, share of one core':<34} | {share * 100:>11.1f}% |")
    print(f"| {'app RSS at the end':<34} | {rss[-1][1] / mib:>8.0f} MiB |")
    print(f"| {'app RSS growth after warm-up':<34} | {(rss[-1][1] - rss[0][1]) / mib:>+8.1f} MiB |")
    print(f"| {'target CPU share':<34} | {TARGET_CPU * 100:>11.0f}% |")
    print()
    print(f"CPU share / target: {share / TARGET_CPU:.2f} (below 1 meets the target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

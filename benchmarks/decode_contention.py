"""Decoding beside the training loop: what it costs the loop, by where the decoding runs.

    .venv/bin/python benchmarks/decode_contention.py [--images 200] [--reps 4] [--seconds 3]

On a GPU the training loop of a rank is a Python thread that launches kernels: its speed is
that of Python and torch's dispatcher, and anything else in the process that wants the GIL
slows it. This benchmark runs such a loop (small matmul + add + relu on 64x64 CPU tensors: a
few microseconds an op, the Python between ops included; the loop's CPU side is what a GPU
step's launch costs) pinned to core 0, while JPEGs are decoded and cropped on core 1 by
larsbench's training set of generated 500x375 JPEGs (the data set of benchmarks/
data_pipeline.py, `data.decoder = "torchvision"`):

- alone: nothing else runs (the baseline);
- worker process: a forked process decodes (the torch loader's DataLoader workers);
- thread: a thread of this process decodes (decoding in the rank's own threads, which would
  save the process hand-over: docs/benchmarks.md, "Data pipeline");
- dali: larsbench's dali loader iterated by a thread of this process, DALI's own threads pinned
  to core 1 (DALI_AFFINITY_MASK); only with the `dali` extra.

They take turns, `--reps` times, each `--seconds` long after the decoder has started. Reported:
the loop's iterations per second (median) and the ratio to alone measured in the same run; the
decoder's images per second beside it. Needs 2 cores or more (Linux thread affinity).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
from data_pipeline import run_config, write_images

from larsbench.extras import dali_installed
from larsbench.train.loaders import build_data, train_loader

LOOP_CORE, DECODE_CORE = 0, 1
SETTLE_S = 0.5  # the decoder starts before the loop is timed


def launch_loop(seconds: float) -> float:
    """Iterations per second of a dispatch-bound loop on LOOP_CORE (this thread only)."""
    os.sched_setaffinity(0, {LOOP_CORE})
    x, w = torch.randn(64, 64), torch.randn(64, 64)
    done, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(100):
            torch.relu(x @ w + 1.0)
        done += 100
    return done / seconds


def decode_images(train, stop, decoded) -> None:  # type: ignore[no-untyped-def]
    """Decode and crop images of `train` on DECODE_CORE until `stop` is set."""
    os.sched_setaffinity(0, {DECODE_CORE})
    torch.set_num_threads(1)
    i = 0
    while not stop.is_set():
        train[i % len(train)]
        i += 1
        decoded.value = i


def dali_images(loader, stop, decoded) -> None:  # type: ignore[no-untyped-def]
    """Iterate larsbench's dali loader, epoch after epoch, until `stop` is set."""
    os.sched_setaffinity(0, {DECODE_CORE})
    while not stop.is_set():
        for images, _labels in loader:
            decoded.value += images.shape[0]
            if stop.is_set():
                break


class Count:
    value = 0


def timed(start: Callable[[], tuple[Callable[[], None], object]], seconds: float):  # type: ignore[no-untyped-def]
    """(loop iterations/s, decoded img/s) while the decoder that `start` starts runs."""
    finish, decoded = start()
    time.sleep(SETTLE_S)
    first = decoded.value  # type: ignore[attr-defined]
    rate = launch_loop(seconds)
    images = decoded.value - first  # type: ignore[attr-defined]
    finish()
    return rate, images / seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="JPEGs written")
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one timed loop")
    args = parser.parse_args(argv)
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("decode_contention: needs 2 cores (the loop on one, the decoder on another)")
    os.environ["DALI_AFFINITY_MASK"] = str(DECODE_CORE)
    torch.set_num_threads(1)
    fork = mp.get_context("fork")

    with tempfile.TemporaryDirectory(prefix="larsbench-jpegs-") as tmp_dir:
        root = Path(tmp_dir)
        write_images(root, args.images, classes=4, quality=90, seed=0)
        train = build_data(run_config(root, 224, 32, decoder="torchvision")).train

        def alone():  # type: ignore[no-untyped-def]
            return (lambda: None), Count()

        def worker_process():  # type: ignore[no-untyped-def]
            stop, decoded = fork.Event(), fork.Value("q", 0)
            proc = fork.Process(target=decode_images, args=(train, stop, decoded))
            proc.start()
            return (lambda: (stop.set(), proc.join())), decoded

        def in_thread(target, source):  # type: ignore[no-untyped-def]
            def start():  # type: ignore[no-untyped-def]
                stop, decoded = threading.Event(), Count()
                thread = threading.Thread(target=target, args=(source, stop, decoded))
                thread.start()
                return (lambda: (stop.set(), thread.join())), decoded

            return start

        candidates = {
            "alone": alone,
            "worker process": worker_process,
            "thread": in_thread(decode_images, train),
        }
        if dali_installed():
            run = run_config(root, 224, 32, loader="dali", workers=1)
            loader, _sampler = train_loader(build_data(run), run, 0, 1, pin=False)
            candidates["dali"] = in_thread(dali_images, loader)

        loops: dict[str, list[float]] = {name: [] for name in candidates}
        decoded: dict[str, list[float]] = {name: [] for name in candidates}
        names = list(candidates)
        for rep in range(args.reps):
            for name in names if rep % 2 == 0 else names[::-1]:
                rate, images = timed(candidates[name], args.seconds)
                loops[name].append(rate)
                decoded[name].append(images)
            print(f"  rep {rep + 1}/{args.reps}", flush=True)

    base = statistics.median(loops["alone"])
    print(f"\n{os.cpu_count()} cores; loop on core {LOOP_CORE}, decoder on core {DECODE_CORE}")
    print(
        f"{'decoder':<16} {'loop iters/s':>12} {'min':>8} {'max':>8} {'vs alone':>8} {'img/s':>7}"
    )
    for name in names:
        rate = statistics.median(loops[name])
        print(
            f"{name:<16} {rate:>12.0f} {min(loops[name]):>8.0f} {max(loops[name]):>8.0f} "
            f"{rate / base:>8.3f} {statistics.median(decoded[name]):>7.0f}"
        )
    worst = min(names[1:], key=lambda n: statistics.median(loops[n]))
    print(
        f"slowest beside the loop: {worst}, the loop at "
        f"{statistics.median(loops[worst]) / base:.2f} of its speed alone"
    )


if __name__ == "__main__":
    main()

"""Data pipeline: ImageFolder img/s and CPU ms per image: PIL, decode_jpeg, uint8, DALI.

    .venv/bin/python benchmarks/data_pipeline.py [--images 200] [--reps 5] [--gpu-rate 2600]

Writes `--images` JPEGs of 500x375 (ImageNet's most common size; smooth colour fields, a
texture, a gradient and noise, quality 90: near ImageNet's mean file size) into a temporary
ImageFolder tree, then times larsbench's training set of it (`larsbench.train.loaders.build_data`,
`data.source = "imagefolder"`), batch 32, shuffled, through ONE worker process (torch) or one
DALI thread (dali). The candidates:

- pil/float32 (the baseline: larsbench's former default): ImageFolder's PIL loader,
  RandomResizedCrop(224) and RandomHorizontalFlip, PILToTensor, ToDtype(float32, scale),
  Normalize, all in the worker;
- torchvision/float32: the same with `torchvision.io.decode_jpeg` to a uint8 tensor;
- pil, torchvision: today's torch path: the same decode and crop, and the worker hands a uint8
  batch over (conversion and normalization happen on the device, not timed here: a few
  microseconds of GPU time per image);
- dali/cpu (dali/mixed on a GPU): the `data.loader = "dali"` pipeline, one thread: decode with
  random crop, resize, flip, normalize (on a GPU: nvJPEG, the output on the device).

- (hand-over only): blank uint8 crops through the same single-worker DataLoader, no decoding:
  what fetching, collating into fresh shared memory and the queue cost on their own (the
  floor under every worker-process path; not a candidate for the target).

They take turns (A B C D E, E D C B A, ...), each block one pass over the images after an
untimed warm-up pass. Reported per candidate: img/s of the one worker (wall), and its CPU ms
per image (user+sys: of the worker process, from psutil, plus this process's, which receives
the batches as a training rank would; for dali this process's alone, where DALI's threads
run), which a busy machine disturbs less (img/s/core = 1000 / that); "(rank)" is this
process's part. The cores needed to feed 8 GPUs at `--gpu-rate` img/s each: 8 x rate x CPU
s/img (and, from wall img/s, 8 x rate / img/s per worker). Then the torchvision path's parts,
timed in this process on one thread (decode_jpeg; larsbench's training transform on the
decoded tensor; DALI's operators; on CUDA torchvision's nvJPEG decode on the GPU, its CPU side
and img/s: benchmarks/_pipeline_parts.py), added to the hand-over: how close to 0.5 any
worker-process path can get.

The default 2,600 img/s per GPU is an assumption of the order of the published ResNet50 AMP
training rates of an A100-class card: NVIDIA DeepLearningExamples' ResNet50 v1.5 PyTorch README
gives 2,470 img/s on one A100 80GB (pytorch-21.03 container); H100s train faster, so the core
counts are a floor there. Targets: decode_jpeg wins clearly (img/s ratio >= 1.2) to justify
`data.decoder = "torchvision"`; the best CPU path needs at most half of pil/float32's CPU ms
per image. The LAST line is that share.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import psutil
import torch
from _pipeline_parts import part_table
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from larsbench.extras import dali_installed
from larsbench.plan.expand import expand
from larsbench.plan.machine import Machine
from larsbench.plan.run import RunConfig
from larsbench.profile.loading import parse_profile
from larsbench.train.data import IMAGENET_MEAN, IMAGENET_STD
from larsbench.train.loaders import build_data, train_loader

WIDTH, HEIGHT = 500, 375
GPUS = 8
CLEAR_WIN = 1.2
HALF = 0.5  # the target: the best CPU path at most half of pil/float32's CPU ms per image
GPU = torch.cuda.is_available()


def write_images(root: Path, count: int, classes: int, quality: int, seed: int) -> float:
    """JPEGs of natural-ish content under root/train/class_k/ (root/val: the same folder);
    returns the mean file size in KiB."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    sizes = []
    for i in range(count):
        # Smooth colour fields (a coarse random grid upsampled: large objects), a finer texture,
        # a gradient, and sensor-like noise: about ImageNet's mean JPEG size (~110 KB).
        coarse = rng.integers(0, 256, (rng.integers(3, 9), rng.integers(4, 12), 3), np.uint8)
        fine = rng.integers(0, 256, (HEIGHT // 8, WIDTH // 8, 3), np.uint8)
        field, texture = (
            np.asarray(Image.fromarray(a).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC))
            for a in (coarse, fine)
        )
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * xx / WIDTH + np.sin(angle) * yy / HEIGHT)[..., None]
        noise = rng.normal(0, 20, (HEIGHT, WIDTH, 3))
        pixels = 0.8 * field + 0.3 * (texture.astype(np.float32) - 128) + 60 * ramp + noise
        pixels = np.clip(pixels, 0, 255).astype(np.uint8)
        folder = root / "train" / f"class_{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"img_{i:05d}.jpg"
        Image.fromarray(pixels).save(path, quality=quality)
        sizes.append(path.stat().st_size)
    (root / "val").symlink_to(root / "train")  # build_data wants both; only train/ is timed
    return statistics.fmean(sizes) / 1024


def run_config(root: Path, size: int, batch: int, **data: object) -> RunConfig:
    profile = parse_profile(
        {
            "name": "data-pipeline",
            "launch": {"nproc_per_node": 1, "device": "cuda" if GPU else "cpu"},
            "data": {"source": "imagefolder", "path": str(root), "image_size": size, **data},
            "train": {"batch_size": batch},
        }
    )
    return expand(profile, Machine(gpus=int(GPU), cpus=os.cpu_count() or 1))[0]


class FloatImages(Dataset):
    """The former torch path: the same decode and crop, then float32 and Normalize in the
    worker (what moved to the device): the baseline the uint8 path is measured against."""

    def __init__(self, uint8: Dataset) -> None:
        from torchvision.transforms import v2

        self.uint8 = uint8
        self.to_float = v2.Compose(
            [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
        )

    def __len__(self) -> int:
        return len(self.uint8)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.uint8[i]
        return self.to_float(image), label


class HandOverOnly(Dataset):
    """Blank uint8 crops, no decoding: what the DataLoader's hand-over alone costs (fetch,
    collate into fresh shared memory, the queue), the floor under every worker-process path."""

    def __init__(self, length: int, size: int) -> None:
        self.length, self.blank = length, torch.zeros(3, size, size, dtype=torch.uint8)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.blank.clone(), 0


HAND_OVER = "(hand-over only)"


def loaders(root: Path, size: int, batch: int) -> dict[str, object]:
    """Per candidate, larsbench's training set of the tree behind one single-worker,
    persistent DataLoader (torch), or one DALI pipeline of one thread (dali)."""
    out: dict[str, object] = {}
    for decoder in ("pil", "torchvision"):
        run = run_config(root, size, batch, decoder=decoder)
        train = build_data(run).train
        candidates = [(f"{decoder}/float32", FloatImages(train)), (decoder, train)]
        if decoder == "torchvision":
            candidates.append((HAND_OVER, HandOverOnly(len(train), size)))
        for name, dataset in candidates:
            out[name] = DataLoader(
                dataset,
                batch_size=batch,
                shuffle=True,
                num_workers=1,
                persistent_workers=True,
                prefetch_factor=4,
            )
    if dali_installed():
        run = run_config(root, size, batch, loader="dali", workers=1)
        loader, sampler = train_loader(build_data(run), run, 0, 1, pin=False)
        out["dali/mixed" if GPU else "dali/cpu"] = DaliPass(loader, sampler)
    return out


class DaliPass:
    """One epoch of the DALI loader per iteration, the sampler's epoch advanced each time."""

    def __init__(self, loader, sampler) -> None:  # type: ignore[no-untyped-def]
        self.loader, self.sampler, self.epoch = loader, sampler, 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        self.sampler.set_epoch(self.epoch)
        self.epoch += 1
        return iter(self.loader)


def worker_cpu_seconds() -> dict[int, float]:
    """CPU seconds (user+sys) of this process's children: the loaders' worker processes."""
    out = {}
    for child in psutil.Process().children():
        try:
            t = child.cpu_times()
            out[child.pid] = t.user + t.system
        except psutil.Error:
            pass
    return out


def own_cpu_seconds() -> float:
    """CPU seconds of this process, all its threads (clock_gettime: finer than /proc's ticks)."""
    return time.process_time()


def timed_pass(loader: object) -> tuple[float, float, float]:
    """(img/s, CPU ms per image, of which this process's) of one pass over the data set: the
    worker process's CPU time plus this process's (torch: receiving the batch from shared
    memory, what a rank pays), or this process's alone, where DALI's threads run (dali)."""
    before, own = worker_cpu_seconds(), own_cpu_seconds()
    started = time.perf_counter()
    images = 0
    for batch, _labels in loader:  # type: ignore[attr-defined]
        images += batch.shape[0]
    if GPU:
        torch.cuda.synchronize()
    wall = time.perf_counter() - started
    rank = own_cpu_seconds() - own
    cpu = rank
    if not isinstance(loader, DaliPass):
        after = worker_cpu_seconds()
        # Only the worker that served this pass moved (the other loaders' workers sleep).
        cpu += sum(after[pid] - before.get(pid, 0.0) for pid in after)
    return images / wall, 1e3 * cpu / images, 1e3 * rank / images


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="JPEGs written")
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality")
    parser.add_argument("--reps", type=int, default=5, help="timed passes per decoder")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224, help="RandomResizedCrop size")
    parser.add_argument(
        "--gpu-rate",
        type=float,
        default=2600.0,
        help="training img/s of one GPU to feed (default: an A100-class ResNet50 AMP rate)",
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="larsbench-jpegs-") as tmp_dir:
        root = Path(tmp_dir)
        kib = write_images(root, args.images, args.classes, args.quality, seed=0)
        print(
            f"{args.images} JPEGs of {WIDTH}x{HEIGHT}, quality {args.quality}, "
            f"mean {kib:.0f} KiB; batch {args.batch}, crop {args.size}, 1 worker process each"
        )
        found = loaders(root, args.size, args.batch)
        names = list(found)
        for name in names:  # starts the workers and warms the page cache: not timed
            timed_pass(found[name])
        speeds: dict[str, list[float]] = {name: [] for name in names}
        cpu_ms: dict[str, list[float]] = {name: [] for name in names}
        rank_ms: dict[str, list[float]] = {name: [] for name in names}
        loads = []
        for rep in range(args.reps):
            for name in names if rep % 2 == 0 else names[::-1]:
                ips, ms, rank = timed_pass(found[name])
                speeds[name].append(ips)
                cpu_ms[name].append(ms)
                rank_ms[name].append(rank)
            loads.append(os.getloadavg()[0])
            shown = ", ".join(f"{n} {speeds[n][-1]:.1f}" for n in names)
            print(f"  rep {rep + 1}/{args.reps}: {shown} img/s", flush=True)
        del found
        train = build_data(run_config(root, args.size, args.batch, decoder="torchvision")).train
        parts, gpu_rates = part_table(train, args.size, args.batch)

    print(
        f"\n{platform.machine()}, {os.cpu_count()} cores, torch {version('torch')}, "
        f"torchvision {version('torchvision')}, Pillow {version('pillow')}; "
        f"load average (1 min) {min(loads):.2f}-{max(loads):.2f}"
    )
    need = GPUS * args.gpu_rate
    base = statistics.median(cpu_ms["pil/float32"])
    print(
        f"{'path':<20} {'img/s/worker':>12} {'min':>7} {'max':>7} {'CPU ms/img':>10} "
        f"{'(rank)':>6} {'vs pil/f32':>10} {'img/s/core':>10} {'cores for 8 GPUs':>16} "
        f"{'(from wall)':>11}"
    )
    for name in names:
        ips, ms = statistics.median(speeds[name]), statistics.median(cpu_ms[name])
        rank = statistics.median(rank_ms[name])
        print(
            f"{name:<20} {ips:>12.1f} {min(speeds[name]):>7.1f} {max(speeds[name]):>7.1f} "
            f"{ms:>10.2f} {rank:>6.2f} {ms / base:>10.2f} {1e3 / ms:>10.0f} "
            f"{need * ms / 1e3:>16.0f} {need / ips:>11.0f}"
        )
    print(
        f"cores for 8 GPUs: 8 x {args.gpu_rate:,.0f} img/s = {need:,.0f} img/s x CPU s/img "
        "(one worker process per core, decoding and augmenting only); (rank): of the CPU "
        "ms, what the training process spends (receiving batches; all of it for dali)"
    )
    cpu_paths = [n for n in names if n not in ("dali/mixed", HAND_OVER)]
    best = min(cpu_paths, key=lambda n: statistics.median(cpu_ms[n]))
    ratios = [t / p for t, p in zip(speeds["torchvision"], speeds["pil"], strict=True)]
    ratio = statistics.median(ratios)
    verdict = "clear win" if ratio >= CLEAR_WIN else f"below {CLEAR_WIN}: no clear win"
    parts["hand-over (DataLoader worker -> rank)"] = statistics.median(cpu_ms[HAND_OVER])
    print("\nparts, CPU ms per image (this process, one thread; hand-over: as above)")
    for part, ms in parts.items():
        rate = f", {gpu_rates[part]:,.0f} img/s on the GPU" if part in gpu_rates else ""
        print(f"  {part:<44} {ms:>6.2f} {ms / base:>6.2f} of pil/float32{rate}")
    floors = {
        "worker-process floor (decode_jpeg + crop+flip + hand-over)": (
            "decode_jpeg (read_file + decode, full image)",
            "crop+flip (larsbench's transform, torch)",
            "hand-over (DataLoader worker -> rank)",
        ),
        "in-process floor (dali ROI decode + torch crop+flip)": (
            "dali: decode with random crop (ROI)",
            "crop+flip (larsbench's transform, torch)",
        ),
    }
    for floor, summands in floors.items():
        if all(part in parts for part in summands):
            ms = sum(parts[part] for part in summands)
            print(f"  {floor:<60} {ms:.2f} ({ms / base:.2f} of pil/float32)")
    print(f"torchvision/pil img/s per worker (median of {args.reps}): {ratio:.2f} ({verdict})")
    share = statistics.median(cpu_ms[best]) / base
    target = "meets" if share <= HALF else "misses"
    print(
        f"best CPU path {best}: {share:.2f} of pil/float32's CPU ms per image "
        f"({target} the target <= {HALF})"
    )


if __name__ == "__main__":
    main()

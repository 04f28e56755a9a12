"""data.loader = "dali": NVIDIA DALI decodes and augments; batches land on the device.

The pipeline (one per rank and split):
  - files: the rank's indices from the same sampler as the torch path (ResumableSampler:
    sharded by rank, shuffled each epoch with the run's seed, padded to an equal share, a
    resumed epoch skips the batches already done); their paths go in through external_source
    and DALI's own threads read the files (io.file.read): no file I/O on the training thread;
  - training: decoders.image_random_crop (RandomResizedCrop's scale 0.08-1 and ratio 3/4-4/3),
    resize to data.image_size, random horizontal flip, normalize (ImageNet mean/std);
  - validation: decode, resize the shorter side to data.val_resize, center-crop, normalize;
  - output: on the device in the step's layout and dtype (channels_last: DALI writes HWC,
    which seen as NCHW is channels_last memory; fp16/bf16 where amp is on, on CUDA).
On CUDA decoding is `mixed` (nvJPEG: Huffman decoding on the CPU threads or the hardware
decoder, the rest on the GPU); on the CPU the same pipeline runs with DALI's CPU operators.

Digits (data.source = "digits") are written once as PNG files (train/ and val/ of the same
stratified split as the torch path) and read the same way, without augmentation (the torch
path does not augment digits either).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from larsbench.extras import require_dali
from larsbench.filelist import file_list
from larsbench.plan.run import RunConfig
from larsbench.profile.schema import DataConfig
from larsbench.train.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    FileListImages,
    ResumableSampler,
    RunData,
    device_of,
    image_folder_lists,
    step_dtype,
    val_shard,
)

PREFETCH = 1  # batches DALI decodes ahead, while the step trains on the current one


def encoded_path(path: str) -> np.ndarray:
    """A file path as io.file.read takes it: its UTF-8 bytes as a 1-D uint8 array (about 1 us
    an image on the feeding thread; reading the file there with np.fromfile took 65-75 us)."""
    return np.frombuffer(path.encode("utf-8"), dtype=np.uint8)


def build_dali_data(run: RunConfig, cache_dir: Path | None) -> RunData:
    """The file lists DALI reads: the ImageFolder's, or the digits written out as PNGs."""
    require_dali()
    cfg = run.data
    if cfg.source == "synthetic":
        raise ValueError(
            'data.loader "dali" reads files: use data.source "imagefolder" or "digits"'
        )
    if cfg.source == "digits":
        root = write_digits(cfg, run.train.seed, cache_dir or Path(tempfile.gettempdir()))
        train, val = file_list(root / "train", cache_dir), file_list(root / "val", cache_dir)
    else:
        train, val = image_folder_lists(cfg, cache_dir)
    return RunData(
        FileListImages(train, None, None), FileListImages(val, None, None), len(train.classes)
    )


def write_digits(cfg: DataConfig, seed: int, under: Path) -> Path:
    """scikit-learn's digits as an ImageFolder of 8-bit grey PNGs (lossless), split as the
    torch path splits them; written once (atomically: ranks may race), then reused."""
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    root = Path(under) / f"digits-seed{seed}-val{cfg.val_fraction:g}"
    if (root / "train").is_dir() and (root / "val").is_dir():
        return root
    digits = load_digits()
    train_idx, val_idx = train_test_split(
        list(range(len(digits.target))),
        test_size=cfg.val_fraction,
        stratify=digits.target,
        random_state=seed,
    )
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".digits-", dir=root.parent))
    for split, indices in (("train", train_idx), ("val", val_idx)):
        for i in indices:
            folder = tmp / split / f"digit_{digits.target[i]}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = (digits.images[i] * 255 / 16).round().astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(folder / f"{i:04d}.png")
    try:
        os.rename(tmp, root)
    except OSError:  # another rank got there first: theirs is the same
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _pipeline(
    cfg: DataConfig,
    batch: int,
    threads: int,
    device_id: int | None,
    train: bool,
    augment: bool,
    seed: int,
    channels_last: bool,
    dtype: torch.dtype,
):
    from nvidia.dali import fn, pipeline_def, types

    size = cfg.image_size
    dali_dtype = {torch.float16: types.FLOAT16}.get(dtype, types.FLOAT)

    @pipeline_def(
        batch_size=batch,
        num_threads=threads,
        device_id=device_id,
        seed=seed,
        prefetch_queue_depth=PREFETCH,
    )
    def pipe():
        paths = fn.external_source(name="paths", dtype=types.UINT8, ndim=1)
        jpegs = fn.io.file.read(paths)  # in DALI's threads, not the training loop's
        labels = fn.external_source(name="labels", dtype=types.INT64, ndim=1)
        decode_on = "mixed" if device_id is not None else "cpu"
        if train and augment:
            images = fn.decoders.image_random_crop(
                jpegs,
                device=decode_on,
                output_type=types.RGB,
                random_area=[0.08, 1.0],
                random_aspect_ratio=[3 / 4, 4 / 3],
            )
            images = fn.resize(images, resize_x=size, resize_y=size, antialias=True)
            mirror = fn.random.coin_flip(probability=0.5)
            crop = None
        else:
            images = fn.decoders.image(jpegs, device=decode_on, output_type=types.RGB)
            if augment:  # validation: resize the shorter side, then center-crop
                resize = cfg.val_resize or round(size * 256 / 224)
                images = fn.resize(images, resize_shorter=resize, antialias=True)
            else:  # digits: already at their size (resized to image_size, no crop)
                images = fn.resize(images, resize_x=size, resize_y=size, antialias=True)
            mirror = 0
            crop = (size, size)
        images = fn.crop_mirror_normalize(
            images,
            dtype=dali_dtype,
            output_layout="HWC" if channels_last else "CHW",
            crop=crop,
            mean=[255 * m for m in IMAGENET_MEAN],
            std=[255 * s for s in IMAGENET_STD],
            mirror=mirror,
        )
        return images, labels

    return pipe()


class DaliBatches:
    """A rank's batches of one split, decoded by a DALI pipeline, on the device.

    Iterating runs one epoch of the sampler's (or the shard's) indices; a loop that stops
    early (max_steps_per_epoch, a stop) drains what is in flight, so the next epoch starts
    clean."""

    def __init__(
        self,
        files: FileListImages,
        run: RunConfig,
        train: bool,
        indices,  # a ResumableSampler (train) or a fixed list (validation)
    ) -> None:
        self.files = files
        self.indices = indices
        self.train = train
        self.batch = run.per_rank_batch
        self.device = device_of(run)
        self.dtype = step_dtype(run)
        self.channels_last = run.train.channels_last
        self.pipe = _pipeline(
            run.data,
            self.batch,
            max(run.data.workers, 1),
            self.device.index if self.device.type == "cuda" else None,
            train,
            augment=run.data.source == "imagefolder",
            seed=run.train.seed + (0 if train else 1),
            channels_last=self.channels_last,
            dtype=self.dtype,
        )
        self.pipe.build()
        self.copy_stream = None

    def __len__(self) -> int:
        n = len(self.indices)
        return n // self.batch if self.train else -(-n // self.batch)

    def _chunks(self) -> list[list[int]]:
        order = list(iter(self.indices))
        chunks = [order[i : i + self.batch] for i in range(0, len(order), self.batch)]
        if self.train and chunks and len(chunks[-1]) < self.batch:
            chunks.pop()  # drop_last, as the torch path
        return chunks

    def _feed(self, chunk: list[int]) -> None:
        samples = self.files.samples
        self.pipe.feed_input("paths", [encoded_path(samples[i][0]) for i in chunk])
        labels = np.array([samples[i][1] for i in chunk], dtype=np.int64).reshape(-1, 1)
        self.pipe.feed_input("labels", labels)  # one dense batch, not a list of arrays
        self.pipe.schedule_run()

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        chunks = iter(self._chunks())
        in_flight = False
        for chunk in chunks:  # one batch decodes in DALI while the step trains on the last
            self._feed(chunk)
            in_flight = True
            break
        try:
            while in_flight:
                batch = self._take()
                in_flight = False
                for chunk in chunks:
                    self._feed(chunk)
                    in_flight = True
                    break
                yield batch
        finally:
            if in_flight:  # stopped early: empty the pipeline for the next epoch
                self.pipe.outputs()
                self.pipe.release_outputs()

    def _take(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next outputs, copied out of DALI's buffers (which are then released)."""
        from nvidia.dali.plugin.pytorch import feed_ndarray

        cuda = self.device.type == "cuda"
        if cuda and self.copy_stream is None:
            self.copy_stream = torch.cuda.Stream(self.device)
        stream = self.copy_stream if cuda else None
        images_tl, labels_tl = self.pipe.outputs(cuda_stream=stream)
        images_t = images_tl.as_tensor()
        out_dtype = self.dtype if self.dtype == torch.float16 else torch.float32  # DALI has no bf16
        # Allocated on the copy stream (the allocator then never hands it memory the
        # training stream still reads), marked as used by the training stream below.
        with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
            images = torch.empty(images_t.shape(), dtype=out_dtype, device=self.device)
        feed_ndarray(images_t, images, cuda_stream=stream)
        labels = torch.from_numpy(labels_tl.as_array().reshape(-1).copy())
        if stream is not None:
            # Only the copy is waited for, not the training queue; then DALI may reuse it.
            stream.synchronize()
            images.record_stream(torch.cuda.current_stream(self.device))
        self.pipe.release_outputs()
        if self.channels_last:  # NHWC memory seen as NCHW: channels_last, no copy
            images = images.permute(0, 3, 1, 2)
        if images.dtype != self.dtype:  # bf16: converted on the device, layout kept
            images = images.to(self.dtype)
        return images, labels.to(self.device, non_blocking=True)


def dali_train_loader(
    data: RunData, run: RunConfig, rank: int, world: int
) -> tuple[DaliBatches, ResumableSampler]:
    sampler = ResumableSampler(data.train, world, rank, shuffle=True, seed=run.train.seed)
    return DaliBatches(data.train, run, True, sampler), sampler


def dali_val_loader(data: RunData, run: RunConfig, rank: int, world: int) -> DaliBatches:
    return DaliBatches(data.val, run, False, val_shard(len(data.val), rank, world))


def decode_rate(run: RunConfig, files: list[str]) -> float:
    """Training images per second one DALI thread reads, decodes, crops and normalizes (the mixed
    decoder on CUDA: per GPU), timed on `files`: one warm-up pass, best of two."""
    require_dali()
    device = device_of(run)
    pipe = _pipeline(
        run.data,
        len(files),
        1,
        device.index if device.type == "cuda" else None,
        train=True,
        augment=True,
        seed=run.train.seed,
        channels_last=False,
        dtype=torch.float32,
    )
    pipe.build()
    data = [encoded_path(f) for f in files]
    labels = [np.zeros(1, dtype=np.int64) for _ in files]

    def one_pass() -> float:
        started = time.perf_counter()
        pipe.feed_input("paths", data)
        pipe.feed_input("labels", labels)
        pipe.schedule_run()
        pipe.outputs()
        pipe.release_outputs()
        return time.perf_counter() - started

    one_pass()
    return len(files) / min(one_pass(), one_pass())

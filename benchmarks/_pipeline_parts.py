"""The parts of a CPU input path, timed one by one: a helper of benchmarks/data_pipeline.py.

Each part runs in this process on one thread over the same files (`time.process_time`, after an
untimed pass): torchvision's decode_jpeg of the full image, larsbench's training transform
(RandomResizedCrop + flip) on the decoded uint8 tensor, and, with DALI installed, DALI's CPU
decode with a random crop (ROI decoding: only the crop's part of the image is decoded) alone and
followed by DALI's CPU resize, with and without antialiasing; on CUDA, torchvision's nvJPEG
decode on the GPU (its CPU side, and its img/s). Their sums tell how close to half of
pil/float32's CPU time a path built from them can get.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from torch.utils.data import Dataset

from larsbench.extras import dali_installed

PASSES = 3


def cpu_ms(step: Callable[[], object], images: int) -> float:
    """CPU ms per image of step(), which handles `images` images, after one untimed call."""
    step()
    started = time.process_time()
    for _ in range(PASSES):
        step()
    return 1e3 * (time.process_time() - started) / (PASSES * images)


def torch_parts(train: Dataset) -> dict[str, float]:
    from torchvision.io import ImageReadMode, decode_jpeg, read_file

    paths = [path for path, _ in train.samples]  # type: ignore[attr-defined]
    decoded = [decode_jpeg(read_file(p), mode=ImageReadMode.RGB) for p in paths]
    return {
        "decode_jpeg (read_file + decode, full image)": cpu_ms(
            lambda: [decode_jpeg(read_file(p), mode=ImageReadMode.RGB) for p in paths], len(paths)
        ),
        "crop+flip (larsbench's transform, torch)": cpu_ms(
            lambda: [train.transform(image) for image in decoded],  # type: ignore[attr-defined]
            len(paths),
        ),
    }


def nvjpeg_part(train: Dataset, batch: int) -> tuple[float, float]:
    """(CPU ms per image, img/s) of decoding on the GPU: torchvision's decode_jpeg with
    device="cuda" (nvJPEG, the library DALI's `mixed` decoder drives) on lists of `batch`
    files' bytes, as its documentation advises; img/s from the synchronized wall time. CUDA
    only: where DALI cannot be installed (the lent H200), the one measure of what GPU
    decoding leaves on the CPU."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg, read_file

    paths = [path for path, _ in train.samples]  # type: ignore[attr-defined]
    data = [read_file(p) for p in paths]
    chunks = [data[k : k + batch] for k in range(0, len(data), batch)]

    def one_pass() -> None:
        for chunk in chunks:
            decode_jpeg(chunk, mode=ImageReadMode.RGB, device="cuda")
        torch.cuda.synchronize()

    one_pass()
    started = time.perf_counter()
    ms = cpu_ms(one_pass, len(data))
    wall = (time.perf_counter() - started) / (PASSES + 1)  # cpu_ms makes PASSES + 1 passes
    return ms, len(data) / wall


def dali_pipeline(resize: str, size: int, batch: int):  # type: ignore[no-untyped-def]
    """A one-thread DALI CPU pipeline: decode with random crop, then `resize` ("", "antialias",
    "linear": linear interpolation without antialiasing) to size x size."""
    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def(batch_size=batch, num_threads=1, device_id=None, prefetch_queue_depth=1)
    def pipe():  # type: ignore[no-untyped-def]
        jpegs = fn.external_source(name="jpegs", dtype=types.UINT8, ndim=1)
        images = fn.decoders.image_random_crop(
            jpegs,
            device="cpu",
            output_type=types.RGB,
            random_area=[0.08, 1.0],
            random_aspect_ratio=[3 / 4, 4 / 3],
        )
        if resize == "antialias":
            images = fn.resize(images, resize_x=size, resize_y=size, antialias=True)
        elif resize == "linear":
            images = fn.resize(
                images,
                resize_x=size,
                resize_y=size,
                antialias=False,
                interp_type=types.INTERP_LINEAR,
            )
        return images

    built = pipe()
    built.build()
    return built


def dali_parts(train: Dataset, size: int, batch: int) -> dict[str, float]:
    paths = [path for path, _ in train.samples]  # type: ignore[attr-defined]
    jpegs = [np.fromfile(p, dtype=np.uint8) for p in paths]
    whole = len(jpegs) // batch * batch

    def passes(pipe) -> Callable[[], None]:  # type: ignore[no-untyped-def]
        def one_pass() -> None:
            for k in range(0, whole, batch):
                pipe.feed_input("jpegs", jpegs[k : k + batch])
                pipe.run()

        return one_pass

    names = {
        "": "dali: decode with random crop (ROI)",
        "antialias": "dali: ROI decode + resize (antialias)",
        "linear": "dali: ROI decode + resize (linear, no antialias)",
    }
    return {
        name: cpu_ms(passes(dali_pipeline(resize, size, batch)), whole)
        for resize, name in names.items()
    }


NVJPEG = "nvjpeg on the GPU (torchvision; CPU side)"


def part_table(train: Dataset, size: int, batch: int) -> tuple[dict[str, float], dict[str, float]]:
    """(CPU ms per image of each part, img/s of the GPU ones): DALI's parts only where it is
    installed, nvJPEG's only on CUDA."""
    import torch

    parts, rates = torch_parts(train), {}
    if torch.cuda.is_available():
        parts[NVJPEG], rates[NVJPEG] = nvjpeg_part(train, batch)
    if dali_installed():
        parts |= dali_parts(train, size, batch)
    return parts, rates

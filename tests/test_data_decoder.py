"""data.decoder: PIL and torchvision's decode_jpeg give the same tensors through build_data;
ImageFolder images leave the workers as uint8 and are normalized on the device."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from larsbench.plan.expand import expand
from larsbench.plan.machine import Machine
from larsbench.profile.loading import parse_profile
from larsbench.train.data import IMAGENET_MEAN, IMAGENET_STD, RunData
from larsbench.train.loaders import build_data, train_loader, val_loader

SIZE = 32
LOW = min((0 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True))
HIGH = max((1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True))

# torchvision 0.29 deprecates its image decoders in favour of TorchCodec, warning on every call.
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")


def write_tree(root: Path) -> None:
    """train/ and val/ of two classes, three 80x60 JPEGs each: a gradient plus noise."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 200, 80, dtype=np.float32)[None, :, None]
    for split in ("train", "val"):
        for cls in ("a", "b"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(3):
                noise = rng.normal(0, 20, (60, 80, 3))
                pixels = np.clip(ramp + noise + (40 if cls == "b" else 0), 0, 255)
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.jpg", quality=90)


def run_for(root: Path, decoder: str, channels_last: bool = False):
    profile = parse_profile(
        {
            "name": "t",
            "launch": {"nproc_per_node": 1, "device": "cpu"},
            "data": {
                "source": "imagefolder",
                "path": str(root),
                "image_size": SIZE,
                "workers": 0,
                "decoder": decoder,
            },
            "train": {"batch_size": 2, "channels_last": channels_last},
        }
    )
    run = expand(profile, Machine(gpus=0, cpus=2))[0]
    assert run.data.decoder == decoder
    return run


def data_for(root: Path, decoder: str) -> RunData:
    return build_data(run_for(root, decoder))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write_tree(tmp_path)
    return tmp_path


def test_decoders_give_the_same_tensors(tree: Path) -> None:
    pil, tv = data_for(tree, "pil"), data_for(tree, "torchvision")
    assert pil.num_classes == tv.num_classes == 2
    assert isinstance(pil.train.loader(pil.train.samples[0][0]), Image.Image)
    raw = tv.train.loader(tv.train.samples[0][0])
    assert isinstance(raw, torch.Tensor) and raw.dtype == torch.uint8
    assert raw.shape == (3, 60, 80)
    for split in ("train", "val"):
        for i in range(len(getattr(pil, split))):
            (a, label_a), (b, label_b) = getattr(pil, split)[i], getattr(tv, split)[i]
            assert label_a == label_b
            for image in (a, b):  # uint8 out of the workers: 4x less than float32
                assert image.shape == (3, SIZE, SIZE) and image.dtype == torch.uint8
            if split == "val":  # deterministic: resize + center crop of the same decoded pixels
                assert (a.float() - b.float()).abs().mean() < 0.05 * 255 * 0.229


@pytest.mark.parametrize("channels_last", [False, True])
def test_batches_are_normalized_on_the_device_in_the_step_layout(
    tree: Path, channels_last: bool
) -> None:
    run = run_for(tree, "torchvision", channels_last=channels_last)
    data = build_data(run)
    assert data.uint8
    loader, _sampler = train_loader(data, run, 0, 1, pin=False)
    val = val_loader(data, run, 0, 1, pin=False)
    raw = torch.stack([data.val[i][0] for i in range(2)]).float()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
    for batches in (loader, val):
        images, labels = next(iter(batches))
        assert images.dtype == torch.float32 and labels.dtype == torch.long
        assert images.shape == (2, 3, SIZE, SIZE)
        assert images.min() >= LOW - 1e-4 and images.max() <= HIGH + 1e-4
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        assert images.is_contiguous(memory_format=fmt)
    first_val, _ = next(iter(val))
    assert torch.allclose(first_val, (raw - mean) / std, atol=1e-5)


def test_the_default_decoder_is_torchvision() -> None:
    from larsbench.profile.schema import DataConfig

    assert DataConfig().decoder == "torchvision"  # measured faster: docs/benchmarks.md


def test_torchvision_decoder_falls_back_to_pil_for_other_files(tree: Path) -> None:
    png = tree / "train" / "a" / "3.jpg"  # a PNG named .jpg, as ImageNet has
    Image.new("RGB", (80, 60), (10, 200, 30)).save(png, format="PNG")
    data = data_for(tree, "torchvision")
    index = [p for p, _ in data.train.samples].index(str(png))
    assert isinstance(data.train.loader(str(png)), Image.Image)
    image, label = data.train[index]
    assert image.shape == (3, SIZE, SIZE) and label == 0

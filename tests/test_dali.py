"""data.loader = "dali" on the CPU (DALI's CPU operators): ImageFolder's classes and labels,
exact validation counts over ranks, mid-epoch resume, the step's layout, the missing extra."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from larsbench import extras
from larsbench.cli import main
from larsbench.cli.output import EXIT_USAGE
from larsbench.extras import dali_installed
from larsbench.plan.expand import expand
from larsbench.plan.machine import Machine
from larsbench.profile.loading import parse_profile
from larsbench.train.loaders import build_data, train_loader, val_loader

pytestmark = pytest.mark.skipif(
    not dali_installed(), reason="NVIDIA DALI is not installed (pip install 'larsbench[dali]')"
)

SIZE = 16
# Class folder names whose sorted order is not their numeric or creation order.
CLASSES = ["zebra", "10", "2", "Apple", "apple", "b"]


def write_tree(root: Path, per_class: dict[str, int]) -> None:
    """train/ and val/, one JPEG per image, each class its own colour."""
    rng = np.random.default_rng(0)
    for split, counts in (("train", per_class), ("val", per_class)):
        for k, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(counts[name]):
                pixels = np.clip(rng.normal(40 * k, 10, (30, 40, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:02d}.jpg", quality=90)


def run_for(root: Path, world: int = 1, batch: int = 2, **train: object):
    profile = parse_profile(
        {
            "name": "t",
            "launch": {"nproc_per_node": world, "device": "cpu"},
            "data": {
                "source": "imagefolder",
                "path": str(root),
                "image_size": SIZE,
                "loader": "dali",
                "workers": 1,
            },
            "train": {"batch_size": batch * world, **train},
        }
    )
    return expand(profile, Machine(gpus=0, cpus=2))[0]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write_tree(tmp_path / "data", {"zebra": 2, "10": 1, "2": 3, "Apple": 1, "apple": 2, "b": 1})
    return tmp_path / "data"


def labels_of(batches) -> list[int]:
    return [int(x) for _images, labels in batches for x in labels]


def test_classes_and_labels_are_imagefolders(tree: Path, tmp_path: Path) -> None:
    from torchvision.datasets import ImageFolder

    run = run_for(tree)
    data = build_data(run, tmp_path / "sweep" / "filelists")
    for split in ("train", "val"):
        folder = ImageFolder(str(tree / split))
        ours = getattr(data, split)
        assert ours.classes == folder.classes
        assert [label for _, label in ours.samples] == folder.targets
    assert data.num_classes == len(CLASSES)
    val = val_loader(data, run, 0, 1, pin=False)
    assert labels_of(val) == ImageFolder(str(tree / "val")).targets  # unshuffled: file order
    loader, sampler = train_loader(data, run, 0, 1, pin=False)
    sampler.set_epoch(3)
    order = list(iter(sampler))
    targets = ImageFolder(str(tree / "train")).targets
    expected = [targets[i] for i in order][: len(order) // 2 * 2]  # drop_last
    assert labels_of(loader) == expected


def test_dalis_threads_read_the_files_not_the_training_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The training loop feeds paths (UTF-8, any name) and DALI's io.file.read reads the
    bytes: numpy's file reading (the loader's former np.fromfile, 65-75 us an image on the
    training thread) is not called while the loader runs."""
    folder = tmp_path / "data"
    for split in ("train", "val"):
        for k, name in enumerate(["café", "naïve €"]):
            (folder / split / name).mkdir(parents=True)
            for i in range(2):
                pixels = np.full((30, 40, 3), 60 * k + 20, np.uint8)
                Image.fromarray(pixels).save(folder / split / name / f"{i}.jpg", quality=90)
    run = run_for(folder)
    data = build_data(run)

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("a file was read on the training thread")

    monkeypatch.setattr(np, "fromfile", refused)
    loader, sampler = train_loader(data, run, 0, 1, pin=False)
    sampler.set_epoch(0)
    order = list(iter(sampler))
    assert labels_of(loader) == [[0, 0, 1, 1][i] for i in order]
    assert labels_of(val_loader(data, run, 0, 1, pin=False)) == [0, 0, 1, 1]


def test_validation_counts_every_image_once_over_two_ranks(tree: Path) -> None:
    run = run_for(tree, world=2, batch=2)
    data = build_data(run)
    assert len(data.val) == 10
    seen: list[int] = []
    for rank in (0, 1):
        batches = list(val_loader(data, run, rank, 2, pin=False))
        assert [len(labels) for _, labels in batches] == [2, 2, 1]  # the last one partial
        seen += labels_of(batches)
    assert sorted(seen) == sorted(label for _, label in data.val.samples)


def test_a_resumed_epoch_yields_exactly_the_batches_not_yet_trained(tree: Path) -> None:
    run = run_for(tree, batch=2)
    data = build_data(run)
    loader, sampler = train_loader(data, run, 0, 1, pin=False)
    sampler.set_epoch(2)
    whole = [labels.tolist() for _images, labels in loader]
    assert len(whole) == 5
    # A fresh process resuming at epoch 2, step 2, as the worker sets it up.
    loader, sampler = train_loader(build_data(run), run, 0, 1, pin=False)
    sampler.set_epoch(2)
    sampler.skip = 2 * run.per_rank_batch
    assert [labels.tolist() for _images, labels in loader] == whole[2:]


def test_stopping_mid_epoch_leaves_the_next_epoch_whole(tree: Path) -> None:
    run = run_for(tree, batch=2)
    loader, sampler = train_loader(build_data(run), run, 0, 1, pin=False)
    sampler.set_epoch(0)
    for _batch in loader:
        break  # max_steps_per_epoch, a stop: DALI still holds the next batch
    sampler.set_epoch(1)
    assert len(list(loader)) == 5


@pytest.mark.parametrize("channels_last", [False, True])
def test_batches_are_normalized_in_the_step_layout(tree: Path, channels_last: bool) -> None:
    run = run_for(tree, channels_last=channels_last)
    loader, sampler = train_loader(build_data(run), run, 0, 1, pin=False)
    sampler.set_epoch(0)
    images, labels = next(iter(loader))
    assert images.shape == (2, 3, SIZE, SIZE) and images.dtype == torch.float32
    assert labels.dtype == torch.int64
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert images.is_contiguous(memory_format=fmt)
    assert -2.2 < images.min() < images.max() < 2.7  # ImageNet-normalized


def test_digits_are_written_once_as_files_with_the_torch_split(tmp_path: Path) -> None:
    profile = parse_profile(
        {
            "name": "t",
            "launch": {"nproc_per_node": 1, "device": "cpu"},
            "data": {"source": "digits", "image_size": 8, "loader": "dali", "workers": 1},
            "train": {"batch_size": 64},
        }
    )
    run = expand(profile, Machine(gpus=0, cpus=2))[0]
    cache = tmp_path / "sweep" / "filelists"
    data = build_data(run, cache)
    assert (len(data.train), len(data.val), data.num_classes) == (1437, 360, 10)
    written = sorted(cache.glob("digits-*"))
    assert len(written) == 1
    build_data(run, cache)
    assert sorted(cache.glob("digits-*")) == written  # reused, not written again
    images, labels = next(iter(val_loader(data, run, 0, 1, pin=False)))
    assert images.shape == (64, 3, 8, 8) and labels.max() <= 9


def test_a_profile_asking_for_dali_without_it_is_a_usage_error(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(extras, "dali_installed", lambda: False)
    profile = tmp_path / "p.toml"
    profile.write_text(
        'name = "p"\n[launch]\ndevice = "cpu"\nnproc_per_node = 1\n'
        f'[data]\nsource = "imagefolder"\npath = "{tree}"\nloader = "dali"\n'
        "[train]\nbatch_size = 2\n"
    )
    args = ["run", "--profile", str(profile), "--out", str(tmp_path / "out")]
    assert main([*args, "--dry-run"]) == EXIT_USAGE
    out = " ".join(capsys.readouterr().out.split())  # as printed, unwrapped
    assert "larsbench[dali]" in out and "pip install" in out and "data.loader" in out
    assert main(args) == EXIT_USAGE
    err = " ".join(capsys.readouterr().err.split())
    assert "larsbench[dali]" in err and "pip install nvidia-dali-cuda130" in err
    assert not (tmp_path / "out" / "sweep.json").exists()  # nothing launched
    with pytest.raises(ImportError, match=r"larsbench\[dali\]"):
        build_data(run_for(tree))

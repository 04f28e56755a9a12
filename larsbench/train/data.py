"""Data sets and loaders of a run: ImageFolder, scikit-learn's digits, or synthetic images."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset, TensorDataset

from larsbench.filelist import FileList, file_list
from larsbench.plan.run import RunConfig
from larsbench.profile.schema import DataConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class RunData:
    train: Dataset
    val: Dataset
    num_classes: int
    uint8: bool = False  # True: uint8 CHW images, normalized on the device (DeviceBatches)


class SyntheticImages(Dataset):
    """Random images and labels for throughput runs: a small pool, cycled, so no decode cost."""

    POOL = 64

    def __init__(self, length: int, image_size: int, num_classes: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.length = length
        self.images = torch.randn(self.POOL, 3, image_size, image_size, generator=g)
        self.labels = torch.randint(0, num_classes, (length,), generator=g)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i % self.POOL], self.labels[i]


def _digits(cfg: DataConfig, seed: int) -> RunData:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images), as 3-channel tensors."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    if cfg.image_size != x.shape[-1]:
        x = torch.nn.functional.interpolate(
            x, size=(cfg.image_size, cfg.image_size), mode="bilinear", align_corners=False
        )
    train_idx, val_idx = train_test_split(
        list(range(len(y))), test_size=cfg.val_fraction, stratify=digits.target, random_state=seed
    )
    mean, std = x[train_idx].mean(), x[train_idx].std()
    x = ((x - mean) / std).expand(-1, 3, -1, -1).contiguous()
    full = TensorDataset(x, y)
    return RunData(Subset(full, train_idx), Subset(full, val_idx), 10)


def _decode_jpeg(path: str) -> object:
    """data.decoder = "torchvision": a JPEG as a uint8 CHW RGB tensor via decode_jpeg; other
    files (ImageNet holds a PNG or two named .JPEG) and JPEGs it cannot decode through PIL."""
    from torchvision.io import ImageReadMode, decode_jpeg, read_file

    data = read_file(path)
    if data[:3].tolist() == [0xFF, 0xD8, 0xFF]:  # the JPEG SOI marker
        try:
            return decode_jpeg(data, mode=ImageReadMode.RGB)
        except RuntimeError:
            pass
    return _pil_loader(path)


def _pil_loader(path: str) -> object:
    from torchvision.datasets.folder import default_loader

    return default_loader(path)


def image_loader(cfg: DataConfig):
    """The decoder of `data.decoder`: a path -> a PIL image or a uint8 CHW tensor."""
    return _decode_jpeg if cfg.decoder == "torchvision" else _pil_loader


def train_transform(cfg: DataConfig):
    """(transform, loader) of a training image: decode, RandomResizedCrop, flip, to a uint8
    CHW tensor. Conversion and normalization happen on the device (DeviceBatches)."""
    from torchvision.transforms import v2

    transform = v2.Compose(
        [
            v2.RandomResizedCrop(cfg.image_size, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.PILToTensor(),  # passes the torchvision decoder's tensors through
        ]
    )
    return transform, image_loader(cfg)


def val_transform(cfg: DataConfig):
    from torchvision.transforms import v2

    resize = cfg.val_resize or round(cfg.image_size * 256 / 224)
    return v2.Compose(
        [v2.Resize(resize, antialias=True), v2.CenterCrop(cfg.image_size), v2.PILToTensor()]
    )


class FileListImages(Dataset):
    """ImageFolder over a cached file list (larsbench/filelist.py): the same classes, samples
    and targets as torchvision's ImageFolder of the folder, without walking the tree."""

    def __init__(self, files: FileList, transform, loader) -> None:
        self.root = files.root
        self.classes = list(files.classes)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.samples = list(files.samples)
        self.targets = [label for _, label in self.samples]
        self.transform = transform
        self.loader = loader

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[i]
        return self.transform(self.loader(path)), label


def image_folder_lists(cfg: DataConfig, cache_dir: Path | None) -> tuple[FileList, FileList]:
    """The train/ and val/ file lists, from the sweep's cache when it is current."""
    root = Path(cfg.path)
    train, val = (file_list(root / split, cache_dir) for split in ("train", "val"))
    if train.classes != val.classes:
        raise ValueError(f"data.path: {root}: train/ and val/ have different class folders")
    return train, val


def _imagefolder(cfg: DataConfig, cache_dir: Path | None) -> RunData:
    train_files, val_files = image_folder_lists(cfg, cache_dir)
    train_tf, loader = train_transform(cfg)
    train = FileListImages(train_files, train_tf, loader)
    val = FileListImages(val_files, val_transform(cfg), loader)
    return RunData(train, val, len(train.classes), uint8=True)


def build_torch_data(run: RunConfig, cache_dir: Path | None = None) -> RunData:
    """The torch loader's data sets; `cache_dir` holds the sweep's cached ImageFolder lists."""
    cfg = run.data
    if cfg.source == "digits":
        return _digits(cfg, run.train.seed)
    if cfg.source == "synthetic":
        return RunData(
            SyntheticImages(cfg.synthetic_train_images, cfg.image_size, cfg.num_classes, 0),
            SyntheticImages(cfg.synthetic_val_images, cfg.image_size, cfg.num_classes, 1),
            cfg.num_classes,
        )
    return _imagefolder(cfg, cache_dir)


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can skip the first `skip` indices of the next epoch it yields:
    a run resumed mid-epoch sees exactly the batches it had not trained on."""

    skip: int = 0

    def __iter__(self):  # type: ignore[override]
        indices = list(super().__iter__())
        skip, self.skip = self.skip, 0
        return iter(indices[skip:])


def device_of(run: RunConfig) -> torch.device:
    """This rank's device (setup_distributed has set the current CUDA device)."""
    if run.device == "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def step_dtype(run: RunConfig) -> torch.dtype:
    """The dtype the step's first layer runs in: the amp dtype on CUDA, else float32."""
    if run.device == "cuda":
        return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(run.train.amp, torch.float32)
    return torch.float32


class DeviceBatches:
    """A loader's batches on the device in the step's layout and dtype. uint8 batches (the
    ImageFolder path: 4x less shared and pinned memory than float32) are converted and
    normalized there; float batches are only moved."""

    def __init__(self, loader: DataLoader, run: RunConfig, uint8: bool) -> None:
        self.loader = loader
        self.uint8 = uint8
        self.device = device_of(run)
        self.dtype = step_dtype(run)
        self.memory_format = (
            torch.channels_last if run.train.channels_last else torch.contiguous_format
        )
        shape = (1, 3, 1, 1)
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(shape) * 255
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(shape) * 255

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels in self.loader:
            yield self.convert(images), labels.to(self.device, non_blocking=True)

    def convert(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device, non_blocking=True)
        if self.uint8:
            images = (images.float() - self.mean) / self.std
        return images.to(dtype=self.dtype, memory_format=self.memory_format)


def torch_train_loader(
    data: RunData, run: RunConfig, rank: int, world: int, pin: bool
) -> tuple[DeviceBatches, ResumableSampler]:
    """Per-rank batches of the global batch; the sampler pads to an equal share per rank."""
    sampler = ResumableSampler(data.train, world, rank, shuffle=True, seed=run.train.seed)
    workers = run.data.workers
    loader = DataLoader(
        data.train,
        batch_size=run.per_rank_batch,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin,
        drop_last=True,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
    )
    return DeviceBatches(loader, run, data.uint8), sampler


def val_shard(length: int, rank: int, world: int) -> list[int]:
    """Rank r evaluates images r, r+world, ...: no padding, so summed counts are exact."""
    return list(range(rank, length, world))


def torch_val_loader(
    data: RunData, run: RunConfig, rank: int, world: int, pin: bool
) -> DeviceBatches:
    """This rank's share of the validation set (val_shard), with persistent workers."""
    workers = run.data.workers
    loader = DataLoader(
        Subset(data.val, val_shard(len(data.val), rank, world)),
        batch_size=run.per_rank_batch,
        shuffle=False,
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=workers > 0,
    )
    return DeviceBatches(loader, run, data.uint8)

"""Data sets and loaders of a run: ImageFolder, scikit-learn's digits, or synthetic images."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset, TensorDataset

from larsbench.config import DataConfig, RunConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class RunData:
    train: Dataset
    val: Dataset
    num_classes: int


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
    from torchvision.datasets.folder import default_loader
    from torchvision.io import ImageReadMode, decode_jpeg, read_file

    data = read_file(path)
    if data[:3].tolist() == [0xFF, 0xD8, 0xFF]:  # the JPEG SOI marker
        try:
            return decode_jpeg(data, mode=ImageReadMode.RGB)
        except RuntimeError:
            pass
    return default_loader(path)


def _imagefolder(cfg: DataConfig) -> RunData:
    from pathlib import Path

    from torchvision import datasets
    from torchvision.transforms import v2

    size = cfg.image_size
    resize = cfg.val_resize or round(size * 256 / 224)
    to_tensor = [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)]
    normalize = v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    train_tf = v2.Compose(
        [
            v2.RandomResizedCrop(size, antialias=True),
            v2.RandomHorizontalFlip(),
            *to_tensor,
            normalize,
        ]
    )
    val_tf = v2.Compose(
        [v2.Resize(resize, antialias=True), v2.CenterCrop(size), *to_tensor, normalize]
    )
    root = Path(cfg.path)
    # PILToTensor passes the torchvision decoder's tensors through; the rest works on both.
    loader = {"loader": _decode_jpeg} if cfg.decoder == "torchvision" else {}
    train = datasets.ImageFolder(str(root / "train"), transform=train_tf, **loader)
    val = datasets.ImageFolder(str(root / "val"), transform=val_tf, **loader)
    if train.classes != val.classes:
        raise ValueError(f"data.path: {root}: train/ and val/ have different class folders")
    return RunData(train, val, len(train.classes))


def build_data(run: RunConfig) -> RunData:
    cfg = run.data
    if cfg.source == "digits":
        return _digits(cfg, run.train.seed)
    if cfg.source == "synthetic":
        return RunData(
            SyntheticImages(cfg.synthetic_train_images, cfg.image_size, cfg.num_classes, 0),
            SyntheticImages(cfg.synthetic_val_images, cfg.image_size, cfg.num_classes, 1),
            cfg.num_classes,
        )
    return _imagefolder(cfg)


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can skip the first `skip` indices of the next epoch it yields:
    a run resumed mid-epoch sees exactly the batches it had not trained on."""

    skip: int = 0

    def __iter__(self):  # type: ignore[override]
        indices = list(super().__iter__())
        skip, self.skip = self.skip, 0
        return iter(indices[skip:])


def train_loader(
    data: RunData, run: RunConfig, rank: int, world: int, pin: bool
) -> tuple[DataLoader, ResumableSampler]:
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
    return loader, sampler


def val_loader(data: RunData, run: RunConfig, rank: int, world: int, pin: bool) -> DataLoader:
    """Rank r evaluates images r, r+world, ...: no padding, so summed counts are exact."""
    shard = Subset(data.val, list(range(rank, len(data.val), world)))
    return DataLoader(
        shard,
        batch_size=run.per_rank_batch,
        shuffle=False,
        num_workers=run.data.workers,
        pin_memory=pin,
    )

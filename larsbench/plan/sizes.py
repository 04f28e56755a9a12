"""Dataset sizes known without torch: synthetic, digits, an ImageFolder's file counts."""

from __future__ import annotations

import math
from pathlib import Path

from larsbench.profile.schema import DataConfig

IMAGENET_TRAIN_IMAGES = 1_281_167
DIGITS_IMAGES = 1797  # sklearn.datasets.load_digits


def dataset_sizes(data: DataConfig, cache_dir: Path | None = None) -> tuple[int, int] | None:
    """(train, val) image counts, known without torch; None when the data are not reachable.
    An ImageFolder's counts come from its file list (larsbench/filelist.py), cached in
    `cache_dir` (the sweep's filelists/) that the ranks then read instead of walking again."""
    if data.source == "synthetic":
        return data.synthetic_train_images, data.synthetic_val_images
    if data.source == "digits":
        val = math.ceil(DIGITS_IMAGES * data.val_fraction)  # as train_test_split rounds
        return DIGITS_IMAGES - val, val
    from larsbench.filelist import file_list

    root = Path(data.path)
    if not (root / "train").is_dir() or not (root / "val").is_dir():
        return None
    try:
        return len(file_list(root / "train", cache_dir)), len(file_list(root / "val", cache_dir))
    except FileNotFoundError:  # a split without class folders: ImageFolder would refuse it
        return 0, 0

"""The throughput variant of a profile: synthetic batches for its windows, the epoch to project."""

from __future__ import annotations

from larsbench.plan.sizes import IMAGENET_TRAIN_IMAGES, dataset_sizes
from larsbench.plan.steps import throughput_steps
from larsbench.profile.schema import Profile


def throughput_variant(p: Profile) -> Profile:
    """A throughput run trains on synthetic images of the same size and class count; the
    epoch it projects to is the configured data's (ImageNet-1k's when that is not here)."""
    epoch_images = p.train.throughput_epoch_images
    if not epoch_images:
        sizes = dataset_sizes(p.data) if p.data.source != "synthetic" else None
        epoch_images = sizes[0] if sizes else IMAGENET_TRAIN_IMAGES
    train = p.train.model_copy(update={"throughput_epoch_images": epoch_images})
    if p.train.throughput_data == "real":  # the real loader: the projection includes it
        return p.model_copy(update={"train": train})
    data = p.data.model_copy(
        update={
            "source": "synthetic",
            "loader": "torch",  # synthetic batches: no files to decode
            "synthetic_train_images": p.train.batch_size
            * throughput_steps(p.train).synthetic_batches,
            "synthetic_val_images": p.train.batch_size,
        }
    )
    return p.model_copy(update={"data": data, "train": train})

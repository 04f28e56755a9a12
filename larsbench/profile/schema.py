"""The profile schema: frozen pydantic models of a profile's sections; unknown keys are errors."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SAFE_NAME = re.compile(r"[A-Za-z0-9_+\-][A-Za-z0-9._+\-]*")  # a file name, never a path


class FieldError(ValueError):
    """A section check's error that belongs to one of the section's fields (the key the
    configure form marks), while the text names the section as before."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class _Section(BaseModel):
    # strict: `epochs = true` is an error, not 1 epoch (an int may still stand for a float)
    # allow_inf_nan: `base_lr = 1e999` (inf) is an error, not a run that diverges at step 1
    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, allow_inf_nan=False, defer_build=True
    )


class LaunchConfig(_Section):
    nproc_per_node: int | Literal["auto"] = Field(
        "auto", description='processes per node; "auto": visible GPUs, else CPU cores capped at 4'
    )
    nnodes: int = Field(1, ge=1, description="number of nodes (each runs `larsbench run`)")
    device: Literal["auto", "cuda", "cpu"] = "auto"
    backend: Literal["auto", "nccl", "gloo"] = Field("auto", description="auto: nccl on cuda")
    rdzv_endpoint: str = Field("", description="host:port of the rendezvous for nnodes > 1")
    rdzv_id: str = Field("", description="rendezvous id; default: the sweep and run ids")
    max_restarts: int = Field(0, ge=0, description="torchrun restarts of a failed group")
    stop_grace_seconds: float = Field(
        60.0, gt=0, description="a stop: seconds the ranks get to checkpoint before SIGKILL"
    )
    threads_per_rank: int | Literal["auto"] = Field(
        "auto", description="torch intra-op threads per rank; auto: cores / ranks on CPU"
    )

    @model_validator(mode="after")
    def _check(self) -> LaunchConfig:
        if self.nproc_per_node != "auto" and self.nproc_per_node < 1:
            raise FieldError("nproc_per_node", 'nproc_per_node must be >= 1 or "auto"')
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise FieldError(
                "rdzv_endpoint", "rdzv_endpoint (host:port) is required when nnodes > 1"
            )
        return self


class ModelConfig(_Section):
    arch: str = Field("resnet50", description="any torchvision classification model name")
    small_input: bool = Field(False, description="CIFAR-style stem: 3x3 conv, no max-pool")
    zero_init_residual: bool = False
    width: float = Field(1.0, gt=0, le=4, description="ResNet only: channel multiplier")
    compile: bool = Field(False, description="torch.compile the model (compiled before the clock)")


class DataConfig(_Section):
    source: Literal["imagefolder", "digits", "synthetic"] = "synthetic"
    path: str = Field("", description="ImageFolder root with train/ and val/")
    image_size: int = Field(224, ge=4)
    val_resize: int = Field(0, ge=0, description="eval resize before center crop; 0: size*256/224")
    workers: int = Field(
        4, ge=0, description="data-loader worker processes (dali: decoder threads) per rank"
    )
    loader: Literal["torch", "dali"] = Field(
        "torch", description="torch DataLoader, or NVIDIA DALI (larsbench[dali]; nvJPEG on CUDA)"
    )
    decoder: Literal["pil", "torchvision"] = Field(
        "torchvision",
        description="torch loader's JPEG decoding: torchvision.io.decode_jpeg (faster), or PIL",
    )
    num_classes: int = Field(1000, ge=2, description="synthetic data only")
    synthetic_train_images: int = Field(12800, ge=1)
    synthetic_val_images: int = Field(1280, ge=1)
    val_fraction: float = Field(0.2, gt=0, lt=1, description="digits only: held-out share")

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.source == "imagefolder" and not self.path:
            raise FieldError(
                "path", 'source "imagefolder" needs path (a folder with train/ and val/)'
            )
        if self.loader == "dali" and self.source == "synthetic":
            raise FieldError(
                "loader",
                'loader "dali" reads image files: source "imagefolder" or "digits", not '
                '"synthetic" (got loader "dali")',
            )
        return self


class TrainConfig(_Section):
    epochs: int = Field(90, ge=1)
    batch_size: int = Field(256, ge=1, description="GLOBAL batch, split evenly over ranks")
    batch_per_rank: int = Field(
        0, ge=0, description="> 0: the global batch is this x the world size (scaling sweeps)"
    )
    base_lr: float = Field(0.1, gt=0)
    reference_batch: int = Field(256, ge=1, description="lr = base_lr * batch / reference_batch")
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(1e-4, ge=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    warmup_epochs: float = Field(0, ge=0)
    warmup_start_factor: float = Field(
        0.0, ge=0, lt=1, description="warmup starts at lr x (f + (1 - f) / warmup_steps)"
    )
    schedule: Literal["step", "multistep", "cosine", "poly", "constant"] = "step"
    step_size: int = Field(30, ge=1, description="step: epochs between decays")
    milestones: list[int] = Field(default_factory=list, description="multistep: decay epochs")
    gamma: float = Field(0.1, gt=0, le=1)
    poly_power: float = Field(2.0, gt=0)
    min_lr: float = Field(0.0, ge=0, description="cosine/poly floor")
    amp: Literal["off", "fp16", "bf16"] = "off"
    channels_last: bool = False
    ddp_gradient_as_bucket_view: bool = Field(
        True, description="DDP: gradients are views into the all-reduce buckets (no copy)"
    )
    ddp_bucket_cap_mb: float = Field(25.0, gt=0, description="DDP: all-reduce bucket size, MiB")
    ddp_static_graph: bool = Field(
        False, description="DDP: the same parameters take part in every step"
    )
    ddp_forward_sync_buffers: bool = Field(
        True, description="DDP: rank 0's BatchNorm statistics to all ranks at every forward"
    )
    seed: int = 0
    accumulate_steps: int = Field(
        1, ge=1, description="micro-batches per optimizer step (gradient accumulation)"
    )
    log_every: int = Field(20, ge=1, description="steps between step events (host syncs)")
    max_steps_per_epoch: int = Field(0, ge=0, description="0: the whole epoch")
    eval_every: int = Field(1, ge=1, description="epochs between evaluations (last always)")
    checkpoint_every: int = Field(1, ge=0, description="epochs between checkpoints; 0: never")
    divergence_factor: float = Field(
        10.0, ge=0, description="diverged when the loss exceeds this x its running median; 0: off"
    )
    mode: Literal["train", "throughput"] = Field(
        "train", description="throughput: synthetic data, timed steps, no evaluation"
    )
    throughput_data: Literal["synthetic", "real"] = Field(
        "synthetic",
        description="throughput: synthetic batches, or the real data through the real loader",
    )
    throughput_warmup_steps: int = Field(10, ge=0, description="untimed steps first")
    throughput_steps: int = Field(30, ge=2, description="timed steps per measurement window")
    throughput_epoch_images: int = Field(
        0, ge=0, description="images per epoch for the projection; 0: the data's, else ImageNet's"
    )


class OptimizerConfig(_Section):
    name: Literal["sgd", "larc"] = "sgd"
    trust_coefficient: float = Field(0.02, gt=0)
    clip: bool = True
    eps: float = Field(1e-8, gt=0)
    exclude_bias_and_norm: bool = False
    stats_every: int = Field(50, ge=0, description="steps between trust-ratio snapshots; 0: never")
    fused: bool = Field(False, description="LARC: one torch.compile'd pass for the update")
    fold_into_sgd: bool = Field(
        False, description="LARC: its factor folded into SGD's compiled update (not with fused)"
    )

    @model_validator(mode="after")
    def _check(self) -> OptimizerConfig:
        if self.fused and self.fold_into_sgd:
            raise FieldError(
                "fused", "fused and fold_into_sgd exclude each other: set one (fold is fused)"
            )
        return self


class ExportConfig(_Section):
    tensorboard: bool = Field(
        False, description="larsbench run writes SWEEP/tensorboard live (larsbench[tensorboard])"
    )


class ReferenceConfig(_Section):
    """Published top-1 per run id, to hold the sweep's runs against (docs/profiles.md)."""

    source: str = Field("", description="where the numbers come from; required with top1")
    tolerance: float = Field(
        1.0, ge=0, description="points of top-1 within which a run counts as reproduced"
    )
    top1: dict[str, float] = Field(default_factory=dict, description="run id -> top-1 in %")

    @model_validator(mode="after")
    def _check(self) -> ReferenceConfig:
        if self.top1 and not self.source.strip():
            raise FieldError(
                "source", "source is required when top1 is given (where the numbers come from)"
            )
        for run_id, value in self.top1.items():
            if not 0 <= value <= 100:
                raise FieldError(
                    f"top1.{run_id}", f"top1.{run_id}: {value!r} is not a top-1 in percent (0..100)"
                )
        return self


class Profile(_Section):
    name: str = Field(min_length=1, max_length=100, description="names runs/NAME")
    description: str = ""
    launch: LaunchConfig = LaunchConfig()
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    sweep: dict[str, list[Any]] = Field(default_factory=dict)
    export: ExportConfig = ExportConfig()
    reference: ReferenceConfig = ReferenceConfig()

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if name in (".", "..") or not SAFE_NAME.fullmatch(name):
            raise ValueError(
                "must be a folder name (the default --out is runs/NAME): letters, digits "
                "and . _ + - only, not starting with ."
            )
        return name

    @field_validator("sweep")
    @classmethod
    def _check_sweep(cls, sweep: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in sweep.items():
            if not values:
                raise ValueError(f"{key!r} has an empty list")
            written = [json.dumps(v, sort_keys=True, default=repr) for v in values]
            twice = [v for i, v in enumerate(written) if v in written[:i]]
            if twice:
                raise ValueError(f"{key!r} lists {twice[0]} twice: each run once")
            if field_at(key) is None:
                raise ValueError(
                    f"{key!r} names no setting; allowed: a section "
                    f"({', '.join(SECTIONS)}) or section.key"
                )
        return sweep


SECTIONS: dict[str, type[_Section]] = {
    "launch": LaunchConfig,
    "model": ModelConfig,
    "data": DataConfig,
    "train": TrainConfig,
    "optimizer": OptimizerConfig,
}

# Profile tables that are not run settings: not swept, not in config.json.
PROFILE_TABLES: dict[str, type[_Section]] = {"export": ExportConfig, "reference": ReferenceConfig}


def field_at(dotted: str) -> type[_Section] | str | None:
    """The section model (for `train`) or the field name (for `train.epochs`), else None."""
    parts = dotted.split(".")
    section = SECTIONS.get(parts[0])
    if section is None:
        return None
    if len(parts) == 1:
        return section
    if len(parts) == 2 and parts[1] in section.model_fields:
        return parts[1]
    return None


def allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys a profile may hold at the table that contains `loc`."""
    model: type[BaseModel] = Profile
    for part in loc[:-1]:
        sub = {**SECTIONS, **PROFILE_TABLES}.get(part) if model is Profile else None
        if sub is None:
            return []
        model = sub
    return list(model.model_fields)

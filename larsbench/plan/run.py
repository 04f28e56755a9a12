"""RunConfig: one run of a sweep, fully resolved; the lr scaling rule; checks of a resolved run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from larsbench.profile.errors import ConfigError
from larsbench.profile.schema import (
    SECTIONS,
    DataConfig,
    LaunchConfig,
    ModelConfig,
    OptimizerConfig,
    TrainConfig,
)


@dataclass(frozen=True)
class RunConfig:
    """One run of a sweep, fully resolved: what the worker trains and what config.json holds."""

    run_id: str
    profile_name: str
    launch: LaunchConfig
    model: ModelConfig
    data: DataConfig
    train: TrainConfig
    optimizer: OptimizerConfig
    device: str
    backend: str
    nproc_per_node: int
    threads_per_rank: int
    lr: float
    swept: dict[str, Any] = field(default_factory=dict)

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.launch.nnodes

    @property
    def per_rank_batch(self) -> int:
        """A rank's share of the global batch: what it contributes to one optimizer step."""
        return self.train.batch_size // self.world_size

    @property
    def micro_batch(self) -> int:
        """What a rank runs forward and backward at once: its share over accumulate_steps."""
        return self.per_rank_batch // self.train.accumulate_steps

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "profile_name": self.profile_name,
            "device": self.device,
            "backend": self.backend,
            "nproc_per_node": self.nproc_per_node,
            "threads_per_rank": self.threads_per_rank,
            "world_size": self.world_size,
            "per_rank_batch": self.per_rank_batch,
            "micro_batch": self.micro_batch,
            "lr": self.lr,
            "swept": self.swept,
            **{name: getattr(self, name).model_dump() for name in SECTIONS},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        sections = {name: model.model_validate(d[name]) for name, model in SECTIONS.items()}
        return cls(
            run_id=d["run_id"],
            profile_name=d["profile_name"],
            device=d["device"],
            backend=d["backend"],
            nproc_per_node=d["nproc_per_node"],
            threads_per_rank=d["threads_per_rank"],
            lr=d["lr"],
            swept=d.get("swept", {}),
            **sections,
        )


def scaled_lr(base_lr: float, batch_size: int, reference_batch: int) -> float:
    """The linear scaling rule: lr = base_lr * batch_size / reference_batch."""
    return base_lr * batch_size / reference_batch


def check_run(run: RunConfig, source: str) -> None:
    """Errors that need the resolved launch: batch vs world size, amp vs device."""
    if run.train.batch_size % run.world_size:
        raise ConfigError.at(
            source,
            "train.batch_size",
            f"{run.train.batch_size} does not divide by the world size "
            f"{run.world_size} ({run.nproc_per_node} per node x {run.launch.nnodes} nodes); "
            f"run {run.run_id}",
        )
    accumulate = run.train.accumulate_steps
    if run.per_rank_batch % accumulate:
        raise ConfigError.at(
            source,
            "train.accumulate_steps",
            f"{accumulate} does not divide the per-rank batch "
            f"{run.per_rank_batch} (train.batch_size {run.train.batch_size} over "
            f"{run.world_size} ranks); run {run.run_id}",
        )
    if run.device == "cpu" and run.train.amp == "fp16":
        raise ConfigError.at(
            source,
            "train.amp",
            f"fp16 needs CUDA and run {run.run_id} runs on the CPU "
            f"(launch.device {run.launch.device!r}); allowed on CPU: 'bf16', 'off'",
        )
    if run.device == "cpu" and run.backend == "nccl":
        raise ConfigError.at(source, "launch.backend", "nccl needs CUDA; use gloo or auto on CPU")

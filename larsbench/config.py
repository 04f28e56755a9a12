"""Profiles: TOML loading, validation with key paths, sweep expansion and the lr scaling rule."""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

SAFE_NAME = re.compile(r"[A-Za-z0-9_+\-][A-Za-z0-9._+\-]*")  # a file name, never a path
RUN_ID_MAX = 200  # file names allow 255 bytes; the checkpoint and attempt names add a few


class ConfigError(ValueError):
    """A profile, override or run configuration that cannot be used; the message says why."""


class _Section(BaseModel):
    # strict: `epochs = true` is an error, not 1 epoch (an int may still stand for a float)
    # allow_inf_nan: `base_lr = 1e999` (inf) is an error, not a run that diverges at step 1
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


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
            raise ValueError('nproc_per_node must be >= 1 or "auto"')
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise ValueError("rdzv_endpoint (host:port) is required when nnodes > 1")
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
            raise ValueError('source "imagefolder" needs path (a folder with train/ and val/)')
        if self.loader == "dali" and self.source == "synthetic":
            raise ValueError(
                'loader "dali" reads image files: source "imagefolder" or "digits", not '
                '"synthetic" (got loader "dali")'
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
            raise ValueError("fused and fold_into_sgd exclude each other: set one (fold is fused)")
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
            raise ValueError("source is required when top1 is given (where the numbers come from)")
        for run_id, value in self.top1.items():
            if not 0 <= value <= 100:
                raise ValueError(f"top1.{run_id}: {value!r} is not a top-1 in percent (0..100)")
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
            if _field_at(key) is None:
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


def check_reference_ids(reference: ReferenceConfig, run_ids: list[str], source: str) -> None:
    """A reference top-1 for a run id the sweep does not have is an error naming the key."""
    unknown = [key for key in reference.top1 if key not in run_ids]
    if unknown:
        raise ConfigError(
            f"{source}: reference.top1.{unknown[0]}: no run of the sweep has this id; "
            f"run ids: {', '.join(run_ids)}"
        )


def _field_at(dotted: str) -> type[_Section] | str | None:
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


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys a profile may hold at the table that contains `loc`."""
    model: type[BaseModel] = Profile
    for part in loc[:-1]:
        sub = {**SECTIONS, **PROFILE_TABLES}.get(part) if model is Profile else None
        if sub is None:
            return []
        model = sub
    return list(model.model_fields)


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(e["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(loc))
            lines.append(f"{source}: {where}: unknown key; allowed keys here: {allowed}")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            got = e.get("input")
            shown = "" if isinstance(got, dict) or got is None else f" (got {got!r})"
            lines.append(f"{source}: {where}: {msg}{shown}")
    return "\n".join(lines)


def parse_profile(data: dict[str, Any], source: str = "<profile>") -> Profile:
    try:
        return Profile.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None


PROFILE_MAX_BYTES = 1024 * 1024  # the largest shipped profile is under 4 KiB


def read_profile_file(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any]]:
    """A profile file's text and its TOML tables; ConfigError naming the file when it is not
    a readable UTF-8 TOML file of reasonable size."""
    path = Path(path)
    try:
        if path.is_dir():
            raise ConfigError(f"{path}: is a directory; give a profile .toml file")
        size = path.stat().st_size
        if size > PROFILE_MAX_BYTES:
            raise ConfigError(
                f"{path}: {size / 2**20:.1f} MiB is too large for a profile "
                f"(limit {PROFILE_MAX_BYTES // 2**20} MiB)"
            )
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the profile: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {err.start}: {data[err.start : err.start + 1]!r}); "
            "a profile is a UTF-8 TOML file"
        ) from None
    if not text.strip():
        raise ConfigError(f'{path}: empty; a profile needs at least name = "..."')
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    if _depth(raw) > PROFILE_MAX_DEPTH:
        raise ConfigError(
            f"{path}: tables nested more than {PROFILE_MAX_DEPTH} deep; a profile has "
            "sections (launch, model, data, train, optimizer, sweep) holding keys"
        )
    return text, raw


PROFILE_MAX_DEPTH = 8  # [sweep] optimizer = [{...}] is 3 deep


def _depth(value: Any) -> int:
    """How deep tables and arrays nest (iterative: a hostile file must not blow the stack)."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        item, level = todo.pop()
        deepest = max(deepest, level)
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        todo.extend((child, level + 1) for child in children)
    return deepest


def load_profile(path: str | os.PathLike[str]) -> Profile:
    """Read and validate a profile; errors name the file and the key path."""
    _text, data = read_profile_file(path)
    return parse_profile(data, str(path))


def shipped_profiles_dir() -> Path:
    """The profiles that ship with larsbench: `profiles/` of the checkout it is installed
    from (`pip install -e .`, as the README says)."""
    return Path(__file__).resolve().parent.parent / "profiles"


# --- overrides -------------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """A `--set` value read as TOML (1, 0.5, true, [1, 2], {name="larc"}), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_override(item: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. train.epochs=5")
    return key.strip(), parse_value(value.strip())


def apply_overrides(
    data: dict[str, Any], overrides: list[tuple[str, Any]], source: str = "--set"
) -> dict[str, Any]:
    """A copy of the raw profile with each `section.key=value` set for every run.

    `sweep.<section.key>=[...]` replaces that sweep list; setting a swept key fixes it for
    every run, so it leaves the sweep.
    """
    out = copy.deepcopy(data)
    for key, value in overrides:
        if key.startswith("sweep."):
            swept = key.removeprefix("sweep.")
            if _field_at(swept) is None:
                raise ConfigError(f"{source} {key}: {swept!r} names no setting")
            out.setdefault("sweep", {})[swept] = value if isinstance(value, list) else [value]
            continue
        parts = key.split(".")
        if key in ("name", "description"):
            out[key] = value
        elif len(parts) == 2 and parts[0] in SECTIONS:
            if _field_at(key) is None:
                allowed = ", ".join(SECTIONS[parts[0]].model_fields)
                raise ConfigError(f"{source} {key}: unknown key; allowed in {parts[0]}: {allowed}")
            out.setdefault(parts[0], {})[parts[1]] = value
        else:
            raise ConfigError(
                f"{source} {key}: expected section.key with section one of {', '.join(SECTIONS)}"
            )
        _unsweep(out.get("sweep", {}), key)
    return out


def _unsweep(sweep: dict[str, Any], key: str) -> None:
    """A key set for every run leaves the sweep, also from swept section tables."""
    sweep.pop(key, None)
    section, _, name = key.partition(".")
    tables = sweep.get(section)
    if not name or not isinstance(tables, list):
        return
    kept: list[Any] = []
    for table in tables:
        if isinstance(table, dict):
            table = {k: v for k, v in table.items() if k != name}
        if table not in kept:
            kept.append(table)
    sweep[section] = kept


# --- runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Machine:
    """What the node that launches offers: visible GPUs and CPU cores."""

    gpus: int
    cpus: int

    @classmethod
    def here(cls) -> Machine:
        from larsbench.telemetry.nvml import visible_gpu_count

        return cls(gpus=visible_gpu_count(), cpus=os.cpu_count() or 1)


CPU_RANKS_CAP = 4


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


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


_SHORT = {
    "train.batch_size": "bs",
    "optimizer.trust_coefficient": "tc",
    "train.base_lr": "lr",
    "launch.nproc_per_node": "np",
    "launch.nnodes": "nodes",
}


_IN_ID_ALREADY = ("train.batch_size", "optimizer", "optimizer.name", "optimizer.trust_coefficient")


def run_id_for(
    train: TrainConfig,
    optimizer: OptimizerConfig,
    swept: dict[str, Any],
    varying: dict[str, Any] | None = None,
) -> str:
    """A readable, stable id: bs1024-larc-tc0.02, then any other swept key as name+value.

    `varying` holds the inner keys of swept section tables whose values differ across the
    sweep (e.g. `optimizer.clip`), with this run's value, so such runs get distinct ids.
    """
    parts = [f"bs{train.batch_size}", optimizer.name]
    if optimizer.name == "larc":
        parts.append(f"tc{_fmt(optimizer.trust_coefficient)}")
    extra = {k: v for k, v in swept.items() if not isinstance(v, dict)}
    extra.update(varying or {})
    for key, value in extra.items():
        if key in _IN_ID_ALREADY:
            continue
        short = _SHORT.get(key, key.split(".")[-1].replace("_", ""))
        parts.append(f"{short}{_fmt(value)}")
    # Values reach a folder name: anything but letters, digits and . _ + - becomes _.
    return "-".join(_UNSAFE_IN_ID.sub("_", p.replace(" ", "")) for p in parts)


_UNSAFE_IN_ID = re.compile(r"[^A-Za-z0-9._+\-]")


def _set_dotted(data: dict[str, Any], key: str, value: Any, source: str) -> None:
    parts = key.split(".")
    if len(parts) == 1:
        if not isinstance(value, dict):
            raise ConfigError(
                f"{source}: sweep.{key}: each value must be a table of {key} keys, "
                f"e.g. {{name = 'sgd'}} (got {value!r})"
            )
        data.setdefault(key, {}).update(value)
    else:
        data.setdefault(parts[0], {})[parts[1]] = value


def _distinct(runs: list[RunConfig]) -> list[RunConfig]:
    """Runs that train exactly the same thing once (e.g. after --set fixed a swept key)."""
    seen: set[str] = set()
    out = []
    for run in runs:
        same = {k: v for k, v in run.to_dict().items() if k not in ("run_id", "swept")}
        key = json.dumps(same, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(run)
    return out


def _varying_table_keys(keys: list[str], profiles: list[Profile]) -> list[str]:
    """`section.key` for the keys inside swept section tables whose values differ by run."""
    out = []
    for key in keys:
        if "." in key:
            continue
        for name in SECTIONS[key].model_fields:
            values = {repr(getattr(getattr(p, key), name)) for p in profiles}
            if len(values) > 1:
                out.append(f"{key}.{name}")
    return out


def resolve_launch(launch: LaunchConfig, machine: Machine) -> tuple[str, str, int, int]:
    """(device, backend, nproc_per_node, threads_per_rank) for this launch on this machine."""
    device = launch.device
    if device == "auto":
        device = "cuda" if machine.gpus > 0 else "cpu"
    backend = launch.backend
    if backend == "auto":
        backend = "nccl" if device == "cuda" else "gloo"
    nproc = launch.nproc_per_node
    if nproc == "auto":
        nproc = machine.gpus if device == "cuda" else min(machine.cpus, CPU_RANKS_CAP)
        nproc = max(nproc, 1)
    threads = launch.threads_per_rank
    if threads == "auto":
        # On CUDA the ranks' CPU threads only feed the GPU; more than a few just contend.
        threads = max(1, machine.cpus // nproc)
        if device == "cuda":
            threads = min(threads, 4)
    return device, backend, nproc, threads


def expand(profile: Profile, machine: Machine, source: str = "<profile>") -> list[RunConfig]:
    """The sweep's runs: the cartesian product of the sweep lists, in the order written."""
    base = profile.model_dump(exclude={"sweep"})
    keys = list(profile.sweep)
    combos = []
    for combo in itertools.product(*(profile.sweep[k] for k in keys)):
        data = copy.deepcopy(base)
        for key, value in zip(keys, combo, strict=True):
            _set_dotted(data, key, value, source)
        swept = dict(zip(keys, combo, strict=True))
        try:
            combos.append((Profile.model_validate(data), swept))
        except ValidationError as err:
            where = ", ".join(f"{k}={v!r}" for k, v in swept.items())
            raise ConfigError(
                f"{format_validation_error(err, source)}\n  (in the sweep run with {where})"
            ) from None
    varying = _varying_table_keys(keys, [p for p, _ in combos])
    runs: list[RunConfig] = []
    for p, swept in combos:
        if p.train.mode == "throughput":
            p = throughput_variant(p)
        device, backend, nproc, threads = resolve_launch(p.launch, machine)
        if p.train.batch_per_rank:
            batch = p.train.batch_per_rank * nproc * p.launch.nnodes
            p = p.model_copy(update={"train": p.train.model_copy(update={"batch_size": batch})})
        run = RunConfig(
            run_id=run_id_for(
                p.train,
                p.optimizer,
                swept,
                {k: getattr(getattr(p, k.split(".")[0]), k.split(".")[1]) for k in varying},
            ),
            profile_name=p.name,
            launch=p.launch,
            model=p.model,
            data=p.data,
            train=p.train,
            optimizer=p.optimizer,
            device=device,
            backend=backend,
            nproc_per_node=nproc,
            threads_per_rank=threads,
            lr=scaled_lr(p.train.base_lr, p.train.batch_size, p.train.reference_batch),
            swept=swept,
        )
        check_run(run, source)
        runs.append(run)
    runs = _distinct(runs)
    long = [r.run_id for r in runs if len(r.run_id) > RUN_ID_MAX]
    if long:
        raise ConfigError(
            f"{source}: sweep: run id {long[0][:60]!r}... is {len(long[0])} characters "
            f"(limit {RUN_ID_MAX}); shorten the swept values"
        )
    ids = [r.run_id for r in runs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"{source}: sweep gives several runs the same id: {', '.join(dupes)}")
    return runs


IMAGENET_TRAIN_IMAGES = 1_281_167


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
    steps = p.train.throughput_warmup_steps + 3 * p.train.throughput_steps
    data = p.data.model_copy(
        update={
            "source": "synthetic",
            "loader": "torch",  # synthetic batches: no files to decode
            "synthetic_train_images": p.train.batch_size * steps,
            "synthetic_val_images": p.train.batch_size,
        }
    )
    return p.model_copy(update={"data": data, "train": train})


def check_run(run: RunConfig, source: str) -> None:
    """Errors that need the resolved launch: batch vs world size, amp vs device."""
    if run.train.batch_size % run.world_size:
        raise ConfigError(
            f"{source}: train.batch_size: {run.train.batch_size} does not divide by the world size "
            f"{run.world_size} ({run.nproc_per_node} per node x {run.launch.nnodes} nodes); "
            f"run {run.run_id}"
        )
    accumulate = run.train.accumulate_steps
    if run.per_rank_batch % accumulate:
        raise ConfigError(
            f"{source}: train.accumulate_steps: {accumulate} does not divide the per-rank batch "
            f"{run.per_rank_batch} (train.batch_size {run.train.batch_size} over "
            f"{run.world_size} ranks); run {run.run_id}"
        )
    if run.device == "cpu" and run.train.amp == "fp16":
        raise ConfigError(
            f"{source}: train.amp: fp16 needs CUDA and run {run.run_id} runs on the CPU "
            f"(launch.device {run.launch.device!r}); allowed on CPU: 'bf16', 'off'"
        )
    if run.device == "cpu" and run.backend == "nccl":
        raise ConfigError(f"{source}: launch.backend: nccl needs CUDA; use gloo or auto on CPU")


# --- sizes, for dry runs and progress --------------------------------------------------------

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


@dataclass(frozen=True)
class RunPlan:
    """Steps a run will take, derived from its config and its data size."""

    train_images: int
    val_images: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int


def plan_run(run: RunConfig, train_images: int, val_images: int) -> RunPlan:
    """The sampler pads to ceil(N / world) per rank; the loader drops the last partial batch."""
    per_rank = math.ceil(train_images / run.world_size)
    steps = per_rank // run.per_rank_batch
    if run.train.max_steps_per_epoch:
        steps = min(steps, run.train.max_steps_per_epoch)
    return RunPlan(
        train_images=train_images,
        val_images=val_images,
        steps_per_epoch=steps,
        total_steps=steps * run.train.epochs,
        warmup_steps=round(run.train.warmup_epochs * steps),
    )

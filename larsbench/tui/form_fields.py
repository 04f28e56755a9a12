"""The configure form's fields: which profile key each edits and how it is entered (plain data,
no validation: the configure screen shows them before the profile models load)."""

from __future__ import annotations

from dataclasses import dataclass

OPTIMIZER = "optimizer"  # the one field that is not a single setting: "sgd, larc:0.02"


@dataclass(frozen=True)
class FieldSpec:
    """One form field: the profile key it edits and how it is entered."""

    key: str
    label: str
    kind: str = "text"  # text | choice | bool
    choices: tuple[str, ...] = ()
    hint: str = ""
    sweepable: bool = True  # a comma-separated list sweeps the key


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("model.arch", "model", hint="torchvision name, e.g. resnet50"),
    FieldSpec("model.small_input", "small input", "bool", sweepable=False),
    FieldSpec("model.compile", "compile model", "bool", sweepable=False),
    FieldSpec("data.source", "data", "choice", ("synthetic", "digits", "imagefolder")),
    FieldSpec("data.path", "data path", hint="ImageFolder root (train/, val/)", sweepable=False),
    FieldSpec("data.loader", "loader", "choice", ("torch", "dali")),
    FieldSpec("data.workers", "loader workers", hint="per rank"),
    FieldSpec("launch.device", "device", "choice", ("auto", "cuda", "cpu")),
    FieldSpec("launch.nproc_per_node", "processes", hint='per node, or "auto"'),
    FieldSpec("train.batch_size", "batch sizes", hint="GLOBAL; 256, 1024 sweeps"),
    FieldSpec("train.base_lr", "base lr", hint="lr = base_lr x batch / ref"),
    FieldSpec("train.reference_batch", "reference batch", hint="linear scaling rule"),
    FieldSpec(OPTIMIZER, "optimizers", hint="sgd, larc or larc:TC; list sweeps"),
    FieldSpec("optimizer.trust_coefficient", "trust coefficient", hint="LARC eta"),
    FieldSpec("optimizer.clip", "clip", "bool", sweepable=False),
    FieldSpec("optimizer.eps", "eps"),
    FieldSpec("optimizer.exclude_bias_and_norm", "exclude bias/norm", "bool", sweepable=False),
    FieldSpec("optimizer.fused", "fused update", "bool", sweepable=False),
    FieldSpec("optimizer.fold_into_sgd", "fold into SGD", "bool", sweepable=False),
    FieldSpec("train.epochs", "epochs"),
    FieldSpec("train.warmup_epochs", "warmup epochs"),
    FieldSpec(
        "train.schedule", "schedule", "choice", ("step", "multistep", "cosine", "poly", "constant")
    ),
    FieldSpec("train.amp", "amp", "choice", ("off", "fp16", "bf16")),
    FieldSpec("train.accumulate_steps", "accumulate steps", hint="micro-batches per step"),
    FieldSpec("train.channels_last", "channels last", "bool", sweepable=False),
)
FIELD_KEYS = tuple(f.key for f in FIELDS)
EXTRA = "extra"  # the free "--set" line: key=value; key=value

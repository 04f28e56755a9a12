"""Run ids: readable, stable names (bs1024-larc-tc0.02) that are safe as folder names."""

from __future__ import annotations

import re
from typing import Any

from larsbench.profile.schema import OptimizerConfig, TrainConfig

RUN_ID_MAX = 200  # file names allow 255 bytes; the checkpoint and attempt names add a few


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

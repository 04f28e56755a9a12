"""Checkpoints of a run: written atomically by rank 0, the last two kept, read back on resume."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from larsbench.train.setup import Parts

KEEP = 2
PREFIX = "ckpt-"


@dataclass(frozen=True)
class Position:
    """Where training stands: `epoch_step` steps of `epoch` are done (0: none of it)."""

    epoch: int
    epoch_step: int
    step: int
    train_seconds: float
    events_offset: int


def next_position(saved: Position, steps_per_epoch: int) -> Position:
    """Where a run resumes: a checkpoint saved at an epoch's end starts the next epoch."""
    if saved.epoch_step < steps_per_epoch:
        return saved
    return Position(saved.epoch + 1, 0, saved.step, saved.train_seconds, saved.events_offset)


def _name(pos: Position) -> str:
    return f"{PREFIX}{pos.step:09d}.pt"


def checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoints, newest first (temporary files are never listed)."""
    return sorted(directory.glob(f"{PREFIX}*.pt"), reverse=True)


def save(directory: Path, parts: Parts, pos: Position, run_id: str) -> Path:
    """Temp file, fsync, rename, then fsync the directory; older ones beyond KEEP removed."""
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        "run_id": run_id,
        "position": pos.__dict__,
        "model": parts.model.state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "scaler": parts.scaler.state_dict(),
    }
    final = directory / _name(pos)
    tmp = directory / f".{final.name}.tmp"
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
    except Exception as err:
        # A full disk (torch.save reports it as OSError or as RuntimeError "unexpected pos"):
        # say so with the file and the free space, and give back the space the partial file
        # took, so that the launcher can still record how the run ended.
        free = shutil.disk_usage(directory).free / 2**20
        tmp.unlink(missing_ok=True)
        raise OSError(
            f"writing the checkpoint {final} failed with {free:.1f} MiB free on its disk: "
            f"{type(err).__name__}: {err}"
        ) from err
    os.replace(tmp, final)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    for old in checkpoints(directory)[KEEP:]:
        old.unlink(missing_ok=True)
    return final


@dataclass
class Loaded:
    path: Path
    position: Position
    state: dict[str, Any]
    skipped: list[str]


def load_latest(directory: Path, run_id: str) -> Loaded | None:
    """The newest checkpoint that reads back; unreadable ones are skipped and named."""
    skipped: list[str] = []
    for path in checkpoints(directory):
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
            if state.get("run_id") != run_id:
                raise ValueError(f"belongs to run {state.get('run_id')!r}")
            position = Position(**state["position"])
        except Exception as err:
            skipped.append(f"{path.name}: {type(err).__name__}: {err}"[:300])
            continue
        return Loaded(path, position, state, skipped)
    if skipped:
        raise ValueError(
            f"{directory}: no readable checkpoint ({'; '.join(skipped)}); "
            "run again with --fresh to start over"
        )
    return None


def restore(parts: Parts, loaded: Loaded) -> None:
    """Model, optimizer (LARC's step count too), scheduler and scaler. No RNG state: each rank
    seeds its data randomness from the seed, its rank and the step it resumes at
    (`session.seed_data`); the sampler's order depends on the seed and the epoch only."""
    s = loaded.state
    parts.model.load_state_dict(s["model"])
    parts.optimizer.load_state_dict(s["optimizer"])
    parts.scheduler.load_state_dict(s["scheduler"])
    parts.scaler.load_state_dict(s["scaler"])

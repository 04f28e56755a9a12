"""The storage check: free disk for the profile's checkpoints, /dev/shm for its loaders."""

from __future__ import annotations

import shutil
from pathlib import Path

from larsbench.doctor.verdict import FAIL, OK, WARN, Verdict
from larsbench.plan.run import RunConfig

GiB = 1 << 30
CHECKPOINTS_KEPT = 2  # train/checkpoint.py keeps the last two
# A checkpoint holds weights and SGD momentum (float32 each) and the buffers, plus small state.
BYTES_PER_PARAMETER = 8
# train/data.py: each loader worker keeps prefetch_factor uint8 batches in shared memory
# (conversion to float happens on the device).
PREFETCH_FACTOR = 4
BYTES_PER_PIXEL = 3  # three uint8 channels
DISK_MARGIN = 2.0  # warn below twice the need: logs, events and the next run
SHM_MARGIN = 1.5


def checkpoint_bytes(runs: list[RunConfig], elements: int) -> int:
    """Disk the sweep's checkpoints take once every run has written its two."""
    writing = [r for r in runs if r.train.mode == "train" and r.train.checkpoint_every]
    return len(writing) * CHECKPOINTS_KEPT * BYTES_PER_PARAMETER * elements


def shm_bytes(run: RunConfig) -> int:
    """Shared memory the node's loader workers hold at once (0 without workers, and for DALI,
    whose buffers are pinned host and device memory, not /dev/shm)."""
    d = run.data
    if d.loader == "dali":
        return 0
    batch = run.per_rank_batch * d.image_size * d.image_size * BYTES_PER_PIXEL
    return run.nproc_per_node * d.workers * PREFETCH_FACTOR * batch


def existing_parent(path: Path) -> Path:
    """The nearest folder that exists (the sweep folder itself may not yet)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(existing_parent(path)).free
    except OSError:
        return None


def _gib(n: float) -> str:
    """Bytes as GiB, or MiB below 1 GiB (a small model's checkpoints)."""
    return f"{n / GiB:.1f} GiB" if n >= GiB else f"{n / (1 << 20):.1f} MiB"


def judge_disk(where: Path, free: int | None, needed: int | None) -> Verdict:
    """Free space where the sweep writes against its checkpoints."""
    check = "disk for checkpoints"
    if needed is None:
        return Verdict(
            check,
            f"{where}: {_gib(free or 0)} free",
            "model size unknown",
            WARN,
            "the model was not counted (the all-reduce check, which counts it, did not run): "
            "fix that check first",
        )
    expected = f">= {_gib(needed * DISK_MARGIN)} ({_gib(needed)} of checkpoints x {DISK_MARGIN:g})"
    if free is None:
        return Verdict(
            check,
            f"{where}: unreadable",
            expected,
            WARN,
            f"cannot read the free space of {where}: check it exists and is mounted",
        )
    measured = f"{where}: {_gib(free)} free"
    figures = {"free": free, "needed": needed}
    if free < needed:
        return Verdict(
            check,
            measured,
            expected,
            FAIL,
            f"the checkpoints need {_gib(needed)}: free space on that disk or pass "
            "--out to a larger one",
            figures,
        )
    if free < needed * DISK_MARGIN:
        return Verdict(
            check,
            measured,
            expected,
            WARN,
            "little room beyond the checkpoints: free space or pass --out to a larger disk",
            figures,
        )
    return Verdict(check, measured, expected, OK, figures=figures)


def judge_shm(free: int | None, needed: int, workers: int) -> Verdict:
    """/dev/shm against the batches the loader workers hold."""
    check = "shared memory (/dev/shm)"
    expected = (
        f">= {_gib(needed * SHM_MARGIN)} ({workers} workers/rank x {PREFETCH_FACTOR} batches)"
    )
    if needed == 0:
        return Verdict(check, "no loader workers", "none needed", OK)
    if free is None:
        return Verdict(
            check,
            "no /dev/shm",
            expected,
            WARN,
            "loader workers pass batches through /dev/shm: mount one, or set data.workers = 0",
        )
    measured = f"{_gib(free)} free"
    figures = {"free": free, "needed": needed}
    if free < needed:
        return Verdict(
            check,
            measured,
            expected,
            FAIL,
            "the loaders would die with 'bus error': in Docker run with "
            f"--shm-size={int(needed * SHM_MARGIN / GiB) + 1}g (or --ipc=host), or "
            "lower data.workers",
            figures,
        )
    if free < needed * SHM_MARGIN:
        return Verdict(
            check,
            measured,
            expected,
            WARN,
            "little headroom: raise --shm-size or lower data.workers",
            figures,
        )
    return Verdict(check, measured, expected, OK, figures=figures)

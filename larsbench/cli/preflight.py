"""`larsbench run`'s checks of this machine against a plan: loader, devices, data, model names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any


def unknown_archs(archs: set[str]) -> list[str] | None:
    """Model names torchvision lacks, asked of a short-lived subprocess (keeps torch out of
    this process); None when torchvision cannot be asked here."""
    cmd = [sys.executable, "-m", "larsbench.train.model", *sorted(archs)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode not in (0, 1):
        return None
    return done.stdout.split()


def preflight(
    plan: Any, machine: Any, cache_dir: Path | None = None
) -> tuple[list[str], list[str]]:
    """(errors, warnings) about what the profile needs that this machine may lack. An
    ImageFolder is scanned once; with `cache_dir` its file list is kept there for the ranks."""
    from larsbench.extras import dali_installed, dali_missing
    from larsbench.plan.sizes import dataset_sizes
    from larsbench.plan.steps import plan_run

    errors: list[str] = []
    warnings: list[str] = []
    for run in plan.runs:
        if run.data.loader == "dali" and not dali_installed():
            errors.append(dali_missing(str(plan.profile_path)))
        if run.device == "cuda" and machine.gpus == 0:
            warnings.append(f"{run.run_id}: launch.device is cuda but no GPU is visible here")
        if run.device == "cuda" and machine.gpus and run.nproc_per_node > machine.gpus:
            warnings.append(
                f"{run.run_id}: launch.nproc_per_node {run.nproc_per_node} > {machine.gpus} "
                "visible GPUs"
            )
        sizes = dataset_sizes(run.data, cache_dir)
        if sizes is not None and plan_run(run, *sizes).steps_per_epoch == 0:
            errors.append(
                f"{plan.profile_path}: train.batch_size: {run.train.batch_size} is larger than "
                f"the {sizes[0]} training images ({run.per_rank_batch} per rank x "
                f"{run.world_size} ranks): run {run.run_id} would take no step"
            )
        if sizes is None:
            warnings.append(
                f"{run.run_id}: data.path {run.data.path!r} has no train/ and val/ here; "
                "steps per epoch unknown"
            )
    bad = unknown_archs({r.model.arch for r in plan.runs})
    if bad:
        errors.append(
            f"{plan.profile_path}: model.arch: torchvision has no classification model "
            f"{', '.join(map(repr, bad))} (python -m larsbench.train.model lists them)"
        )
    elif bad is None:
        warnings.append("torchvision could not be asked here; model.arch not checked")
    return list(dict.fromkeys(errors)), list(dict.fromkeys(warnings))

"""The launching node (visible GPUs, CPU cores) and how a profile's launch resolves on it."""

from __future__ import annotations

import os
from dataclasses import dataclass

from larsbench.profile.schema import LaunchConfig

CPU_RANKS_CAP = 4


@dataclass(frozen=True)
class Machine:
    """What the node that launches offers: visible GPUs and CPU cores."""

    gpus: int
    cpus: int

    @classmethod
    def here(cls) -> Machine:
        from larsbench.telemetry.nvml import visible_gpu_count

        return cls(gpus=visible_gpu_count(), cpus=os.cpu_count() or 1)


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

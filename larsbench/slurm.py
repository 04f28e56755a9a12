"""`larsbench slurm`: an sbatch script that runs a profile's sweep with one task per node."""

from __future__ import annotations

import shlex
from pathlib import Path

from larsbench.sweep.prepare import SweepPlan

RDZV_PORT = 29500


def sbatch_script(
    plan: SweepPlan,
    out: Path,
    time_limit: str = "72:00:00",
    partition: str = "",
    overrides: list[str] | None = None,
) -> str:
    """The script: N nodes, one task per node; each task runs `larsbench run` with its
    SLURM_NODEID as node rank and node 0's host as the rendezvous endpoint."""
    run = plan.runs[0]
    nnodes = run.launch.nnodes
    gpus = run.nproc_per_node if run.device == "cuda" else 0
    sets = [f"--set {shlex.quote(o)}" for o in overrides or []]
    command = " ".join(
        [
            "larsbench run",
            f"--profile {shlex.quote(str(plan.profile_path.resolve()))}",
            f"--out {shlex.quote(str(out))}",
            *sets,
            '--set "launch.rdzv_endpoint=${HEAD_NODE}:' + str(RDZV_PORT) + '"',
            '--node-rank "$SLURM_NODEID"',
        ]
    )
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name=larsbench-{plan.profile.name}",
        f"#SBATCH --nodes={nnodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --time={time_limit}",
        f"#SBATCH --output=larsbench-{plan.profile.name}-%j.out",
    ]
    if gpus:
        lines.append(f"#SBATCH --gpus-per-node={gpus}")
        lines.append("#SBATCH --exclusive")
    if partition:
        lines.append(f"#SBATCH --partition={partition}")
    lines += [
        "",
        f"# {plan.profile.name}: {len(plan.runs)} runs, {nnodes} node(s) x "
        f"{run.nproc_per_node} process(es). --out must be on a filesystem every node shares.",
        "set -euo pipefail",
        f"mkdir -p {shlex.quote(str(out))}",
        'HEAD_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        "export HEAD_NODE",
        "# NCCL: turn hangs into errors and keep a flight record of the last collectives.",
        "export TORCH_NCCL_ASYNC_ERROR_HANDLING=1 TORCH_NCCL_TRACE_BUFFER_SIZE=2000",
        "export TORCH_NCCL_DUMP_ON_TIMEOUT=1",
        f"srun --ntasks-per-node=1 bash -c {shlex.quote(command)}",
        "",
    ]
    return "\n".join(lines)

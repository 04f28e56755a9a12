"""`larsbench slurm`: the sbatch script for a multi-node sweep."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from larsbench.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_sbatch_script_has_one_task_per_node_and_the_node_rank(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "slurm",
            "--profile",
            str(ROOT / "profiles" / "seed-larc.toml"),
            "--out",
            str(tmp_path / "sweep"),
            "--set",
            "launch.nnodes=2",
            "--set",
            "launch.rdzv_endpoint=head:29500",
            "--partition",
            "gpu",
        ]
    )
    assert code == 0
    script = capsys.readouterr().out
    assert script.startswith("#!/bin/bash\n")
    for line in (
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --partition=gpu",
    ):
        assert line in script.splitlines()
    srun = next(line for line in script.splitlines() if line.startswith("srun "))
    assert '--node-rank "$SLURM_NODEID"' in srun and "${HEAD_NODE}:29500" in srun
    assert f"--out {tmp_path / 'sweep'}" in srun
    (tmp_path / "job.sh").write_text(script)
    assert subprocess.run(["bash", "-n", str(tmp_path / "job.sh")]).returncode == 0


def test_sbatch_for_a_bad_profile_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[train]\nepoch = 3\n')
    assert main(["slurm", "--profile", str(bad)]) == 2
    assert "train.epoch: unknown key" in capsys.readouterr().err

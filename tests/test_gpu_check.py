"""benchmarks/gpu_check.sh's doctor command is one the profile accepts (it had drifted: the
profile moved to data.loader = "dali", which refuses synthetic data, and the script kept
asking for synthetic data, so the first GPU lent would have spent its minutes on exit 2)."""

from __future__ import annotations

import shlex
from pathlib import Path

from larsbench.plan.machine import Machine
from larsbench.profile.overrides import parse_override
from larsbench.sweep.prepare import prepare_sweep

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def doctor_arguments() -> list[str]:
    """The arguments after `doctor` on the script's command line (not its comments)."""
    text = SCRIPT.read_text(encoding="utf-8").replace("\\\n", " ")
    line = next(
        ln
        for ln in text.splitlines()
        if not ln.lstrip().startswith("#") and "larsbench.cli doctor" in ln
    )
    words = shlex.split(line.split("||")[0].split("|")[0])
    return words[words.index("doctor") + 1 :]


def test_the_gpu_check_asks_the_doctor_for_what_the_profile_accepts() -> None:
    args = doctor_arguments()
    profile = ROOT / args[args.index("--profile") + 1]
    sets = [args[i + 1] for i, word in enumerate(args) if word == "--set"]
    assert "data.source=synthetic" in sets  # what a bare machine has
    plan = prepare_sweep(profile, [parse_override(s) for s in sets], Machine(gpus=1, cpus=16))
    assert plan.runs and all(run.device == "cuda" for run in plan.runs)
    assert all(run.data.source == "synthetic" for run in plan.runs)

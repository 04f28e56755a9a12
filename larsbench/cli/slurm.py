"""`larsbench slurm`: print the sbatch script that runs a profile's sweep on N nodes."""

from __future__ import annotations

import argparse
from pathlib import Path

from larsbench.cli.output import EXIT_OK, fail
from larsbench.plan.machine import Machine
from larsbench.profile.errors import ConfigError
from larsbench.profile.overrides import parse_override
from larsbench.slurm import sbatch_script
from larsbench.sweep.prepare import prepare_sweep


def cmd_slurm(args: argparse.Namespace) -> int:
    try:
        overrides = [parse_override(item) for item in args.overrides]
        # The script runs on the cluster's nodes, not here: resolve as a GPU node would.
        plan = prepare_sweep(args.profile, overrides, Machine(gpus=8, cpus=64))
    except ConfigError as err:
        return fail(str(err))
    out = args.out or Path("runs") / plan.profile.name
    print(sbatch_script(plan, out.resolve(), args.time, args.partition, args.overrides), end="")
    return EXIT_OK

"""The `larsbench` parser and main(); a command's module is imported only when it runs."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from larsbench import __version__
from larsbench.cli.output import EXIT_OK, fail


def default_profile() -> Path:
    """The embedded default: the CPU smoke profile shipped with the package."""
    from larsbench.profile.files import shipped_profiles_dir

    return shipped_profiles_dir() / "smoke.toml"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="larsbench",
        description="Large-batch training with and without LARC: configure, launch, watch, "
        "compare. With no command, opens the terminal app.",
    )
    parser.add_argument("--version", action="version", version=f"larsbench {__version__}")
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run a profile's sweep headless")
    run.add_argument("--profile", type=Path, default=None, help="profile TOML (default: smoke)")
    run.add_argument("--out", type=Path, default=None, help="sweep directory (runs/NAME)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key for every run, e.g. train.epochs=5 or sweep.train.batch_size=[64]",
    )
    run.add_argument("--dry-run", action="store_true", help="print the expanded runs and exit")
    run.add_argument(
        "--throughput",
        action="store_true",
        help="quick throughput mode: timed steps on synthetic data, no evaluation "
        "(the same as --set train.mode=throughput)",
    )
    run.add_argument(
        "--fresh",
        action="store_true",
        help="start unfinished runs over instead of resuming their checkpoints",
    )
    run.add_argument(
        "--node-rank",
        type=int,
        default=int(os.environ.get("SLURM_NODEID", "0")),
        help="this node's rank when launch.nnodes > 1 (default: $SLURM_NODEID or 0); node 0 "
        "writes the sweep's files, the others join each run's rendezvous",
    )
    run.add_argument(
        "--stall-seconds",
        type=float,
        default=120.0,
        help="flag a run stalled in status.json when no training event comes for this long "
        "(at least; 10x the usual gap when that is longer)",
    )
    output = run.add_mutually_exclusive_group()
    output.add_argument(
        "--quiet", action="store_true", help="one line per finished run, no progress"
    )
    output.add_argument(
        "--json-progress",
        action="store_true",
        help="one JSON object per line on stdout (docs/json-progress.md); messages to stderr",
    )
    run.add_argument("--no-telemetry", action="store_true", help="do not sample the hardware")
    run.add_argument(
        "--sample-interval", type=float, default=1.0, help="telemetry period (s, >= 0.25)"
    )

    watch = sub.add_parser("watch", help="the terminal app attached to a sweep or run directory")
    watch.add_argument("dir", type=Path)

    slurm = sub.add_parser("slurm", help="print an sbatch script running a profile on N nodes")
    slurm.add_argument("--profile", type=Path, required=True)
    slurm.add_argument("--out", type=Path, default=None, help="shared sweep directory")
    slurm.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    slurm.add_argument("--time", default="72:00:00", help="Slurm time limit")
    slurm.add_argument("--partition", default="", help="Slurm partition")

    report = sub.add_parser("report", help="write the summary of a sweep again from disk")
    report.add_argument("dir", type=Path)

    export = sub.add_parser("export", help="write a sweep's or run's events for another tool")
    export.add_argument("format", choices=["tensorboard"], help="what to write")
    export.add_argument("dir", type=Path, help="a sweep or run directory, finished or running")
    export.add_argument(
        "--out", type=Path, default=None, help="TensorBoard log dir (default: SWEEP/tensorboard)"
    )
    doctor = sub.add_parser(
        "doctor", help="preflight this node for a profile: a verdict table (docs/doctor.md)"
    )
    doctor.add_argument("--profile", type=Path, default=None, help="profile TOML (default: smoke)")
    doctor.add_argument("--quick", action="store_true", help="fewer steps and smaller messages")
    doctor.add_argument("--json", type=Path, default=None, help="also write the verdicts here")
    doctor.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a profile key, as for run (e.g. launch.nproc_per_node=auto)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        from larsbench.cli.run import cmd_run

        return cmd_run(args, args.profile or default_profile())
    if args.command == "slurm":
        from larsbench.cli.slurm import cmd_slurm

        return cmd_slurm(args)
    if args.command == "report":
        from larsbench.cli.report import cmd_report

        return cmd_report(args.dir)
    if args.command == "export":
        from larsbench.cli.report import cmd_export

        return cmd_export(args.dir, args.out)
    if args.command == "doctor":
        from larsbench.cli.doctor import cmd_doctor

        return cmd_doctor(args.profile or default_profile(), args.quick, args.json, args.overrides)
    if args.command == "watch":
        if not args.dir.is_dir():
            return fail(f"{args.dir}: no such directory")
        return open_app(args.dir)
    return open_app(None)


def open_app(watch_dir: Path | None) -> int:
    from larsbench.tui.app import run_app

    run_app(watch_dir=watch_dir)
    return EXIT_OK

"""The `larsbench` command line: the terminal app, run, watch, report and export."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from larsbench import __version__
from larsbench.profile.files import shipped_profiles_dir

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def default_profile() -> Path:
    """The embedded default: the CPU smoke profile shipped with the package."""
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


def make_console(stderr: bool = False) -> Any:
    """A rich console; when output is a file or pipe, wide enough that tables never wrap."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr) if stream.isatty() else Console(stderr=stderr, width=200)


def fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"larsbench: error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "slurm":
        return cmd_slurm(args)
    if args.command == "report":
        return cmd_report(args.dir)
    if args.command == "export":
        return cmd_export(args.dir, args.out)
    if args.command == "doctor":
        return cmd_doctor(args.profile or default_profile(), args.quick, args.json, args.overrides)
    if args.command == "watch":
        if not args.dir.is_dir():
            return fail(f"{args.dir}: no such directory")
        return open_app(args.dir)
    return open_app(None)


def open_app(watch_dir: Path | None) -> int:
    from larsbench.tui import run_app

    run_app(watch_dir=watch_dir)
    return EXIT_OK


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


def print_feed_checks(console: Any, plan: Any, out: Any, cache: Path | None) -> None:
    """The feed check of each distinct loader setup (larsbench/feed.py), one sentence each;
    kept in SWEEP/feed.json for summary.md when the sweep folder exists."""
    from rich.markup import escape

    from larsbench.feed import feed_checks, feed_file
    from larsbench.rundir import write_json_atomic

    throughput_dir = out.root.parent / (plan.profile.name + "-throughput")
    verdicts = []
    for run_ids, check in feed_checks(plan.runs, cache.parent if cache else None, throughput_dir):
        text = check if isinstance(check, str) else check.sentence
        bad = isinstance(check, str) or not check.ok
        console.print(f"[{'yellow' if bad else 'green'}]feed:[/] {escape(text)}", highlight=False)
        verdicts.append({"runs": run_ids, "sentence": text, "ok": not bad})
    if verdicts and cache is not None:
        write_json_atomic(feed_file(out.root), verdicts)


def cmd_run(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from larsbench.headless import HeadlessView, group_run_warnings, plan_table
    from larsbench.json_progress import JsonProgressView
    from larsbench.plan.machine import Machine
    from larsbench.profile.errors import ConfigError
    from larsbench.profile.overrides import parse_override
    from larsbench.rundir import SweepPaths
    from larsbench.sweep import SweepBusyError, SweepRunner, prepare_sweep

    profile_path = args.profile or default_profile()
    if args.sample_interval < 0.25:
        return fail(f"--sample-interval {args.sample_interval}: the floor is 0.25 s")
    if not args.stall_seconds > 0:
        return fail(f"--stall-seconds {args.stall_seconds}: give a number of seconds > 0")
    machine = Machine.here()
    try:
        overrides = [parse_override(item) for item in args.overrides]
        if args.throughput:
            overrides.append(("train.mode", "throughput"))
        plan = prepare_sweep(profile_path, overrides, machine)
    except ConfigError as err:
        return fail(str(err))
    console = make_console(stderr=args.json_progress)
    throughput = any(r.train.mode == "throughput" for r in plan.runs)
    out = SweepPaths(
        args.out or Path("runs") / (plan.profile.name + ("-throughput" if throughput else ""))
    )
    # A dry run writes nothing: its scan is shared within this process only.
    cache = None if args.dry_run else out.file_lists
    errors, warnings = preflight(plan, machine, cache)
    warnings = group_run_warnings(warnings, [r.run_id for r in plan.runs])
    for w in warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)
    if not errors:
        print_feed_checks(console, plan, out, cache)
    if args.dry_run:
        mode = (
            " in throughput mode (steps: warm-up + timed)"
            if any(r.train.mode == "throughput" for r in plan.runs)
            else ""
        )
        console.print(f"[bold]{plan.profile.name}[/]: {len(plan.runs)} runs{mode} ({profile_path})")
        console.print(plan_table(plan.runs))
        for e in errors:
            console.print(f"[red]error:[/] {escape(e)}", highlight=False)
        return EXIT_USAGE if errors else EXIT_OK
    if errors:
        return fail("\n".join(errors))
    nnodes = max(r.launch.nnodes for r in plan.runs)
    if not 0 <= args.node_rank < nnodes:
        return fail(
            f"--node-rank {args.node_rank}: launch.nnodes is {nnodes}; allowed 0..{nnodes - 1}"
        )
    blocking = [w for w in warnings if "no GPU is visible" in w or "has no train/" in w]
    if blocking:
        return fail("cannot launch here:\n  " + "\n  ".join(blocking))
    try:
        if out.root.exists() and not out.root.is_dir():
            return fail(f"--out {out.root}: is a file, not a folder")
        out.root.mkdir(parents=True, exist_ok=True)
        probe = out.root / ".larsbench-write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        return fail(f"--out {out.root}: cannot write there ({err.strerror or err})")
    view = JsonProgressView() if args.json_progress else HeadlessView(console, quiet=args.quiet)
    observer: Any = view
    if plan.profile.export.tensorboard and args.node_rank == 0:
        from larsbench.export.tensorboard import (
            TensorBoardObserver,
            TensorBoardUnavailable,
            default_out,
            require_writer,
        )
        from larsbench.sweep import FanOutObserver

        try:
            require_writer()
        except TensorBoardUnavailable as err:
            return fail(f"{profile_path}: export.tensorboard: {err}")
        observer = FanOutObserver([view, TensorBoardObserver(default_out(out.root))])
    runner = SweepRunner(
        plan,
        out,
        observer,
        sample_seconds=args.sample_interval,
        telemetry=not args.no_telemetry,
        fresh=args.fresh,
        stall_seconds=args.stall_seconds,
        node_rank=args.node_rank,
    )
    interrupted: list[int] = []

    def on_stop(signum: int, _frame: object) -> None:
        interrupted.append(signum)
        runner.stop_sweep(f"stopped by {signal.Signals(signum).name}")

    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGUSR1, lambda *_: runner.stop_run("run stopped by user (SIGUSR1)"))
    try:
        results = runner.run()
    except (ConfigError, SweepBusyError) as err:
        return fail(str(err))
    except OSError as err:  # e.g. the disk filled: what is written stays readable
        where = f" {err.filename}" if err.filename else ""
        return fail(
            f"writing{where}: {err.strerror or err}. Runs finished so far are in {out.root}; "
            "fix this and run the same command again to resume.",
            EXIT_RUN_FAILED,
        )
    if interrupted:
        return EXIT_INTERRUPTED
    failed = [r for r in results if r.status not in ("completed",)]
    return EXIT_RUN_FAILED if failed else EXIT_OK


def cmd_slurm(args: argparse.Namespace) -> int:
    from larsbench.plan.machine import Machine
    from larsbench.profile.errors import ConfigError
    from larsbench.profile.overrides import parse_override
    from larsbench.slurm import sbatch_script
    from larsbench.sweep import prepare_sweep

    try:
        overrides = [parse_override(item) for item in args.overrides]
        # The script runs on the cluster's nodes, not here: resolve as a GPU node would.
        plan = prepare_sweep(args.profile, overrides, Machine(gpus=8, cpus=64))
    except ConfigError as err:
        return fail(str(err))
    out = args.out or Path("runs") / plan.profile.name
    print(sbatch_script(plan, out.resolve(), args.time, args.partition, args.overrides), end="")
    return EXIT_OK


def cmd_export(directory: Path, out: Path | None) -> int:
    from larsbench.export.tensorboard import TensorBoardUnavailable, export_tensorboard
    from larsbench.rundir import is_run_dir, is_sweep_dir

    if not (is_sweep_dir(directory) or is_run_dir(directory)):
        return fail(f"{directory}: not a sweep or run directory (no sweep.json, config.json)")
    try:
        written = export_tensorboard(directory, out)
    except TensorBoardUnavailable as err:
        return fail(str(err))
    print(f"tensorboard: {written} (tensorboard --logdir {written})")
    return EXIT_OK


def cmd_report(directory: Path) -> int:
    from larsbench.profile.errors import ConfigError
    from larsbench.rundir import is_run_dir, is_sweep_dir
    from larsbench.summary import format_console_table, write_summary

    if not is_sweep_dir(directory):
        hint = (
            f"; it is a run folder: report its sweep folder {directory.parent}"
            if is_run_dir(directory)
            else ""
        )
        return fail(f"{directory}: not a sweep directory (no sweep.json){hint}")
    try:
        summary = write_summary(directory)
    except ConfigError as err:
        return fail(str(err))
    except OSError as err:
        return fail(f"writing {err.filename or directory}: {err.strerror or err}", EXIT_RUN_FAILED)
    console = make_console()
    for problem in summary.unreadable:
        console.print(f"[yellow]unreadable:[/] {problem}", highlight=False)
    console.print(format_console_table(summary.rows))
    if summary.recommendation:
        console.print(summary.recommendation, highlight=False)
    console.print(f"summary: {directory / 'summary.md'} (.csv .json .png)")
    return EXIT_OK


def cmd_doctor(profile: Path, quick: bool, json_path: Path | None, sets: list[str]) -> int:
    from larsbench.doctor.plans import request_stop, stop_requested
    from larsbench.doctor.preflight import run_doctor
    from larsbench.doctor.report import closing_line, verdict_table, write_report
    from larsbench.profile.errors import ConfigError
    from larsbench.profile.overrides import parse_override

    console = make_console()

    def on_stop(signum: int, _frame: object) -> None:  # stop the check's torchrun group
        request_stop(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, on_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        overrides = [parse_override(item) for item in sets]
        report, kept = run_doctor(
            profile, quick, overrides, lambda line: print(line, file=sys.stderr)
        )
    except ConfigError as err:
        return fail(str(err))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print(verdict_table(report))
    console.print(closing_line(report), highlight=False)
    if kept is not None:
        console.print(f"logs of the failed checks: {kept}", highlight=False)
    if json_path is not None:
        try:
            write_report(report, json_path)
        except OSError as err:
            return fail(f"--json {json_path}: cannot write there ({err.strerror or err})")
        console.print(f"verdicts: {json_path}", highlight=False)
    return EXIT_INTERRUPTED if stop_requested() else report.exit_code


if __name__ == "__main__":
    sys.exit(main())

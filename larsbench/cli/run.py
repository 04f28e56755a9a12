"""`larsbench run`: check the plan, then run the sweep headless with a console or JSON view."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Any

from rich.markup import escape

from larsbench.cli.output import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_USAGE,
    fail,
    make_console,
)
from larsbench.cli.preflight import preflight
from larsbench.feed import feed_checks, feed_file
from larsbench.headless import HeadlessView, group_run_warnings, plan_table
from larsbench.json_progress import JsonProgressView
from larsbench.plan.machine import Machine
from larsbench.profile.errors import ConfigError
from larsbench.profile.overrides import parse_override
from larsbench.rundir import SweepPaths, write_json_atomic
from larsbench.runner_file import SweepBusyError
from larsbench.sweep.prepare import prepare_sweep
from larsbench.sweep.runner import SweepRunner


def print_feed_checks(console: Any, plan: Any, out: Any, cache: Path | None) -> None:
    """The feed check of each distinct loader setup (larsbench/feed.py), one sentence each;
    kept in SWEEP/feed.json for summary.md when the sweep folder exists."""
    throughput_dir = out.root.parent / (plan.profile.name + "-throughput")
    verdicts = []
    for run_ids, check in feed_checks(plan.runs, cache.parent if cache else None, throughput_dir):
        text = check if isinstance(check, str) else check.sentence
        bad = isinstance(check, str) or not check.ok
        console.print(f"[{'yellow' if bad else 'green'}]feed:[/] {escape(text)}", highlight=False)
        verdicts.append({"runs": run_ids, "sentence": text, "ok": not bad})
    if verdicts and cache is not None:
        write_json_atomic(feed_file(out.root), verdicts)


def cmd_run(args: argparse.Namespace, profile_path: Path) -> int:
    """`larsbench run`: the sweep headless, in this process (`profile_path`: --profile)."""
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
        from larsbench.sweep.observers import FanOutObserver

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

"""The console view of `larsbench run`: rich progress on a terminal, plain lines otherwise,
one line per run with --quiet."""

from __future__ import annotations

import math
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from larsbench.events import SourcedEvent
from larsbench.format import DASH, clock, percent, short_rate
from larsbench.live.fold import RunFold
from larsbench.plan.run import RunConfig
from larsbench.plan.steps import planned_steps
from larsbench.results import RunResult
from larsbench.rundir import RunPaths, SweepPaths
from larsbench.sweep.prepare import SweepPlan


def group_run_warnings(warnings: list[str], run_ids: list[str]) -> list[str]:
    """One line per distinct message: `RUN: message` warnings that repeat for several runs
    become `all 12 runs: message` or `3 runs (a, b, c): message`, in first-seen order."""
    by_message: dict[str, list[str]] = {}
    for warning in warnings:
        run_id = max((r for r in run_ids if warning.startswith(f"{r}: ")), key=len, default="")
        message = warning.removeprefix(f"{run_id}: ") if run_id else warning
        ids = by_message.setdefault(message, [])
        if run_id and run_id not in ids:
            ids.append(run_id)
    lines = []
    for message, ids in by_message.items():
        if len(ids) <= 1:
            lines.append(f"{ids[0]}: {message}" if ids else message)
        elif len(ids) == len(set(run_ids)):
            lines.append(f"all {len(ids)} runs: {message}")
        else:
            shown = ", ".join(ids[:4]) + (", ..." if len(ids) > 4 else "")
            lines.append(f"{len(ids)} runs ({shown}): {message}")
    return lines


def per_rank(run: RunConfig) -> str:
    """A rank's share of the batch, and the micro-batches it runs it in when it accumulates."""
    k = run.train.accumulate_steps
    return str(run.per_rank_batch) + (f" = {k} x {run.micro_batch}" if k > 1 else "")


def plan_table(runs: list[RunConfig]) -> Table:
    """The expanded runs of a profile, as `--dry-run` prints them."""
    table = Table(title=None, header_style="bold")
    for col in (
        "run",
        "world",
        "batch",
        "per GPU",
        "lr",
        "optimizer",
        "tc",
        "steps/ep",
        "warmup",
        "steps",
        "device",
    ):
        table.add_column(col, justify="left" if col in ("run", "optimizer", "device") else "right")
    for run in runs:
        plan = planned_steps(run)  # a throughput run: its windows, and the epoch they project to
        larc = run.optimizer.name == "larc"
        table.add_row(
            run.run_id,
            f"{run.nproc_per_node}x{run.launch.nnodes}",
            str(run.train.batch_size),
            per_rank(run),
            f"{run.lr:g}",
            run.optimizer.name + (" (clip)" if larc and run.optimizer.clip else ""),
            f"{run.optimizer.trust_coefficient:g}" if larc else "",
            str(plan.steps_per_epoch) if plan else "?",
            str(plan.warmup_steps) if plan else "?",
            str(plan.total_steps) if plan else "?",
            f"{run.device}/{run.backend}",
        )
    return table


def summary_despite_reference(out: SweepPaths, say: Any) -> Any:
    """The sweep's summary; when its profile.toml's [reference] was broken while the sweep
    ran, `say` why and write the summary without it (`larsbench report` tries it again)."""
    from larsbench.profile.errors import ConfigError
    from larsbench.summary.files import write_summary

    try:
        return write_summary(out.root)
    except ConfigError as err:
        say(f"warning: summary without the reference table: {err}")
        return write_summary(out.root, with_reference=False)


class HeadlessView:
    """Follows a sweep from the runner's callbacks; the same events the terminal app reads."""

    PLAIN_EVERY_SECONDS = 10.0

    def __init__(self, console: Console | None = None, quiet: bool = False) -> None:
        self.console = console or Console()
        # quiet: one line per run as it ends, then where the summary is; no progress
        self.quiet = quiet
        self.live = self.console.is_terminal and not quiet
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.fold = RunFold()  # the current run's training events
        self._compiles = False  # the run compiles the model or LARC's update before training
        self._compiles_model = False
        self._last_line = 0.0
        self._label = ""

    # --- SweepObserver ---------------------------------------------------------------------
    def sweep_started(self, plan: SweepPlan, out: SweepPaths) -> None:
        if self.quiet:
            return
        self.console.print(
            f"[bold]larsbench[/] sweep [cyan]{plan.profile.name}[/]: {len(plan.runs)} runs "
            f"-> {out.root}"
        )

    def run_skipped(self, run: RunConfig, result: RunResult) -> None:
        self.console.print(
            f"  {run.run_id}: already completed "
            f"(top-1 {percent(result.top1, missing=DASH)}), skipped"
        )

    def run_started(self, run: RunConfig, paths: RunPaths, index: int, total: int) -> None:
        self.fold = RunFold()
        larc = run.optimizer.name == "larc"
        self._compiles_model = run.model.compile
        self._compiles = run.model.compile or (
            larc and (run.optimizer.fused or run.optimizer.fold_into_sgd)
        )
        self._label = escape(f"[{index}/{total}] {run.run_id}")
        if self.quiet:
            return
        self.console.print(
            f"{self._label}: {run.world_size} ranks ({run.device}/{run.backend}), "
            f"batch {run.train.batch_size} ({per_rank(run)}/rank), lr {run.lr:g}, "
            f"{run.optimizer.name}"
            + (f" tc {run.optimizer.trust_coefficient:g}" if run.optimizer.name == "larc" else "")
        )
        if self.live:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(run.run_id, total=None, stats="starting torchrun")

    def run_events(self, run: RunConfig, events: list[SourcedEvent]) -> None:
        if self.quiet:
            return
        for sourced in events:
            if sourced.source == "rank0":
                self._training_event(sourced.event)
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, stats=self._stats())
        elif (
            events
            and self.fold.last_step
            and time.monotonic() - self._last_line > self.PLAIN_EVERY_SECONDS
        ):
            self._last_line = time.monotonic()
            self.console.print(f"  {run.run_id}  {self._stats()}", highlight=False)

    def run_finished(self, run: RunConfig, result: RunResult) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress, self.task = None, None
        colour = {"completed": "green", "stopped": "yellow"}.get(result.status, "red")
        if result.mode == "throughput":
            line = (
                f"{self._label}: [{colour}]{result.status}[/] {short_rate(result.images_per_sec)} "
                f"img/s ({short_rate(result.images_per_sec_per_gpu)}/GPU), step "
                f"{1000 * result.step_seconds:.1f} ms, optimizer "
                f"{100 * result.optimizer_share:.1f}%, all-reduce wait "
                f"{1000 * result.communication_wait_seconds:.1f} ms, "
                f"projected run {clock(result.projected_run_seconds)}"
            )
        else:
            line = (
                f"{self._label}: [{colour}]{result.status}[/] "
                f"top-1 {percent(result.top1, missing=DASH)} "
                f"(best {percent(result.best_top1, missing=DASH)}), "
                f"{short_rate(result.images_per_sec)} img/s, "
                f"train {clock(result.train_seconds)}"
            )
        if result.reason:
            line += f"\n    reason: {escape(result.reason)}"
        self.console.print(line, highlight=False)

    def sweep_finished(self, results: list[RunResult], out: SweepPaths) -> None:
        from larsbench.summary.table import format_console_table

        summary = summary_despite_reference(
            out, lambda message: self.console.print(escape(message), highlight=False)
        )
        if self.quiet:
            self.console.print(f"summary: {out.summary('md')} (.csv .json .png)")
            return
        self.console.print()
        self.console.print(format_console_table(summary.rows))
        if summary.recommendation:
            self.console.print(summary.recommendation, highlight=False)
        self.console.print(f"summary: {out.summary('md')} (.csv .json .png)")

    # --- printing ------------------------------------------------------------------------
    def _training_event(self, e: dict[str, Any]) -> None:
        """Fold one rank-0 event (live.fold decides what it means), then show it."""
        self.fold.add(e)
        kind = e.get("kind")
        if kind == "compile":
            self.console.print(
                f"  {self._label}: compiled {_COMPILED.get(e.get('what'), e.get('what'))} "
                f"in {e.get('seconds', 0.0):.1f} s",
                highlight=False,
            )
        elif kind == "run_start":
            if self.progress is not None and self.task is not None:
                self.progress.update(self.task, total=e.get("total_steps"))
        elif kind == "step":
            if self.progress is not None and self.task is not None:
                self.progress.update(self.task, completed=e.get("step", 0))
        elif kind == "eval" and not self.live:
            self.console.print(
                f"  epoch {e.get('epoch')}/{self._planned('epochs')}: "
                f"top-1 {percent(e.get('top1'), missing=DASH)} "
                f"top-5 {percent(e.get('top5'), missing=DASH)}",
                highlight=False,
            )

    def _planned(self, key: str) -> Any:
        """`epochs` or `total_steps` as the run_start event says, "?" before it."""
        return self.fold.start.get(key) if self.fold.starts else "?"

    def _stats(self) -> str:
        step = self.fold.last_step
        if not step:
            if not self.fold.started:
                return "starting torchrun"
            if self._compiles and not self.fold.compiles:
                what = "the model" if self._compiles_model else "LARC's fused update"
                return f"compiling {what} (once per run)"
            return "training, first steps"
        parts = [
            f"ep {step.get('epoch')}/{self._planned('epochs')}",
            f"step {step.get('step')}/{self._planned('total_steps')}",
            f"loss {step.get('loss', math.nan):.4f}",
            f"lr {step.get('lr', math.nan):.4g}",
            f"{short_rate(step.get('images_per_sec'))} img/s",
            f"wait {100 * step.get('data_wait_fraction', 0.0):.0f}%",
        ]
        ev = self.fold.last_eval
        if ev:
            parts.append(f"top-1 {percent(ev.get('top1'), missing=DASH)}")
        return "  ".join(parts)


# compile events' `what`, as the console names them
_COMPILED = {"model": "the model", "larc_fused_update": "LARC's fused update"}

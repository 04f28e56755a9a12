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
from larsbench.plan.run import RunConfig
from larsbench.plan.steps import planned_steps
from larsbench.results import RunResult
from larsbench.rundir import RunPaths, SweepPaths
from larsbench.sweep import SweepPlan


def fmt_rate(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x / 1000:.1f}k" if x >= 10_000 else f"{x:,.0f}"


def fmt_pct(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.2f}%"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


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
    from larsbench.summary import write_summary

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
        self.latest: dict[str, Any] = {}
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
            f"  {run.run_id}: already completed (top-1 {fmt_pct(result.top1)}), skipped"
        )

    def run_started(self, run: RunConfig, paths: RunPaths, index: int, total: int) -> None:
        self.latest = {}
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
            and "step" in self.latest
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
                f"{self._label}: [{colour}]{result.status}[/] {fmt_rate(result.images_per_sec)} "
                f"img/s ({fmt_rate(result.images_per_sec_per_gpu)}/GPU), step "
                f"{1000 * result.step_seconds:.1f} ms, optimizer "
                f"{100 * result.optimizer_share:.1f}%, all-reduce wait "
                f"{1000 * result.communication_wait_seconds:.1f} ms, "
                f"projected run {fmt_duration(result.projected_run_seconds)}"
            )
        else:
            line = (
                f"{self._label}: [{colour}]{result.status}[/] top-1 {fmt_pct(result.top1)} "
                f"(best {fmt_pct(result.best_top1)}), {fmt_rate(result.images_per_sec)} img/s, "
                f"train {fmt_duration(result.train_seconds)}"
            )
        if result.reason:
            line += f"\n    reason: {escape(result.reason)}"
        self.console.print(line, highlight=False)

    def sweep_finished(self, results: list[RunResult], out: SweepPaths) -> None:
        from larsbench.summary import format_console_table

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

    # --- folding ---------------------------------------------------------------------------
    def _training_event(self, e: dict[str, Any]) -> None:
        kind = e.get("kind")
        if kind in ("run_start", "resume"):
            self.latest["started"] = True
        if kind == "compile":
            self.latest["compile"] = e
            self.console.print(
                f"  {self._label}: compiled {_COMPILED.get(e.get('what'), e.get('what'))} "
                f"in {e.get('seconds', 0.0):.1f} s",
                highlight=False,
            )
        elif kind == "run_start":
            self.latest["total_steps"] = e.get("total_steps")
            self.latest["epochs"] = e.get("epochs")
            if self.progress is not None and self.task is not None:
                self.progress.update(self.task, total=e.get("total_steps"))
        elif kind == "step":
            self.latest["step"] = e
            if self.progress is not None and self.task is not None:
                self.progress.update(self.task, completed=e.get("step", 0))
        elif kind == "eval":
            self.latest["eval"] = e
            if not self.live:
                self.console.print(
                    f"  epoch {e.get('epoch')}/{self.latest.get('epochs', '?')}: "
                    f"top-1 {fmt_pct(e.get('top1'))} top-5 {fmt_pct(e.get('top5'))}",
                    highlight=False,
                )
        elif kind == "run_end" and e.get("status") != "completed":
            self.latest["end"] = e

    def _stats(self) -> str:
        step = self.latest.get("step")
        if not step:
            if not self.latest.get("started"):
                return "starting torchrun"
            if self._compiles and "compile" not in self.latest:
                what = "the model" if self._compiles_model else "LARC's fused update"
                return f"compiling {what} (once per run)"
            return "training, first steps"
        parts = [
            f"ep {step.get('epoch')}/{self.latest.get('epochs', '?')}",
            f"step {step.get('step')}/{self.latest.get('total_steps', '?')}",
            f"loss {step.get('loss', math.nan):.4f}",
            f"lr {step.get('lr', math.nan):.4g}",
            f"{fmt_rate(step.get('images_per_sec'))} img/s",
            f"wait {100 * step.get('data_wait_fraction', 0.0):.0f}%",
        ]
        ev = self.latest.get("eval")
        if ev:
            parts.append(f"top-1 {fmt_pct(ev.get('top1'))}")
        return "  ".join(parts)


# compile events' `what`, as the console names them
_COMPILED = {"model": "the model", "larc_fused_update": "LARC's fused update"}

"""The configure screen's run preview: the runs `larsbench run` would expand, as a table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import DataTable, Static

from larsbench.format import num

if TYPE_CHECKING:
    from larsbench.tui.form import FormResult, PreviewRow

PREVIEW_COLUMNS = ("run", "batch", "ranks x /rank", "lr", "optimizer", "tc", "epochs", "steps/ep")


def preview_title(result: FormResult) -> Text:
    """What the table shows: the runs, or how many errors stand in their way. Throughput
    runs say their steps (warm-up + timed), as the dry run does; steps/ep is then the
    epoch those steps project to."""
    if not result.ok:
        n = len(result.errors) + len(result.general)
        return Text(f"Runs: fix {n} error{'s' * (n != 1)} above", style="bold red")
    steps = sorted({r.throughput_steps for r in result.rows if r.throughput_steps is not None})
    mode = ""
    if steps:
        mode = f" in throughput mode ({', '.join(map(str, steps))} steps: warm-up + timed)"
    return Text(f"Runs ({len(result.rows)}){mode}, as `larsbench run` would expand them")


def preview_cells(r: PreviewRow) -> tuple[str | Text, ...]:
    """One run's row of the table, in PREVIEW_COLUMNS' order."""
    return (
        r.run_id,
        Text(str(r.batch_size), justify="right"),
        Text(f"{r.world_size} x {r.per_rank_batch}", justify="right"),
        Text(num(r.lr, ".4g"), justify="right"),
        r.optimizer,
        Text(f"{r.trust_coefficient:g}" if r.trust_coefficient is not None else ""),
        Text(str(r.epochs), justify="right"),
        Text(str(r.steps_per_epoch) if r.steps_per_epoch is not None else "?", justify="right"),
    )


def fill_preview(title: Static, table: DataTable, result: FormResult) -> None:
    """The title and the table of a validated form."""
    table.clear()
    title.update(preview_title(result))
    if result.ok:
        for row in result.rows:
            table.add_row(*preview_cells(row))

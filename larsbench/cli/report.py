"""`larsbench report` and `larsbench export`: a sweep's summary, its events for TensorBoard."""

from __future__ import annotations

from pathlib import Path

from larsbench.cli.output import EXIT_OK, EXIT_RUN_FAILED, fail, make_console
from larsbench.export.tensorboard import TensorBoardUnavailable, export_tensorboard
from larsbench.profile.errors import ConfigError
from larsbench.rundir import is_run_dir, is_sweep_dir
from larsbench.summary.files import write_summary
from larsbench.summary.table import format_console_table


def cmd_export(directory: Path, out: Path | None) -> int:
    if not (is_sweep_dir(directory) or is_run_dir(directory)):
        return fail(f"{directory}: not a sweep or run directory (no sweep.json, config.json)")
    try:
        written = export_tensorboard(directory, out)
    except TensorBoardUnavailable as err:
        return fail(str(err))
    print(f"tensorboard: {written} (tensorboard --logdir {written})")
    return EXIT_OK


def cmd_report(directory: Path) -> int:
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

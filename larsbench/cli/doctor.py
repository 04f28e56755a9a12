"""`larsbench doctor`: preflight this node for a profile and print the verdict table."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from larsbench.cli.output import EXIT_INTERRUPTED, fail, make_console
from larsbench.doctor.plans import request_stop, stop_requested
from larsbench.doctor.preflight import run_doctor
from larsbench.doctor.report import closing_line, verdict_table, write_report
from larsbench.profile.errors import ConfigError
from larsbench.profile.overrides import parse_override


def cmd_doctor(profile: Path, quick: bool, json_path: Path | None, sets: list[str]) -> int:
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

"""The verdict table (rich, for the console and the app) and the JSON file of a doctor run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from larsbench.doctor.verdict import FAIL, OK, WARN, DoctorReport
from larsbench.rundir import write_json_atomic

STYLES = {OK: "green", WARN: "yellow", FAIL: "bold red"}


def verdict_table(report: DoctorReport) -> Any:
    """check | measured | expected | verdict, with each warning's or failure's advice under it."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"larsbench doctor: {report.profile} on {report.node}", expand=False)
    table.add_column("check", no_wrap=True)
    table.add_column("measured")
    table.add_column("expected")
    table.add_column("verdict", no_wrap=True)
    for v in report.verdicts:
        measured = Text(v.measured)
        if v.advice:
            measured.append("\n" + v.advice, style=STYLES[v.status])
        table.add_row(v.check, measured, v.expected, Text(v.status, style=STYLES[v.status]))
    return table


def closing_line(report: DoctorReport) -> str:
    """One sentence: passed or not, counts, time."""
    counts = f"{len(report.failed)} failed, {len(report.warned)} warned"
    head = "doctor: FAIL" if report.failed else "doctor: PASS"
    return f"{head} ({counts}, {len(report.verdicts)} checks, {report.seconds:.0f} s)"


def write_report(report: DoctorReport, path: Path) -> None:
    """The report as JSON, atomically (what the terminal app reads back)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, report.to_dict())


def read_report(path: Path) -> DoctorReport:
    return DoctorReport.from_dict(json.loads(path.read_text(encoding="utf-8")))

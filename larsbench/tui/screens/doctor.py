"""The doctor dialog: `larsbench doctor --quick` for the form's profile, then its verdict table."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from larsbench.doctor.report import closing_line, read_report, verdict_table

_ENTRY = "import sys; from larsbench.cli import main; sys.exit(main())"


def doctor_command(profile: Path, json_path: Path, quick: bool) -> list[str]:
    """The same as typing `larsbench doctor --profile P [--quick] --json J`."""
    cmd = [sys.executable, "-c", _ENTRY, "doctor", "--profile", str(profile)]
    return cmd + ["--json", str(json_path)] + (["--quick"] if quick else [])


class DoctorScreen(ModalScreen[None]):
    """Runs the doctor in a subprocess (torch stays out of the app), shows its progress lines,
    then the verdict table it wrote. Escape closes; a doctor still running is stopped."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "close", "Close")]

    def __init__(self, profile: Path, quick: bool = True) -> None:
        super().__init__(classes="dialog-screen")
        self.profile = profile
        self.quick = quick
        self.json_path = Path(tempfile.mkdtemp(prefix="larsbench-doctor-app-")) / "doctor.json"
        self.process: subprocess.Popen[str] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog doctor"):
            yield Static(
                Text(f"larsbench doctor --quick --profile {self.profile}", style="bold"),
                id="doctor-title",
            )
            yield Static("starting ...", id="doctor-progress")
            with VerticalScroll(id="doctor-table-box"):
                yield Static(id="doctor-table")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close (esc)", id="doctor-close", compact=True)

    def on_mount(self) -> None:
        self.run_worker(self._run, thread=True, exclusive=True, group="doctor")

    def _run(self) -> None:
        cmd = doctor_command(self.profile, self.json_path, self.quick)
        self.process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        last = ""
        for line in self.process.stderr:
            last = line.rstrip()
            if last:
                self.app.call_from_thread(self._progress, last)
        code = self.process.wait()
        self.app.call_from_thread(self._finished, code, last)

    def _progress(self, line: str) -> None:
        self.query_one("#doctor-progress", Static).update(Text(line, style="dim"))

    def _finished(self, code: int, last: str) -> None:
        progress = self.query_one("#doctor-progress", Static)
        if not self.json_path.exists():
            progress.update(Text(f"doctor exited with {code}: {last}", style="bold red"))
            return
        report = read_report(self.json_path)
        style = "bold red" if report.failed else "bold green"
        progress.update(Text(closing_line(report), style=style))
        self.query_one("#doctor-table", Static).update(verdict_table(report))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "doctor-close":
            self.action_close()

    def action_close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)  # doctor stops its torchrun group
        else:
            shutil.rmtree(self.json_path.parent, ignore_errors=True)
        self.dismiss(None)

"""Small modal dialogs: confirm, quit (stop or leave the sweep), save-as name, help."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question; y or enter confirms, n or escape declines."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, yes: str = "Yes") -> None:
        super().__init__(classes="dialog-screen")
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error", compact=True)
                yield Button("Cancel (n)", id="no", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class QuitDialog(ModalScreen[str]):
    """Closing while a sweep runs: stop it, leave it running (re-attach later), or cancel."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "choose('stop')", "Stop the sweep"),
        Binding("l", "choose('leave')", "Leave it running"),
        Binding("escape,c", "choose('cancel')", "Cancel"),
    ]

    def __init__(self, sweep: str, where: str) -> None:
        super().__init__(classes="dialog-screen")
        self.sweep = sweep
        self.where = where

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(
                f"The sweep [b]{self.sweep}[/b] is still running.\n\n"
                f"Leave it running and re-attach later with\n  larsbench watch {self.where}\n"
                "or stop it now (the current run is marked stopped).",
                classes="dialog-text",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Stop sweep (s)", id="stop", variant="error", compact=True)
                yield Button("Leave running (l)", id="leave", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "cancel")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class NameDialog(ModalScreen[str | None]):
    """Asks for a profile name (save as profile)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, prompt: str, value: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.prompt = prompt
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.prompt, classes="dialog-text")
            yield Input(self.value, id="name", compact=True, restrict=r"[A-Za-z0-9_.\-]*")
            yield Static("enter saves, escape cancels", classes="dim")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


HELP_TEXT = """\
[b]larsbench[/b]: configure, launch, watch and compare large-batch training sweeps.

[b]Everywhere[/b]
  ?  f1      this help             q  ctrl+c  quit (asks whether to stop a running sweep)
  c          configure screen      v          live screen       r  results screen

[b]Configure[/b] (start screen)
  enter      load the highlighted profile or sweep into the form
  w          watch the highlighted recent sweep
  ctrl+r     launch the sweep      ctrl+s     save the form as a profile
  Fields take one value or a comma-separated list (a list sweeps that key).
  optimizers: sgd, larc or larc:TC (e.g. "sgd, larc:0.02").

[b]Live[/b]
  s  stop the current run (the sweep goes on)      S  stop the sweep
  n / p  next / previous run (replays it from its files)     f  follow the runner again
  t  trust heatmap / clipping table               l  show / hide the log
  z  compact overview / full panels (below 120 columns the screen starts compact)

[b]Results[/b]
  o / O  next sort column / reverse        enter  open the run in the live screen
  click a column header to sort by it
  space  select the run to compare curves (a: all / none)     m / M  next / previous metric
  s  smoothing off / 0.6 / 0.9     y  log y     g  group by a swept key     z  full-screen chart

Files are the interface: the app only reads RUN/events/*.jsonl, status.json, result.json and
logs/torchrun.log, so it can be closed and re-attached (larsbench watch DIR) at any time.
"""


class HelpScreen(ModalScreen[None]):
    """Keys and what the screens show."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help"):
            yield Static(HELP_TEXT, classes="dialog-text")
            yield Static("escape closes", classes="dim")

    def action_close(self) -> None:
        self.dismiss(None)

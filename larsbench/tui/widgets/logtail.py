"""The end of a run's torchrun.log: the last lines that fit, repainted only when they change."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


class LogTailView(Widget):
    """Shows the newest lines of a bounded tail (no scrollback: the file has the rest).

    A Log widget grows its virtual size with every line, which costs a layout pass of the
    whole screen each time; this repaints itself alone.
    """

    DEFAULT_CSS = "LogTailView { height: 1fr; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._lines: tuple[str, ...] = ()

    def show(self, lines: tuple[str, ...]) -> None:
        if lines != self._lines:
            self._lines = lines
            self.refresh()

    def render(self) -> Text:
        height = self.content_region.height or 1
        shown = self._lines[-height:]
        if not shown:
            return Text("no log lines yet (logs/torchrun.log)", style="dim")
        return Text("\n").join(Text(line, no_wrap=True, overflow="ellipsis") for line in shown)

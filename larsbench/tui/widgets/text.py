"""Static text updates that skip unchanged content and avoid needless layout passes."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


def set_text(widget: Static, text: Text, *, width: int | None = None) -> None:
    """Show `text` in `widget` unless it already does.

    A layout pass (which re-renders every visible widget, plots included) is asked for only
    when the number of lines the text takes changes; otherwise the widget just repaints.
    """
    previous: Text | None = getattr(widget, "_lb_text", None)
    if previous is not None and previous == text:
        return
    lines = _line_count(text, width)
    layout = previous is None or lines != getattr(widget, "_lb_lines", None)
    widget._lb_text = text  # type: ignore[attr-defined]
    widget._lb_lines = lines  # type: ignore[attr-defined]
    widget.update(text, layout=layout)


def _line_count(text: Text, width: int | None) -> int:
    rows = text.plain.split("\n")
    if not width or width <= 0 or text.no_wrap:
        return len(rows)
    return sum(max(1, -(-len(r) // width)) for r in rows)

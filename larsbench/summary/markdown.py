"""The text of summary.md: title, what every run shares, the table, the advice, unfinished runs."""

from __future__ import annotations

import textwrap
from typing import Any

from larsbench.summary.rows import throughput_only
from larsbench.summary.table import DID_NOT_FINISH, common_line, markdown_table

_SORT_NAMES = {"top1": "top-1", "images_per_sec": "img/s", "sweep": "sweep order"}


def render_markdown(
    name: str, rows: list[dict[str, Any]], advice: str, sort: str, extra: str = ""
) -> str:
    """The whole of summary.md; `extra` holds further sections (scaling efficiency)."""
    order = _SORT_NAMES.get(sort, sort)
    what = "throughput" if throughput_only(rows) else "accuracy and speed"
    out = [f"# {name}: {what}", "", common_line(rows) + ".", ""]
    if throughput_only(rows):
        note = (
            "Throughput mode: global img/s over the timed steps (no full training, no "
            "evaluation); projected run is the configured epochs at that speed."
        )
    else:
        note = (
            "Speeds are global training throughput and train time excludes evaluation; to "
            "best is wall time from the start to the best evaluation, evaluations included; "
            "`*` marks the accuracy/speed frontier."
        )
    if rows:
        out += [f"Sorted by {order}. {note}", "", markdown_table(rows), ""]
    out += [textwrap.fill(advice, width=100), ""]
    ended = [r for r in rows if r.get("status") in DID_NOT_FINISH]
    if ended:
        out += ["## Runs that did not finish", ""]
        for r in ended:
            where = f" at epoch {r.get('epochs_done') or 0}/{r.get('epochs') or '?'}"
            reason = f": {r['reason']}" if r.get("reason") else ""
            out.append(f"- {r['run_id']}: {r['status']}{where}{reason}")
        out.append("")
    if extra:
        out += [extra]
    if throughput_only(rows):
        out += ["![img/s per run](summary.png)", ""]
    else:
        out += ["![top-1 against training throughput](summary.png)", ""]
    return "\n".join(out)

"""What each training event kind means: the one fold the console, the app and the results read."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunFold:
    """A run's rank-0 training events folded as they arrive; it keeps every event's fields as
    written (a missing or odd value is for the reader to judge), and its memory grows with the
    epochs, never with the steps. `checkpoint` changes nothing here; `trust` and the system
    samples are plotted by larsbench.live.run_state.RunState, the only reader that shows them.

    A run's events file holds one run_start (a resumed worker writes `resume` instead) and one
    run_end; a follower that reads a run which failed and resumed sees the cut file's run_end
    first and the resumed one's later, so the lists keep each in the order read.
    """

    starts: list[dict[str, Any]] = field(default_factory=list)  # run_start events
    resumes: list[dict[str, Any]] = field(default_factory=list)
    compiles: list[dict[str, Any]] = field(default_factory=list)  # one per thing compiled
    last_step: dict[str, Any] = field(default_factory=dict)  # the newest step event
    data_wait_sum: float = 0.0  # over the step events whose data_wait_fraction is a number
    data_wait_count: int = 0
    epochs: list[dict[str, Any]] = field(default_factory=list)  # epoch events
    evals: list[dict[str, Any]] = field(default_factory=list)  # eval events, one per epoch
    throughputs: list[dict[str, Any]] = field(default_factory=list)  # throughput-mode results
    ends: list[dict[str, Any]] = field(default_factory=list)  # run_end events

    def add(self, event: dict[str, Any]) -> bool:
        """Fold one training event; False for a kind that changes nothing here."""
        kind = event.get("kind")
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            return False
        handler(self, event)
        return True

    @property
    def started(self) -> bool:
        """The worker is past its start-up: it wrote run_start or, resuming, resume."""
        return bool(self.starts or self.resumes)

    @property
    def start(self) -> dict[str, Any]:
        """The newest run_start event, {} before one."""
        return self.starts[-1] if self.starts else {}

    @property
    def end(self) -> dict[str, Any]:
        """The newest run_end event, {} before one."""
        return self.ends[-1] if self.ends else {}

    @property
    def last_eval(self) -> dict[str, Any]:
        """The newest eval event, {} before one."""
        return self.evals[-1] if self.evals else {}

    @property
    def mean_data_wait(self) -> float:
        """The mean data-wait share over the steps that reported one; NaN when none did."""
        return self.data_wait_sum / self.data_wait_count if self.data_wait_count else math.nan

    def _on_step(self, e: dict[str, Any]) -> None:
        self.last_step = e
        wait = e.get("data_wait_fraction", math.nan)
        if isinstance(wait, (int, float)) and math.isfinite(wait):
            self.data_wait_sum += wait
            self.data_wait_count += 1


def _appender(name: str) -> Callable[[RunFold, dict[str, Any]], None]:
    def append(fold: RunFold, e: dict[str, Any]) -> None:
        getattr(fold, name).append(e)

    return append


_HANDLERS: dict[str, Callable[[RunFold, dict[str, Any]], None]] = {
    "run_start": _appender("starts"),
    "resume": _appender("resumes"),
    "compile": _appender("compiles"),
    "step": RunFold._on_step,
    "epoch": _appender("epochs"),
    "eval": _appender("evals"),
    "throughput": _appender("throughputs"),
    "run_end": _appender("ends"),
}

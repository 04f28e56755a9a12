"""The stall guard: flags a run whose training events stop for much longer than usual."""

from __future__ import annotations

from dataclasses import dataclass, field

from larsbench.events import SourcedEvent


@dataclass
class StallWatch:
    """Flags a run whose training events stop for much longer than its usual gap."""

    floor_seconds: float
    factor: float = 10.0
    last_event: float | None = None
    gaps: list[float] = field(default_factory=list)
    stalled: bool = False
    reason: str = ""

    def limit(self) -> float:
        if not self.gaps:
            return self.floor_seconds
        typical = sorted(self.gaps)[len(self.gaps) // 2]
        return max(self.floor_seconds, self.factor * typical)

    def update(self, events: list[SourcedEvent], now: float) -> bool | None:
        """The new stalled state when it changed, else None."""
        if any(e.source == "rank0" for e in events):
            if self.last_event is not None:
                self.gaps = [*self.gaps[-49:], now - self.last_event]
            self.last_event = now
            if self.stalled:
                self.stalled, self.reason = False, ""
                return False
            return None
        if self.last_event is None or self.stalled:
            return None
        quiet = now - self.last_event
        if quiet > self.limit():
            self.stalled = True
            self.reason = f"no training event for {quiet:.0f} s (limit {self.limit():.0f} s)"
            return True
        return None

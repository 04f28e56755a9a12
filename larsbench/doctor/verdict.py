"""One verdict per check (measured, expected, ok/warn/fail, what to do) and the whole report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

OK, WARN, FAIL = "ok", "warn", "fail"
STATUSES = (OK, WARN, FAIL)


@dataclass(frozen=True)
class Verdict:
    """A row of the table. `advice` says what to do whenever the status is not ok."""

    check: str
    measured: str
    expected: str
    status: str
    advice: str = ""
    figures: dict[str, Any] = field(default_factory=dict)  # the numbers, for the JSON

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"verdict status {self.status!r}: allowed {', '.join(STATUSES)}")
        if self.status != OK and not self.advice:
            raise ValueError(f"verdict {self.check!r} is {self.status} without advice")


def by_ratio(ratio: float, warn_below: float, fail_below: float) -> str:
    """ok at or above warn_below, warn between the two bars, fail below fail_below."""
    if ratio >= warn_below:
        return OK
    return WARN if ratio >= fail_below else FAIL


@dataclass
class DoctorReport:
    """Every verdict of one `larsbench doctor`, in the order the checks ran."""

    profile: str
    quick: bool
    node: str
    verdicts: list[Verdict] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, verdicts: Verdict | list[Verdict]) -> None:
        self.verdicts.extend([verdicts] if isinstance(verdicts, Verdict) else verdicts)

    @property
    def failed(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == FAIL]

    @property
    def warned(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == WARN]

    @property
    def exit_code(self) -> int:
        """0 when nothing failed (warnings included), else 1."""
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "quick": self.quick,
            "node": self.node,
            "seconds": round(self.seconds, 1),
            "ok": not self.failed,
            "verdicts": [asdict(v) for v in self.verdicts],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DoctorReport:
        report = cls(d["profile"], bool(d["quick"]), d.get("node", ""), seconds=d.get("seconds", 0))
        report.add([Verdict(**v) for v in d["verdicts"]])
        return report

"""The event schema, its line writer and the tailing reader that every viewer uses."""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
MAX_LINE_BYTES = 1024 * 1024  # the largest real event (a trust snapshot) is a few KiB

# Event kinds, by file. docs/events.md documents each field.
TRAINING_KINDS = (
    "run_start",
    "resume",
    "compile",
    "step",
    "trust",
    "eval",
    "epoch",
    "checkpoint",
    "throughput",
    "run_end",
)
SYSTEM_KINDS = ("system_info", "system")


def make_event(kind: str, **fields: Any) -> dict[str, Any]:
    """One event: the schema version, the unix time and the kind first, then the fields."""
    return {"v": SCHEMA_VERSION, "t": round(time.time(), 4), "kind": kind, **fields}


class EventWriter:
    """Appends JSON lines to one file; each line is flushed as soon as it is written.

    Exactly one writer owns a file. Lines are written whole with a single write() so a
    reader never sees a torn line except the very last one while it is being written.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (long-lived)

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = make_event(kind, **fields)
        self._file.write(json.dumps(event, separators=(",", ":"), allow_nan=True) + "\n")
        self._file.flush()
        return event

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class FileTail:
    """Reads the complete lines appended to one JSONL file since the last call.

    It keeps a byte offset; an unfinished last line (no newline yet) is left for the next
    call. A line that is not a JSON object, or longer than MAX_LINE_BYTES, is skipped and
    counted in `bad_lines`; an event of a newer schema version is skipped and counted in
    `newer_lines` (its fields may mean something else).

    A resumed worker cuts the file back to its checkpoint's offset and appends again; the
    tail notices that even when the file has regrown past its offset before the next read
    (the last line it read is no longer there), goes back to the last line that is still
    the same and counts a truncation, so no `resume` event or rewritten line is missed.
    """

    path: Path
    offset: int = 0
    bad_lines: int = 0
    newer_lines: int = 0
    truncations: int = 0
    unreadable: str = ""
    # (end offset, crc32) of every line consumed, to find where a rewrite cut the file
    _lines: list[tuple[int, int]] = field(default_factory=list, repr=False)

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                if self.offset and (size < self.offset or not self._line_intact(f, -1)):
                    # A resumed run cut the events after its checkpoint; they are redone.
                    self.truncations += 1
                    self._go_back_to_intact(f, size)
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        except OSError as err:  # e.g. a directory where the file should be
            self.unreadable = f"unreadable ({err.strerror or err})"
            return []
        self.unreadable = ""
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        start = self.offset
        self.offset += end + 1
        events = []
        for raw in chunk[:end].split(b"\n"):
            start += len(raw) + 1
            self._lines.append((start, zlib.crc32(raw)))
            if not raw.strip():
                continue
            if len(raw) > MAX_LINE_BYTES:
                self.bad_lines += 1
                continue
            try:
                event = json.loads(raw)
            except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
                self.bad_lines += 1
                continue
            if not isinstance(event, dict) or not isinstance(event.get("kind"), str):
                self.bad_lines += 1
            elif isinstance(event.get("v"), int) and event["v"] > SCHEMA_VERSION:
                self.newer_lines += 1
            else:
                events.append(event)
        return events

    def _line_intact(self, f: Any, i: int) -> bool:
        """Whether consumed line i still holds the bytes it was read with."""
        if not self._lines:
            return True
        end, crc = self._lines[i]
        begin = self._lines[i - 1][0] if i != 0 and i != -len(self._lines) else 0
        f.seek(begin)
        return zlib.crc32(f.read(end - begin)[:-1]) == crc

    def _go_back_to_intact(self, f: Any, size: int) -> None:
        """Forget the consumed lines from the first changed one on; read again from there."""
        if not self._lines:  # an offset given from outside: no record of what was before it
            self.offset = min(self.offset, size)
            return
        while self._lines and (self._lines[-1][0] > size or not self._line_intact(f, -1)):
            self._lines.pop()
        self.offset = self._lines[-1][0] if self._lines else 0

    def problem(self) -> str:
        """What was skipped so far, naming the file; "" when nothing was."""
        parts = []
        if self.unreadable:
            return f"{self.path}: {self.unreadable}"
        if self.bad_lines:
            parts.append(f"{self.bad_lines} damaged line{'s' * (self.bad_lines != 1)}")
        if self.newer_lines:
            parts.append(
                f"{self.newer_lines} line{'s' * (self.newer_lines != 1)} of a newer event "
                f"version than {SCHEMA_VERSION}"
            )
        return f"{self.path}: skipped {' and '.join(parts)}" if parts else ""


@dataclass
class SourcedEvent:
    """An event with the file it came from (`rank0`, `system-node0`)."""

    source: str
    event: dict[str, Any]


@dataclass
class RunTail:
    """Tails every events/*.jsonl file of one run directory, picking up new files as they appear."""

    run_dir: Path
    tails: dict[str, FileTail] = field(default_factory=dict)

    def read_new(self) -> list[SourcedEvent]:
        events_dir = self.run_dir / "events"
        if events_dir.is_dir():
            for path in sorted(events_dir.glob("*.jsonl")):
                self.tails.setdefault(path.stem, FileTail(path))
        out: list[SourcedEvent] = []
        for source, tail in self.tails.items():
            out.extend(SourcedEvent(source, e) for e in tail.read_new())
        out.sort(key=lambda s: s.event.get("t", 0.0))
        return out


def read_events(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All complete events of one file (an unfinished last line is ignored)."""
    return read_events_noting(path)[0]


def read_events_noting(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], str]:
    """All complete events of one file, and what was skipped ("" when nothing was)."""
    tail = FileTail(Path(path))
    events = tail.read_new()
    return events, tail.problem()


def iter_kind(events: list[dict[str, Any]], kind: str) -> Iterator[dict[str, Any]]:
    return (e for e in events if e.get("kind") == kind)

"""The event writer and the tailing reader: round trip, torn last lines, new files."""

from __future__ import annotations

import json
import math
from pathlib import Path

from larsbench.events import SCHEMA_VERSION, EventWriter, FileTail, RunTail, read_events


def test_round_trip_keeps_fields_and_adds_version_time_kind(tmp_path: Path) -> None:
    path = tmp_path / "events" / "rank0.jsonl"
    with EventWriter(path) as w:
        w.emit("step", step=5, loss=2.5, rank_images_per_sec=[1.0, 2.0])
        w.emit("eval", top1=math.nan)
    events = read_events(path)
    assert [e["kind"] for e in events] == ["step", "eval"]
    assert events[0]["v"] == SCHEMA_VERSION
    assert events[0]["t"] > 1.6e9
    assert events[0]["rank_images_per_sec"] == [1.0, 2.0]
    assert math.isnan(events[1]["top1"])


def test_each_line_is_flushed_before_the_writer_closes(tmp_path: Path) -> None:
    path = tmp_path / "rank0.jsonl"
    w = EventWriter(path)
    w.emit("run_start", run_id="x")
    assert [e["run_id"] for e in read_events(path)] == ["x"]
    w.close()


def test_torn_last_line_is_left_for_the_next_read(tmp_path: Path) -> None:
    path = tmp_path / "rank0.jsonl"
    whole = json.dumps({"v": 1, "t": 1.0, "kind": "step", "step": 1}) + "\n"
    torn = json.dumps({"v": 1, "t": 2.0, "kind": "step", "step": 2})
    path.write_text(whole + torn[:10])
    tail = FileTail(path)
    assert [e["step"] for e in tail.read_new()] == [1]
    assert tail.read_new() == []  # still unfinished
    with open(path, "a") as f:
        f.write(torn[10:] + "\n")
    assert [e["step"] for e in tail.read_new()] == [2]
    assert tail.offset == path.stat().st_size


def test_bad_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "rank0.jsonl"
    path.write_text('{"kind": "a", "t": 1}\nnot json\n[1, 2]\n{"kind": "b", "t": 2}\n')
    tail = FileTail(path)
    assert [e["kind"] for e in tail.read_new()] == ["a", "b"]
    assert tail.bad_lines == 2


def test_missing_file_reads_as_empty(tmp_path: Path) -> None:
    assert FileTail(tmp_path / "nope.jsonl").read_new() == []


def test_run_tail_picks_up_files_as_they_appear_and_orders_by_time(tmp_path: Path) -> None:
    tail = RunTail(tmp_path)
    assert tail.read_new() == []
    rank0 = tmp_path / "events" / "rank0.jsonl"
    system = tmp_path / "events" / "system-node0.jsonl"
    rank0.parent.mkdir()
    rank0.write_text('{"kind": "step", "t": 3}\n')
    system.write_text('{"kind": "system", "t": 2}\n')
    got = tail.read_new()
    assert [(s.source, s.event["t"]) for s in got] == [("system-node0", 2), ("rank0", 3)]
    with open(rank0, "a") as f:
        f.write('{"kind": "eval", "t": 4}\n')
    assert [s.event["kind"] for s in tail.read_new()] == ["eval"]


def test_a_cut_and_regrown_file_is_read_again_from_the_cut(tmp_path: Path) -> None:
    # A resumed worker cuts rank0.jsonl back to its checkpoint and appends; the next read may
    # come only after the file has grown past the old offset again.
    path = tmp_path / "rank0.jsonl"

    def line(kind: str, step: int) -> str:
        return json.dumps({"v": 1, "t": float(step), "kind": kind, "step": step}) + "\n"

    kept = line("run_start", 0) + line("step", 1)
    path.write_text(kept + line("step", 2) + line("step", 3))
    tail = FileTail(path)
    assert [e["step"] for e in tail.read_new()] == [0, 1, 2, 3]
    longer = line("resume", 1) + line("step", 2) + line("step", 3) + line("step", 4)
    path.write_text(kept + longer)
    assert len(kept + longer) > tail.offset  # regrown past where the tail was
    events = tail.read_new()
    assert [(e["kind"], e["step"]) for e in events] == [
        ("resume", 1),
        ("step", 2),
        ("step", 3),
        ("step", 4),
    ]
    assert tail.truncations == 1 and tail.bad_lines == 0
    path.write_text(kept)  # cut shorter than before: also from the last intact line
    assert tail.read_new() == [] and tail.offset == len(kept) and tail.truncations == 2

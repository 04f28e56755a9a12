"""The one fold of a run's training events (larsbench.live.fold) and the three readers on it."""

from __future__ import annotations

import math
from io import StringIO
from pathlib import Path

from fixtures.make_sweep import make_recorded_sweep
from rich.console import Console

from larsbench.events import make_event, read_events
from larsbench.headless import HeadlessView
from larsbench.live.fold import RunFold
from larsbench.live.run_state import RunState
from larsbench.results import fold_training
from larsbench.rundir import RunPaths, read_json


def test_each_kind_lands_where_it_means_and_checkpoints_change_nothing() -> None:
    fold = RunFold()
    assert not fold.started and fold.start == {} and fold.end == {} and fold.last_eval == {}
    assert math.isnan(fold.mean_data_wait)
    assert fold.add(make_event("run_start", total_steps=4, epochs=2))
    assert fold.started and fold.start["total_steps"] == 4
    fold.add(make_event("compile", what="model", seconds=1.0))
    fold.add(make_event("step", step=1, data_wait_fraction=0.2))
    fold.add(make_event("step", step=2, data_wait_fraction=math.nan))  # not counted
    fold.add(make_event("step", step=3, data_wait_fraction=0.4))
    fold.add(make_event("eval", epoch=1, top1=10.0))
    fold.add(make_event("epoch", epoch=1, images=64, seconds=2.0))
    assert not fold.add(make_event("checkpoint", epoch=1))
    assert not fold.add({"kind": ["not", "a", "kind"]})
    fold.add(make_event("run_end", status="completed"))
    assert fold.last_step["step"] == 3 and math.isclose(fold.mean_data_wait, 0.3)
    assert [c["what"] for c in fold.compiles] == ["model"]
    assert fold.last_eval["top1"] == 10.0 and len(fold.epochs) == 1
    assert fold.end["status"] == "completed"


def test_a_resumed_worker_counts_as_started_without_a_run_start() -> None:
    fold = RunFold()
    fold.add(make_event("resume", epoch=3, step=30))
    assert fold.started and fold.start == {}


def test_the_console_the_app_and_the_results_read_the_same_fold(tmp_path: Path) -> None:
    sweep = make_recorded_sweep(tmp_path)
    run_id = read_json(sweep / "sweep.json")["runs"][0]["config"]["run_id"]
    paths = RunPaths(sweep / run_id)
    events = read_events(paths.rank0_events)

    result = fold_training(run_id, read_json(paths.config), events)
    state = RunState(run_id)
    for e in events:
        state.add("rank0", e)
    view = HeadlessView(Console(file=StringIO(), force_terminal=False), quiet=False)
    for e in events:
        view._training_event(e)

    assert state.record.last_step == view.fold.last_step == events_of(events, "step")[-1]
    assert result.steps == state.view().step == view.fold.last_step["step"]
    assert result.top1 == state.view().top1 == view.fold.last_eval["top1"]
    assert result.status == state.record.end["status"] == view.fold.end["status"]


def events_of(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e.get("kind") == kind]

"""The headless console view: what `larsbench run` prints while a run starts."""

from __future__ import annotations

import tomllib
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from larsbench.events import SourcedEvent, make_event
from larsbench.headless import HeadlessView
from larsbench.plan.expand import expand
from larsbench.plan.machine import Machine
from larsbench.profile.files import shipped_profiles_dir
from larsbench.profile.loading import parse_profile
from larsbench.profile.overrides import apply_overrides
from larsbench.rundir import RunPaths


def _larc_run(fused: bool):
    path = shipped_profiles_dir() / "smoke.toml"
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    raw = apply_overrides(raw, [("optimizer.fused", fused)])
    runs = expand(parse_profile(raw, str(path)), Machine(gpus=0, cpus=2))
    return next(r for r in runs if r.optimizer.name == "larc")


@pytest.mark.parametrize("fused", [False, True])
def test_the_status_says_when_a_run_compiles_before_training(fused: bool, tmp_path: Path) -> None:
    out = StringIO()
    view = HeadlessView(Console(file=out, force_terminal=False, width=200))
    run = _larc_run(fused)
    view.run_started(run, RunPaths(tmp_path / run.run_id), 1, 1)
    assert view._stats() == "starting torchrun"
    view.run_events(run, [SourcedEvent("rank0", make_event("run_start", total_steps=20))])
    if fused:
        assert view._stats() == "compiling LARC's fused update (once per run)"
        event = make_event("compile", what="larc_fused_update", seconds=4.375)
        view.run_events(run, [SourcedEvent("rank0", event)])
        assert f"[1/1] {run.run_id}: compiled LARC's fused update in 4.4 s" in out.getvalue()
    assert view._stats() == "training, first steps"

"""What `larsbench run` prints for a person and for a script: grouped warnings, --quiet,
--json-progress."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from larsbench.cli import main
from larsbench.events import SourcedEvent, read_events
from larsbench.headless import HeadlessView, group_run_warnings
from larsbench.json_progress import JsonProgressView
from larsbench.plan.machine import Machine
from larsbench.plan.run import RunConfig
from larsbench.results import RunResult
from larsbench.rundir import RunPaths, SweepPaths, read_json
from tests.fixtures.make_sweep import make_recorded_sweep

REPO = Path(__file__).resolve().parent.parent
NO_GPU = "launch.device is cuda but no GPU is visible here"


def test_a_warning_for_every_run_is_one_line():
    ids = [f"r{i}" for i in range(12)]
    warnings = [f"{r}: {NO_GPU}" for r in ids] + ["torchvision could not be asked here"]
    assert group_run_warnings(warnings, ids) == [
        f"all 12 runs: {NO_GPU}",
        "torchvision could not be asked here",
    ]


def test_warnings_for_some_runs_name_them_and_single_ones_stay_as_they_are():
    ids = ["bs64-sgd", "bs64-sgd-x", "bs512-sgd", "a", "b", "c"]
    warnings = [
        "bs64-sgd-x: data.path '/d' has no train/ and val/ here",  # the longest id matches
        "bs512-sgd: data.path '/d' has no train/ and val/ here",
        "a: launch.nproc_per_node 8 > 2 visible GPUs",
        "b: m",
        "c: m",
        "a: m",
        "bs64-sgd: m",
        "b: m",  # a duplicate counts once per run
    ]
    assert group_run_warnings(warnings, ids) == [
        "2 runs (bs64-sgd-x, bs512-sgd): data.path '/d' has no train/ and val/ here",
        "a: launch.nproc_per_node 8 > 2 visible GPUs",
        "4 runs (b, c, a, bs64-sgd): m",
    ]


def test_dry_run_of_seed_larc_without_gpus_prints_the_warning_once(capsys):
    if Machine.here().gpus:
        pytest.skip("this test is about a machine without GPUs")
    code = main(["run", "--profile", str(REPO / "profiles" / "seed-larc.toml"), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.count(NO_GPU) == 1 and f"all 6 runs: {NO_GPU}" in out
    assert out.count("has no train/ and val/ here") == 1


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_recorded_sweep(tmp_path_factory.mktemp("out"))


def _replay(view, sweep: Path) -> None:
    """Tell a view the recorded sweep's runs as the runner would."""
    configs = [r["config"] for r in read_json(sweep / "sweep.json")["runs"]]
    runs = [RunConfig.from_dict(c) for c in configs]

    plan = SimpleNamespace(profile=SimpleNamespace(name="fixture"), runs=runs)
    view.sweep_started(plan, SweepPaths(sweep))
    results = []
    for i, run in enumerate(runs, start=1):
        paths = RunPaths(sweep / run.run_id)
        view.run_started(run, paths, i, len(runs))
        events = [SourcedEvent("rank0", e) for e in read_events(paths.rank0_events)]
        view.run_events(run, events)
        result = RunResult.from_dict(read_json(paths.result))
        view.run_finished(run, result)
        results.append(result)
    view.sweep_finished(results, SweepPaths(sweep))


def test_json_progress_is_one_strict_json_object_per_line(sweep):
    stream = io.StringIO()
    _replay(JsonProgressView(stream), sweep)
    lines = stream.getvalue().splitlines()
    objects = [json.loads(line, parse_constant=pytest.fail) for line in lines]
    kinds = [o["event"] for o in objects]
    assert kinds[0] == "sweep_start" and kinds[-1] == "sweep_end"
    assert kinds.count("run_start") == kinds.count("run_end") == 4
    steps = read_events(sweep / "bs64-sgd" / "events" / "rank0.jsonl")
    progress = [o for o in objects if o["event"] == "progress" and o["run_id"] == "bs64-sgd"]
    assert len(progress) == sum(e["kind"] == "step" for e in steps)
    assert progress[-1]["total_steps"] and progress[-1]["epochs"] == 8
    failed = next(o for o in objects if o["event"] == "run_end" and o["status"] == "failed")
    assert failed["run_id"] == "bs512-larc-tc0.02" and "gloo" in failed["reason"]
    end = objects[-1]
    assert end["completed"] == 3 and end["runs"] == 4 and end["recommendation"]
    assert end["summary"].endswith("summary.md")


def test_json_values_that_are_not_finite_are_null():
    stream = io.StringIO()
    JsonProgressView(stream).emit("x", top1=math.nan, n=1)
    assert json.loads(stream.getvalue())["top1"] is None


def test_quiet_prints_one_line_per_run_and_the_summary_path(sweep):
    buf = io.StringIO()
    _replay(HeadlessView(Console(file=buf, width=200), quiet=True), sweep)
    lines = buf.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines[:4]] == [
        "[1/4] bs64-sgd",
        "[2/4] bs64-larc-tc0.02",
        "[3/4] bs512-sgd",
        "[4/4] bs512-larc-tc0.02",
    ]
    assert lines[0].startswith("[1/4] bs64-sgd: completed top-1")
    assert lines[3].startswith("[4/4] bs512-larc-tc0.02: failed")
    assert lines[4].strip().startswith("reason: torchrun exited with code 1")
    assert lines[5].startswith("summary: ") and len(lines) == 6


def test_quiet_and_json_progress_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "--quiet", "--json-progress", "--dry-run"])
    assert stop.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err

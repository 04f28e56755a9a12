"""The app's pure parts: bounded folding of events, the watcher's reads, the form's validation."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import pytest
from fixtures.make_sweep import LAYERS, PROFILE_TOML, make_recorded_sweep

from larsbench.live.run_state import RunState
from larsbench.live.series import Series
from larsbench.live.trust_history import HEAT_COLUMNS, TrustHistory
from larsbench.plan.machine import Machine
from larsbench.tui.form import ProfileForm, split_list
from larsbench.tui.form_fields import OPTIMIZER
from larsbench.tui.tomltext import dump_profile, toml_value
from larsbench.tui.watcher import LogTail, SweepWatcher

MACHINE = Machine(gpus=0, cpus=4)


def test_series_keeps_whole_history_in_bounded_memory() -> None:
    s = Series(capacity=64)
    for i in range(100_000):
        s.add(i, float(i))
    curve = s.curve()
    assert len(curve.xs) <= 65
    assert curve.xs[0] < 5_000 and curve.xs[-1] == 99_999  # start and end both kept
    # Each kept point is the mean of the points it stands for.
    assert all(abs(x - y) < s.stride for x, y in zip(curve.xs, curve.ys, strict=True))


def test_series_ignores_missing_values_and_caches_curves() -> None:
    s = Series()
    s.add(1, None)
    s.add(2, math.nan)
    s.add(3, 1.5)
    assert s.curve().xs == (3.0,)
    assert s.curve() is s.curve()


def trust_event(step: int, factors: list[float]) -> dict:
    n = len(factors)
    return {
        "kind": "trust",
        "t": float(step),
        "step": step,
        "layers": [f"l{i}" for i in range(n)],
        "factor": factors,
        "clipped": [f < 1 for f in factors],
        "local_lr": [f * 0.1 for f in factors],
        "weight_norm": [1.0] * n,
        "grad_norm": [0.5] * n,
        "lr": 0.1,
    }


def test_trust_history_is_bounded_and_counts_clipping() -> None:
    h = TrustHistory(capacity=HEAT_COLUMNS)
    for step in range(5_000):
        h.add(trust_event(step, [0.01, 1.0 if step % 2 else 0.5, 1.0]))
    view = h.view()
    assert len(view.log_factors) <= HEAT_COLUMNS
    assert view.layers == ("l0", "l1", "l2")
    assert [round(s.clipped_share, 2) for s in view.stats] == [1.0, 0.5, 0.0]
    assert view.log_factors[0][0] == pytest.approx(-2.0)
    assert view.stats[1].min_factor == 0.5


def test_run_state_folds_a_90_epoch_stream_into_bounded_view() -> None:
    state = RunState("bs1024-larc-tc0.02")
    state.add("rank0", {"kind": "run_start", "t": 0.0, "total_steps": 90 * 1000, "epochs": 90})
    for step in range(1, 90 * 1000 + 1, 5):
        state.add(
            "rank0",
            {
                "kind": "step",
                "t": step * 0.1,
                "epoch": step // 1000 + 1,
                "step": step,
                "loss": 7.0 / (1 + step / 1e4),
                "lr": 0.4,
                "images_per_sec": 9800.0,
                "rank_images_per_sec": [1225.0] * 8,
                "data_wait_fraction": 0.03,
                "rank_data_wait_fraction": [0.03] * 8,
            },
        )
    for step in range(0, 90 * 1000, 50):
        state.add("rank0", trust_event(step, [0.2] * 161))
    view = state.view()
    assert len(view.loss_curve.xs) <= 600
    assert all(len(c.xs) <= 300 for c in view.rank_ips_curves)
    assert view.trust is not None and len(view.trust.log_factors) <= HEAT_COLUMNS
    assert view.step == 89_996 and view.images_per_sec == 9800.0
    assert view.eta_seconds == pytest.approx(0.5, abs=0.2)  # 4 steps left at 10 steps/s


def test_straggler_and_input_bound_use_the_telemetry_rules() -> None:
    state = RunState("r")
    state.add(
        "rank0",
        {
            "kind": "step",
            "t": 1.0,
            "step": 10,
            "data_wait_fraction": 0.25,
            "rank_data_wait_fraction": [0.1, 0.4],
            "rank_images_per_sec": [1000.0, 1000.0, 1000.0, 700.0],
        },
    )
    view = state.view()
    assert view.input_bound and view.straggler == 3


def test_system_events_with_missing_fields_render_as_nan() -> None:
    state = RunState("r")
    state.add(
        "system-n", {"kind": "system_info", "node": "n", "devices": [{"index": 0, "name": "H100"}]}
    )
    state.add(
        "system-n",
        {"kind": "system", "t": 1.0, "node": "n", "source": "nvml", "devices": [{"index": 0}]},
    )
    d = state.view().nodes[0].devices[0]
    assert d.name == "H100" and math.isnan(d.util_gpu) and math.isnan(d.power_w)


def test_energy_per_image_reads_the_system_events_energy_field() -> None:
    state = RunState("r")
    state.add("rank0", {"kind": "run_start", "t": 0.0, "global_batch": 100})
    for t, step, joules in ((1.0, 10, 1000.0), (2.0, 20, 1500.0)):
        state.add("rank0", {"kind": "step", "t": t, "step": step})
        state.add(
            "system-n",
            {"kind": "system", "t": t, "node": "n", "devices": [{"index": 0, "energy": joules}]},
        )
    assert state.view().energy_per_image == pytest.approx(500.0 / 1000)


def test_watcher_reads_the_recorded_sweep(tmp_path: Path) -> None:
    sweep = make_recorded_sweep(tmp_path)
    w = SweepWatcher(sweep, clock=lambda: 0.0)
    view = w.poll()
    assert view is not None
    assert [r.state for r in view.runs] == ["completed", "completed", "completed", "failed"]
    assert view.finished and not view.live and view.done == 4
    assert view.focus == "bs512-larc-tc0.02"  # the last run that ran
    assert "bs64-larc-tc0.02" in view.frontier and view.recommendation
    assert w.poll() is None  # nothing changed: nothing published
    w.focus("bs64-larc-tc0.02")
    view = w.poll()
    assert view is not None and not view.following
    run = view.run
    assert run is not None and run.is_larc and run.trust is not None
    assert run.trust.layers == LAYERS
    assert run.top1 == pytest.approx(93.775)
    assert run.nodes[0].source == "psutil" and len(run.nodes[0].ranks) == 2
    assert run.log_lines[0].startswith("I1124")


def test_watcher_follows_appended_events(tmp_path: Path) -> None:
    run = tmp_path / "one-run"
    (run / "events").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"run_id": "one-run"}))
    w = SweepWatcher(run, clock=lambda: 0.0)
    assert w.poll() is not None
    with open(run / "events" / "rank0.jsonl", "a") as f:
        f.write(json.dumps({"v": 1, "t": 1.0, "kind": "step", "step": 5, "loss": 2.5}) + "\n")
        f.write('{"v": 1, "t": 2.0, "kind": "step", "st')  # a line being written
    view = w.poll()
    assert view is not None and view.run is not None and view.run.loss == 2.5
    with open(run / "events" / "rank0.jsonl", "a") as f:
        f.write('ep": 10, "loss": 2.0}\n')
    view = w.poll()
    assert view is not None and view.run is not None and view.run.step == 10


def test_log_tail_starts_near_the_end_of_a_long_log(tmp_path: Path) -> None:
    log = tmp_path / "torchrun.log"
    log.write_text("".join(f"line {i}\n" for i in range(100_000)))
    tail = LogTail(log, backlog=1000)
    lines = tail.read_new()
    assert lines[-1] == "line 99999" and len(lines) < 200
    with open(log, "a") as f:
        f.write("new line\npartial")
    assert tail.read_new() == ["new line"]


def form() -> ProfileForm:
    return ProfileForm(tomllib.loads(PROFILE_TOML), MACHINE)


def test_form_shows_sweeps_as_lists_and_expands_like_the_cli() -> None:
    f = form()
    assert f.initial["train.batch_size"] == "64, 512"
    assert f.initial[OPTIMIZER] == "sgd, larc:0.02"
    result = f.validate({})
    assert result.ok and [r.run_id for r in result.rows] == [
        "bs64-sgd",
        "bs64-larc-tc0.02",
        "bs512-sgd",
        "bs512-larc-tc0.02",
    ]
    assert result.rows[2].lr == pytest.approx(0.2) and result.rows[2].per_rank_batch == 256


@pytest.mark.parametrize(
    ("key", "text", "needle"),
    [
        ("train.epochs", "abc", "valid integer"),
        ("train.batch_size", "63", "does not divide"),
        ("train.base_lr", "-1", "greater than 0"),
        (OPTIMIZER, "adam", "'sgd' or 'larc'"),
        ("launch.nproc_per_node", "0", ">= 1"),
        ("train.epochs", "", "empty"),
    ],
)
def test_form_errors_land_on_the_field(key: str, text: str, needle: str) -> None:
    result = form().validate({key: text})
    assert not result.ok
    assert needle in result.errors[key]


def test_form_overrides_become_set_arguments() -> None:
    result = form().validate({OPTIMIZER: "larc:0.001, larc:0.02", "train.epochs": "2"})
    assert result.ok
    assert result.set_args() == [
        'sweep.optimizer=[{ name = "larc", trust_coefficient = 0.001 }, '
        '{ name = "larc", trust_coefficient = 0.02 }]',
        "train.epochs=2",
    ]
    assert [r.run_id for r in result.rows][:2] == ["bs64-larc-tc0.001", "bs64-larc-tc0.02"]


def test_extra_set_line_and_its_errors() -> None:
    assert form().validate({}, "train.momentum=0.95; data.image_size=16").ok
    result = form().validate({}, "train.nope=1")
    assert "unknown key" in " ".join(result.general)


def test_toml_text_round_trips() -> None:
    raw = tomllib.loads(PROFILE_TOML)
    assert tomllib.loads(dump_profile(raw, "header")) == raw
    assert toml_value(1e-8) == "1e-08" and toml_value(2.0) == "2.0"
    assert split_list('[1, 2], "a,b", 3') == ["[1, 2]", '"a,b"', "3"]

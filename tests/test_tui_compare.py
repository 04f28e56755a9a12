"""Comparing runs' curves: the pure reshaping (epochs, smoothing, means, groups) and the loader
folding the recorded fixture through RunTail and RunState."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from fixtures.make_sweep import make_recorded_sweep

from larsbench.events import read_events
from larsbench.live.series import Curve
from larsbench.live.trust_history import TrustHistory
from larsbench.tui.compare import (
    CompareSet,
    CurveLoader,
    RunCurves,
    group_value,
    mean_curve,
    median_trust_curve,
    overlay,
    smooth,
    swept_keys,
)

LARC_RUNS = ["bs64-larc-tc0.02", "bs512-larc-tc0.02"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_recorded_sweep(tmp_path_factory.mktemp("runs"))


def run_ids(sweep: Path) -> list[str]:
    meta = json.loads((sweep / "sweep.json").read_text())
    return [r["run_id"] for r in meta["runs"]]


def test_smoothing_is_a_debiased_moving_average() -> None:
    flat = Curve((1, 2, 3), (5.0, 5.0, 5.0))
    assert smooth(flat, 0.9).ys == pytest.approx((5.0, 5.0, 5.0))  # no pull toward 0
    step = Curve((1, 2, 3, 4), (0.0, 0.0, 10.0, 10.0))
    ys = smooth(step, 0.6).ys
    assert ys[:2] == (0.0, 0.0)
    assert 0.0 < ys[2] < ys[3] < 10.0  # the jump is spread over the next points
    assert smooth(step, 0.0) is step


def test_mean_curve_averages_where_each_curve_reaches() -> None:
    long = Curve((1.0, 2.0, 3.0, 4.0), (10.0, 20.0, 30.0, 40.0))
    short = Curve((1.0, 3.0), (0.0, 20.0))  # at x=2: 10 by interpolation; absent at x=4
    mean = mean_curve([long, short])
    assert mean.xs == (1.0, 2.0, 3.0, 4.0)
    assert mean.ys == pytest.approx((5.0, 15.0, 25.0, 40.0))


def test_median_trust_factor_per_snapshot() -> None:
    history = TrustHistory()
    history.add({"step": 2, "layers": ["a", "b", "c"], "factor": [0.01, 0.1, 1.0]})
    history.add({"step": 4, "layers": ["a", "b", "c"], "factor": [0.5, 0.2, 1.0]})
    curve = median_trust_curve(history.view())
    assert curve.xs == (2.0, 4.0)
    assert curve.ys == pytest.approx((0.1, 0.5))
    assert median_trust_curve(None).xs == ()


def test_swept_keys_and_group_values(sweep: Path) -> None:
    configs = [json.loads((sweep / r / "config.json").read_text()) for r in run_ids(sweep)]
    keys = swept_keys(configs)
    assert keys[:2] == ["train.batch_size", "optimizer.name"]
    assert "run_id" not in keys and "lr" in keys  # the derived lr differs with the batch
    by_id = {c["run_id"]: c for c in configs}
    assert group_value(by_id["bs512-sgd"], "train.batch_size") == "512"
    assert group_value(by_id["bs64-larc-tc0.02"], "optimizer.trust_coefficient") == "0.02"
    assert group_value(by_id["bs64-sgd"], "optimizer.trust_coefficient") == "none"
    assert group_value(by_id["bs64-sgd"], "no.such.key") == "n/a"


def test_loader_folds_each_run_once_through_the_event_reader(sweep: Path) -> None:
    loader = CurveLoader(sweep, is_sweep=True)
    ids = run_ids(sweep)
    first = loader.load(LARC_RUNS, ids)
    assert set(first.curves) == set(LARC_RUNS) and set(first.configs) == set(ids)
    larc = first.curves["bs64-larc-tc0.02"]
    evals = [e for e in read_events(sweep / larc.run_id / "events" / "rank0.jsonl")]
    top1 = [e["top1"] for e in evals if e["kind"] == "eval"]
    assert larc.curve("top1").ys == pytest.approx(top1)  # top-1 per epoch, x = epoch
    assert larc.curve("top1").xs == tuple(range(1, 9))
    # Step curves are in epochs: both batch sizes span their epochs on one axis.
    assert larc.curve("loss").xs[-1] == pytest.approx(8.0)
    assert first.curves["bs512-larc-tc0.02"].curve("loss").xs[-1] <= 3.0
    trust = larc.curve("trust")
    assert trust.xs and all(0 < y <= 1 for y in trust.ys)
    again = loader.load(LARC_RUNS, ids)  # nothing new on disk: the same points, no duplicates
    assert again.curves["bs64-larc-tc0.02"].curve("loss").ys == larc.curve("loss").ys
    sgd = loader.load(["bs64-sgd"], ids).curves["bs64-sgd"]
    assert sgd.curve("trust").xs == () and sgd.curve("top1").xs


def _set(curves: dict[str, Curve], configs: dict[str, dict]) -> CompareSet:  # type: ignore[type-arg]
    return CompareSet({r: RunCurves(r, "", {"top1": c}) for r, c in curves.items()}, configs, seq=1)


def test_overlay_colours_follow_the_sweep_order_and_groups_average() -> None:
    order = ["a", "b", "c"]
    curves = {
        "a": Curve((1.0, 2.0), (10.0, 20.0)),
        "b": Curve((1.0, 2.0), (30.0, 40.0)),
        "c": Curve((1.0, 2.0), (50.0, 60.0)),
    }
    configs = {
        "a": {"train": {"batch_size": 64}},
        "b": {"train": {"batch_size": 512}},
        "c": {"train": {"batch_size": 64}},
    }
    compare = _set(curves, configs)
    lines = overlay(compare, ["c", "a"], order, "top1")
    assert [(ln.label, ln.color) for ln in lines] == [("a", 0), ("c", 2)]  # colour: sweep place
    grouped = overlay(compare, ["a", "b", "c"], order, "top1", group_key="train.batch_size")
    assert [(ln.label, ln.color) for ln in grouped] == [
        ("batch=64 (mean of 2)", 0),
        ("batch=512", 1),
    ]
    assert grouped[0].curve.ys == pytest.approx((30.0, 40.0))
    assert overlay(compare, ["a"], order, "loss") == []  # no such curve: nothing drawn
    smoothed = overlay(compare, ["a"], order, "top1", smoothing=0.9)[0].curve.ys
    assert smoothed[1] < 20.0 and not math.isnan(smoothed[1])

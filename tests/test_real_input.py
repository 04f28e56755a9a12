"""End to end on CPU with real files: the DALI loader trains and evaluates through torchrun,
and throughput mode with real data reports the input-bound share; the ranks read the file
list that the launcher scanned once."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import SMOKE, finish, larsbench

from larsbench.events import read_events
from larsbench.extras import dali_installed
from larsbench.rundir import SweepPaths, read_json

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not dali_installed(), reason="NVIDIA DALI is not installed (pip install 'larsbench[dali]')"
    ),
]


def test_dali_on_digits_trains_evaluates_and_writes_every_file(tmp_path: Path) -> None:
    out = tmp_path / "smoke-dali"
    sets = ["data.loader=dali", "train.epochs=2", "sweep.train.batch_size=[64]"]
    code, log = finish(
        larsbench(
            "run",
            "--profile",
            str(SMOKE),
            "--out",
            str(out),
            *(a for s in sets for a in ("--set", s)),
        )
    )
    assert code == 0, log
    sweep = SweepPaths(out)
    assert sweep.run_ids() == ["bs64-sgd", "bs64-larc-tc0.02"]
    for run_id in sweep.run_ids():
        result = read_json(sweep.run(run_id).result)
        assert result["status"] == "completed" and result["epochs_done"] == 2
        evals = [e for e in read_events(sweep.run(run_id).rank0_events) if e["kind"] == "eval"]
        assert [e["images"] for e in evals] == [360, 360]  # every validation image once
    assert len(list(sweep.file_lists.glob("digits-*/train/digit_*"))) == 10
    assert (sweep.summary("md")).is_file()


def test_throughput_with_real_data_reports_the_input_bound_share(tmp_path: Path) -> None:
    out = tmp_path / "tp"
    sets = [
        "data.loader=dali",
        "train.throughput_data=real",
        "train.throughput_warmup_steps=1",
        "train.throughput_steps=4",
        "sweep.train.batch_size=[64]",
        "sweep.optimizer=[{name='sgd'}]",
    ]
    args = ["run", "--profile", str(SMOKE), "--out", str(out), "--throughput"]
    code, log = finish(larsbench(*args, *(a for s in sets for a in ("--set", s))))
    assert code == 0, log
    run = SweepPaths(out).run("bs64-sgd")
    (event,) = [e for e in read_events(run.rank0_events) if e["kind"] == "throughput"]
    assert event["throughput_data"] == "real"
    assert event["synthetic_images_per_sec"] > 0 and 0 <= event["input_bound_share"] < 1
    assert event["epoch_images"] == 1437  # the real training set, not a synthetic count
    result = read_json(run.result)
    assert result["input_bound_share"] == event["input_bound_share"]
    assert "input-bound share" in SweepPaths(out).summary("md").read_text()

"""The sweep summary: frontier, recommendation, rows, and the four files from recorded events."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from larsbench.events import EventWriter
from larsbench.format import duration, percent, rate
from larsbench.results import RunResult
from larsbench.rundir import RunPaths, write_json_atomic
from larsbench.summary.advice import pareto_frontier, recommend
from larsbench.summary.files import write_summary
from larsbench.summary.load import load_results, sweep_name
from larsbench.summary.rows import SYSTEM_FIELDS, summary_rows
from larsbench.summary.table import SYSTEM_COLUMNS, format_console_table


def _load_fixture():
    path = Path(__file__).parent / "fixtures" / "summary" / "seed_sweep.py"
    spec = importlib.util.spec_from_file_location("summary_seed_sweep", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


seed = _load_fixture()


def run(run_id: str, top1: float, speed: float, status: str = "completed", **kw) -> RunResult:
    return RunResult(run_id=run_id, status=status, top1=top1, images_per_sec=speed, **kw)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed.build_seed_sweep(tmp_path_factory.mktemp("sweep") / "seed-larc")


# --- frontier ---------------------------------------------------------------------------------


def test_frontier_keeps_runs_nobody_beats_on_both_axes():
    results = [run("slow-best", 76.4, 7000), run("mid", 76.2, 9500), run("dominated", 76.0, 9000)]
    results.append(run("fast", 75.0, 10000))
    assert pareto_frontier(results) == {"slow-best", "mid", "fast"}


def test_frontier_ties():
    results = [
        run("twin-a", 76.0, 9000),
        run("twin-b", 76.0, 9000),  # identical: neither beats the other
        run("same-top1-slower", 76.004, 8000),  # reads 76.00% too: the faster twin wins
        run("same-speed-worse", 75.5, 9000.2),  # reads 9,000 img/s: the more accurate wins
    ]
    assert pareto_frontier(results) == {"twin-a", "twin-b"}


def test_frontier_leaves_out_nan_missing_and_unfinished_runs():
    results = [
        run("ok", 70.0, 100),
        run("nan-top1", math.nan, 5000),
        run("nan-speed", 99.0, math.nan),
        run("zero-speed", 99.0, 0.0),
        run("none-values", None, None),
        run("inf-speed", 99.0, math.inf),
        run("running", 99.0, 9999, status="running"),
        run("diverged", 99.0, 9999, status="diverged"),
    ]
    assert pareto_frontier(results) == {"ok"}
    assert pareto_frontier([]) == set()


# --- recommendation ---------------------------------------------------------------------------


def test_recommendation_on_the_seed_study():
    text = recommend(seed.seed_results())
    assert text.startswith(
        "Recommendation: bs1024-sgd keeps 99.75% of the best top-1 (-0.19 points) "
        "at 1.30x the speed of bs256-sgd."
    )
    assert "For 9% more speed, bs4096-larc-tc0.02 costs 0.58 points of the best" in text
    assert "plain SGD at 4096 costs 0.67" in text
    assert "LARC with tc 0.001 hurts at every batch size here" in text
    assert "-1.08 at 1024, -2.19 at 2048, -3.35 at 4096" in text
    assert "LARC with tc 0.02 helps at 4096" in text
    assert "hurts at 2048 (-0.23)" in text
    assert (
        "Shortest training: bs4096-sgd in 71% of bs256-sgd's time (3h05m vs 4h23m) for "
        "-0.67 points of top-1." in text
    )
    assert "points/h" not in text and "Not counted" not in text


def test_time_sentence_reads_the_same_at_any_scale():
    # A 2-second smoke sweep: the old "points per hour" read 169,541 points/h here.
    quick = [
        run("a", 94.2, 900.0, train_seconds=2.0),
        run("b", 95.0, 600.0, train_seconds=3.0),
    ]
    slow = [
        run("a", 94.2, 900.0, train_seconds=2.0 * 86400),
        run("b", 95.0, 600.0, train_seconds=3.0 * 86400),
    ]
    sentence = "Shortest training: a in 67% of b's time"
    assert sentence in recommend(quick) and sentence in recommend(slow)
    assert "for -0.80 points of top-1" in recommend(quick)


def test_recommendation_follows_tolerance_and_min_speedup():
    results = seed.seed_results()
    strict = recommend(results, tolerance=0.1)
    assert strict.startswith("Recommendation: bs256-sgd has the best top-1 (76.42%)")
    assert "no run within 0.1 points of the best is 5% faster" in strict
    loose = recommend(results, tolerance=0.7)
    assert loose.startswith("Recommendation: bs4096-larc-tc0.02 keeps")
    # Any speed-up counts: the 2048 run is 3% faster than 1024 and still within 0.5 points.
    assert recommend(results, min_speedup=0).startswith("Recommendation: bs2048-sgd keeps")


def test_recommendation_edge_cases():
    assert recommend([]).startswith("Recommendation: none yet")
    failed = [RunResult("bs64-sgd", "failed", reason="exit 1"), RunResult("bs64-larc", "queued")]
    text = recommend(failed)
    assert "none yet" in text and "Not counted: bs64-sgd (failed)" in text
    assert "Still to come: 1 queued" in text
    one = recommend([run("only", 76.0, 9000)])
    assert "only is the only completed run so far (76.00% top-1, 9,000 img/s)" in one
    no_speed = recommend([run("a", 76.0, math.nan), run("b", 75.0, math.nan)])
    assert "a has the best top-1 (76.00%)" in no_speed
    assert "speed cannot be weighed" in no_speed
    nan_top1 = recommend([run("a", 76.0, 9000), run("b", math.nan, 9500), run("c", None, None)])
    assert "Not counted: b (no top-1), c (no top-1)" in nan_top1
    live = recommend([run("a", 76.0, 9000), run("b", 75.0, 9900), run("c", 60.0, 1, "running")])
    assert "Still to come: 1 running" in live


# --- rows -------------------------------------------------------------------------------------


def test_rows_sort_and_missing_values():
    results = [run("slow", 76.0, 100.0), run("fast", 74.0, 900.0), run("nan", math.nan, 50.0)]
    rows = summary_rows(results)
    assert [r["run_id"] for r in rows] == ["slow", "fast", "nan"]
    assert rows[2]["top1"] is None and rows[0]["pareto"] and rows[1]["pareto"]
    by_speed = summary_rows(results, sort="images_per_sec")
    assert [r["run_id"] for r in by_speed] == ["fast", "slow", "nan"]
    assert [r["run_id"] for r in summary_rows(results, sort="sweep")] == ["slow", "fast", "nan"]
    with pytest.raises(ValueError, match="unknown sort key"):
        summary_rows(results, sort="colour")


def test_rows_take_known_numeric_system_fields():
    result = run("a", 76.0, 9000, train_seconds=3600.0)
    result.system = {"gpu_util_mean": 97.5, "energy_j_per_image": math.nan, "input_bound": True}
    result.system["gpu_name"] = "H100"  # not numeric, not a known column
    (row,) = summary_rows([result])
    assert row["gpu_util_mean"] == 97.5 and row["input_bound"] is True
    assert row["energy_j_per_image"] is None and "gpu_name" not in row
    assert "top1_per_train_hour" not in row


def test_shown_system_columns_are_exported():
    assert {key for key, _, _ in SYSTEM_COLUMNS} <= set(SYSTEM_FIELDS)


def test_human_formats():
    assert percent(76.422) == "76.42%" and percent(math.nan) == ""
    assert rate(9520.4) == "9,520" and rate(12.34) == "12.3" and rate(None) == ""
    assert duration(3 * 3600 + 47 * 60) == "3h47m" and duration(125) == "2m05s"
    assert duration(42) == "42s" and duration(4.25) == "4.2s" and duration(math.nan) == ""


# --- on disk ----------------------------------------------------------------------------------


def test_load_results_prefers_result_json_and_folds_the_rest(sweep_dir: Path):
    results = load_results(sweep_dir)
    ids = [r.run_id for r in results]
    assert ids[:3] == ["bs256-sgd", "bs1024-sgd", "bs2048-sgd"] and len(ids) == 13
    by_id = {r.run_id: r for r in results}
    assert (sweep_dir / "bs256-sgd" / "result.json").is_file()
    assert by_id["bs256-sgd"].system["gpu_util_mean"] == 96.0  # only result.json has it
    assert not (sweep_dir / "bs1024-sgd" / "result.json").exists()
    folded = by_id["bs1024-sgd"]
    assert folded.system == {} and folded.status == "completed"
    assert folded.top1 == pytest.approx(76.228)
    assert folded.images_per_sec == pytest.approx(9520)
    assert folded.batch_size == 1024 and folded.optimizer == "sgd"
    failed = by_id["bs512-larc-tc0.1"]
    assert failed.status == "failed" and "exited with code 1" in failed.reason
    assert failed.epochs_done == 2
    assert by_id["bs8192-sgd"].status == "diverged"
    queued = by_id["bs16384-sgd"]
    assert queued.status == "queued" and queued.batch_size == 16384
    assert math.isnan(queued.top1)
    assert sweep_name(sweep_dir) == "seed-larc"


def test_load_results_of_a_live_run_without_sweep_json(tmp_path: Path):
    runs = RunPaths(tmp_path / "bs64-sgd")
    write_json_atomic(runs.config, seed.config(64, "sgd", None))
    with EventWriter(runs.rank0_events) as w:
        w.emit("run_start", t=100.0, world_size=2, device_names=["cpu", "cpu"])
        w.emit("epoch", t=110.0, epoch=1, step=5, images=640, seconds=10.0, train_seconds=10.0)
        w.emit("eval", t=111.0, epoch=1, step=5, top1=12.5, top5=40.0)
    runs.write_status("running")
    (result,) = load_results(tmp_path)
    assert result.status == "running" and result.top1 == 12.5
    assert result.images_per_sec == pytest.approx(64.0)
    assert "Still to come: 1 running" in recommend([result])
    assert sweep_name(tmp_path) == "seed-larc"  # from config.json's profile_name


def test_write_summary_writes_four_parseable_files(sweep_dir: Path):
    files = write_summary(sweep_dir)
    assert {p.name for p in (files.md, files.csv, files.json, files.png)} == {
        "summary.md",
        "summary.csv",
        "summary.json",
        "summary.png",
    }
    assert not list(sweep_dir.glob(".*.tmp"))

    data = json.loads(files.json.read_text())
    assert data["name"] == "seed-larc"
    assert data["recommendation"].startswith("Recommendation: bs1024-sgd keeps 99.75%")
    assert data["frontier"] == [
        "bs256-sgd",
        "bs1024-sgd",
        "bs2048-sgd",
        "bs4096-sgd",
        "bs4096-larc-tc0.02",
    ]
    assert data["rows"][0]["run_id"] == "bs256-sgd" and len(data["rows"]) == 13
    assert data["rows"][-1]["top1"] is None  # strict JSON: null, not NaN
    assert files.rows == data["rows"] and files.recommendation == data["recommendation"]

    with files.csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 13 and rows[0]["run_id"] == "bs256-sgd"
    assert float(rows[0]["top1"]) == pytest.approx(76.422)
    assert rows[0]["pareto"] == "True" and rows[-1]["top1"] == ""

    md = files.md.read_text()
    assert md.startswith("# seed-larc: accuracy and speed")
    for text in ("76.42%", "9,520", "4h23m", "| *", "Recommendation: bs1024-sgd"):
        assert text in md
    assert "- bs8192-sgd: diverged at epoch 3/90: loss is NaN at step 468" in md
    assert "- bs512-larc-tc0.1: failed at epoch 2/90: torchrun exited with code 1" in md
    assert "J/img" in md and "GPU mem" in md  # system fields shown where result.json has them
    assert "straggler" not in md  # no run has a value for it

    png = files.png.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    import matplotlib.image

    assert matplotlib.image.imread(files.png).shape[0] > 100


def test_write_summary_of_an_empty_sweep(tmp_path: Path):
    write_json_atomic(tmp_path / "sweep.json", {"name": "empty", "runs": []})
    files = write_summary(tmp_path, sort="images_per_sec")
    data = json.loads(files.json.read_text())
    assert data["rows"] == [] and data["frontier"] == []
    assert "none yet" in data["recommendation"]
    assert files.png.read_bytes().startswith(b"\x89PNG")
    assert files.csv.read_text().startswith("run_id,status,")


def test_console_table_shows_the_same_cells(sweep_dir: Path):
    from rich.console import Console

    rows = summary_rows(load_results(sweep_dir))
    table = format_console_table(rows, title="seed-larc")
    assert table.row_count == 13
    console = Console(width=240, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(table)
    text = console.export_text()
    assert "bs1024-sgd" in text and "76.42%" in text and "9,520" in text


def test_importing_the_summary_loads_neither_torch_nor_matplotlib():
    code = (
        "import sys, larsbench.summary.files\n"
        "bad = [m for m in ('torch', 'matplotlib', 'textual') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def _throughput(run_id: str, opt: str, ips: float, share: float, world: int = 8) -> RunResult:
    return RunResult(
        run_id=run_id,
        status="completed",
        mode="throughput",
        model="resnet50",
        epochs=90,
        batch_size=1024,
        per_rank_batch=1024 // world,
        world_size=world,
        optimizer=opt,
        trust_coefficient=0.02 if opt == "larc" else None,
        images_per_sec=ips,
        images_per_sec_per_gpu=ips / world,
        optimizer_share=share,
        step_seconds=1024 / ips,
        projected_run_seconds=3.5 * 3600,
    )


def test_throughput_sweeps_get_speed_advice_and_their_own_columns() -> None:
    results = [
        _throughput("bs1024-sgd", "sgd", 10_000.0, 0.05),
        _throughput("bs1024-larc-tc0.02", "larc", 9_600.0, 0.09),
    ]
    advice = recommend(results)
    assert advice.startswith("Throughput mode, no accuracy measured: bs1024-sgd is the fastest")
    assert "3h30m" in advice
    assert "LARC tc 0.02 at batch 1024 runs at 96.0% of plain SGD's speed" in advice
    from larsbench.summary.table import table_columns

    headers = [h for _, h, _ in table_columns(summary_rows(results))]
    assert "optimizer" in headers and "projected run" in headers and "step" in headers
    assert "top-1" not in headers  # nothing to show in a throughput-only sweep
    assert "frontier" not in headers


def test_throughput_advice_names_larc_runs_that_differ_by_another_key() -> None:
    results = [
        _throughput("bs1024-sgd", "sgd", 10_000.0, 0.05),
        _throughput("bs1024-larc-tc0.02-fusedoff", "larc", 9_000.0, 0.10),
        _throughput("bs1024-larc-tc0.02-fusedon", "larc", 9_500.0, 0.08),
    ]
    advice = recommend(results)
    assert "bs1024-larc-tc0.02-fusedoff runs at 90.0% of bs1024-sgd's speed" in advice
    assert "bs1024-larc-tc0.02-fusedon runs at 95.0% of bs1024-sgd's speed" in advice
    assert "LARC tc 0.02 at batch" not in advice


def test_a_throughput_sweep_is_sorted_and_described_by_speed() -> None:
    from larsbench.summary.markdown import render_markdown
    from larsbench.summary.rows import default_sort

    results = [
        _throughput("bs1024-larc-tc0.02", "larc", 9_600.0, 0.09),
        _throughput("bs1024-sgd", "sgd", 10_000.0, 0.05),
    ]
    sort = default_sort(results)
    assert sort == "images_per_sec"
    rows = summary_rows(results, sort=sort)
    assert [r["run_id"] for r in rows] == ["bs1024-sgd", "bs1024-larc-tc0.02"]
    text = render_markdown("tp", rows, recommend(results), sort)
    assert text.startswith("# tp: throughput\n")
    assert "Sorted by img/s. Throughput mode" in text
    assert "to best" not in text and "top-1" not in text.split("|")[0]
    trained = [*results, _throughput("bs256-sgd", "sgd", 5_000.0, 0.05)]
    trained[-1].mode, trained[-1].top1 = "train", 76.1
    assert default_sort(trained) == "top1"


def test_a_throughput_sweep_draws_img_s_bars_not_an_empty_scatter() -> None:
    from larsbench.summary.figure import render_png, throughput_figure
    from larsbench.summary.markdown import render_markdown

    results = [
        _throughput("bs1024-larc-tc0.02", "larc", 9_600.0, 0.09),
        _throughput("bs1024-sgd", "sgd", 10_000.0, 0.05),
    ]
    rows = summary_rows(results, sort="images_per_sec")
    (ax,) = throughput_figure(rows, "tp").axes
    widths = sorted(bar.get_width() for bar in ax.patches)
    assert widths == [9_600.0, 10_000.0]
    labels = [t.get_text() for t in ax.texts]
    assert "10,000.0  (optimizer 5.0%)" in labels and "9,600.0  (optimizer 9.0%)" in labels
    assert render_png(rows, "tp").startswith(b"\x89PNG")
    assert "![img/s per run](summary.png)" in render_markdown("tp", rows, "", "images_per_sec")


def test_the_accumulated_column_shows_only_when_a_run_accumulated() -> None:
    from larsbench.summary.table import table_columns

    def headers(*accumulate: int) -> list[str]:
        rows = [{"run_id": f"r{i}", "accumulate_steps": k} for i, k in enumerate(accumulate)]
        return [header for _, header, _ in table_columns(rows)]

    assert "accumulated" not in headers(1, 1)
    assert "accumulated" in headers(1, 2)
    assert "accumulated" in headers(2, 2)  # the batch column is then the effective batch

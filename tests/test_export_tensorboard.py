"""`larsbench export tensorboard` and the live export, read back with TensorBoard's own reader."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from larsbench.cli import main
from larsbench.events import read_events
from larsbench.export.tensorboard import (
    PIP_COMMAND,
    RunExporter,
    TensorBoardObserver,
    export_tensorboard,
)
from larsbench.export.tensorboard_points import FoldState, Scalar, system_points
from larsbench.plan.run import RunConfig
from larsbench.rundir import RunPaths, SweepPaths, read_json
from tests.fixtures.make_sweep import LAYERS, RUNS, make_recorded_sweep

ea_module = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="the tensorboard extra (in the test extras) reads the files back",
)
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402

RUN_IDS = list(RUNS)
LARC_IDS = [r for r in RUN_IDS if "larc" in r]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_recorded_sweep(tmp_path_factory.mktemp("tb"))


def accumulate(run_dir: Path) -> ea_module.EventAccumulator:
    guidance = {"scalars": 0, "histograms": 0, "tensors": 0}
    acc = ea_module.EventAccumulator(str(run_dir), size_guidance=guidance)
    acc.Reload()
    return acc


def points(tb_run: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar and histogram of one TensorBoard run, as (step, value or count)."""
    acc = accumulate(tb_run)
    out = {tag: [(s.step, s.value) for s in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    for tag in acc.Tags()["histograms"]:
        out[tag] = [(h.step, h.histogram_value.num) for h in acc.Histograms(tag)]
    return out


def hparams_plugin(acc: ea_module.EventAccumulator) -> dict[str, plugin_data_pb2.HParamsPluginData]:
    content = acc.PluginTagToContent("hparams")
    return {tag: plugin_data_pb2.HParamsPluginData.FromString(c) for tag, c in content.items()}


def test_export_writes_scalars_trust_histograms_and_hparams_for_every_run(sweep, tmp_path, capsys):
    out = tmp_path / "tb"
    assert main(["export", "tensorboard", str(sweep), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(RUN_IDS)
    for run_id in RUN_IDS:
        acc = accumulate(out / run_id)
        scalars = set(acc.Tags()["scalars"])
        rank0 = read_events(sweep / run_id / "events" / "rank0.jsonl")
        steps = [e for e in rank0 if e["kind"] == "step"]
        evals = [e for e in rank0 if e["kind"] == "eval"]
        for tag in (
            "train/loss",
            "train/lr",
            "train/images_per_sec",
            "train/rank1_images_per_sec",
            "train/data_wait_fraction",
            "eval/top1",
            "eval/top5",
            "node0/host/cpu_percent",
            "node0/rank0/cpu_percent",
            "hparams/top1",
            "hparams/images_per_sec",
            "hparams/time_to_best_seconds",
        ):
            assert tag in scalars, (run_id, tag)
        loss = acc.Scalars("train/loss")
        assert [s.step for s in loss] == [e["step"] for e in steps]
        assert loss[-1].value == pytest.approx(steps[-1]["loss"])
        assert loss[-1].wall_time == pytest.approx(steps[-1]["t"])
        assert acc.Scalars("eval/top1")[-1].value == pytest.approx(evals[-1]["top1"])
        plugin = hparams_plugin(acc)
        assert plugin["_hparams_/experiment"].experiment.metric_infos[0].name.tag == "hparams/top1"
        start = plugin["_hparams_/session_start_info"].session_start_info.hparams
        config = read_json(sweep / run_id / "config.json")
        assert start["batch_size"].number_value == config["train"]["batch_size"]
        assert start["optimizer"].string_value == config["optimizer"]["name"]
        assert start["loader"].string_value == config["data"]["loader"] == "torch"
        assert start["data"].string_value == "digits"
        assert "_hparams_/session_end_info" in plugin  # every fixture run has ended
        trust = [e for e in rank0 if e["kind"] == "trust"]
        if run_id in LARC_IDS:
            assert set(acc.Tags()["histograms"]) == {"trust/factor", "trust/local_lr"}
            histos = acc.Histograms("trust/factor")
            assert [h.step for h in histos] == [e["step"] for e in trust]
            assert histos[0].histogram_value.num == len(LAYERS)
            for layer in LAYERS:
                assert f"trust_factor/{layer}" in scalars and f"trust_local_lr/{layer}" in scalars
            last = acc.Scalars(f"trust_local_lr/{LAYERS[-1]}")[-1]
            assert last.value == pytest.approx(trust[-1]["local_lr"][-1], rel=1e-6)
        else:
            assert not trust and acc.Tags()["histograms"] == []


def test_the_hparams_table_lists_every_value_of_the_sweep(sweep, tmp_path):
    out = export_tensorboard(sweep, tmp_path / "tb")
    experiment = hparams_plugin(accumulate(out / "bs64-sgd"))["_hparams_/experiment"].experiment
    infos = {i.name: i for i in experiment.hparam_infos}
    assert set(infos) >= {"batch_size", "lr", "optimizer", "trust_coefficient", "amp", "loader"}
    assert list(infos["optimizer"].domain_discrete.values) != []
    assert {v.string_value for v in infos["optimizer"].domain_discrete.values} == {"sgd", "larc"}


def test_tensorboards_hparams_plugin_lists_every_run_with_its_metrics(sweep, tmp_path):
    """The HParams view's own backend (as `tensorboard --logdir` serves it), in process."""
    import json

    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import hparams_plugin
    from werkzeug.test import Client

    out = str(export_tensorboard(sweep, tmp_path / "tb"))
    mux = pem.EventMultiplexer()
    mux.AddRunsFromDirectory(out)
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, out)
    context = base_plugin.TBContext(logdir=out, data_provider=provider, multiplexer=mux)
    app = hparams_plugin.HParamsPlugin(context).get_plugin_apps()["/session_groups"]
    statuses = ["STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING", "STATUS_UNKNOWN"]
    request = {"experimentName": "", "allowedStatuses": statuses, "startIndex": 0}
    reply = Client(app).post(
        "/",
        data=json.dumps({**request, "colParams": [], "sliceSize": 100}),
        content_type="application/json",
    )
    assert reply.status_code == 200
    groups = {g["name"]: g for g in json.loads(reply.get_data())["sessionGroups"]}
    assert sorted(groups) == sorted(RUN_IDS)
    larc = groups["bs64-larc-tc0.02"]
    assert larc["hparams"]["optimizer"] == "larc" and larc["hparams"]["batch_size"] == 64
    metrics = {m["name"]["tag"]: m["value"] for m in larc["metricValues"]}
    result = read_json(sweep / "bs64-larc-tc0.02" / "result.json")
    assert metrics["hparams/top1"] == pytest.approx(result["top1"], rel=1e-6)
    assert metrics["hparams/images_per_sec"] == pytest.approx(result["images_per_sec"], rel=1e-6)
    assert metrics["hparams/time_to_best_seconds"] == pytest.approx(
        result["time_to_best_seconds"], rel=1e-5
    )
    assert groups["bs512-larc-tc0.02"]["sessions"][0]["status"] == "STATUS_FAILURE"


def test_export_again_writes_no_point_twice(sweep, tmp_path):
    out = tmp_path / "tb"
    export_tensorboard(sweep, out)
    first = {run_id: points(out / run_id) for run_id in RUN_IDS}
    export_tensorboard(sweep, out)
    assert {run_id: points(out / run_id) for run_id in RUN_IDS} == first
    assert all(len(list((out / r).glob("events.out.tfevents.*"))) == 1 for r in RUN_IDS)


def test_a_running_run_exports_what_it_has_and_no_session_end(sweep, tmp_path):
    run = RunPaths(tmp_path / "live" / "bs64-larc-tc0.02")
    run.root.mkdir(parents=True)
    shutil.copy(sweep / run.run_id / "config.json", run.config)
    _copy_growing(sweep / run.run_id, run.root, 0.5)
    run.write_status("running")
    out = export_tensorboard(run.root, tmp_path / "tb")
    acc = accumulate(out / run.run_id)
    half = [e for e in read_events(run.rank0_events) if e["kind"] == "step"]
    assert [s.step for s in acc.Scalars("train/loss")] == [e["step"] for e in half]
    plugin = hparams_plugin(acc)
    assert "_hparams_/session_start_info" in plugin
    assert "_hparams_/session_end_info" not in plugin


def test_a_run_folder_exports_alone(sweep, tmp_path):
    out = export_tensorboard(sweep / "bs64-sgd", tmp_path / "tb")
    assert [p.name for p in out.iterdir()] == ["bs64-sgd"]


def _copy_growing(src: Path, dst: Path, fraction: float) -> None:
    """dst gets the first `fraction` of each of src's event files (whole lines)."""
    for path in sorted((src / "events").glob("*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        target = dst / "events" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(lines[: round(len(lines) * fraction)]), encoding="utf-8")


def test_a_live_export_during_the_sweep_holds_the_same_points_as_one_after(sweep, tmp_path):
    """The launcher's observer, fed a sweep whose files grow (and whose rank-0 file is cut
    back once, as a resumed run does), writes what an export of the finished sweep writes."""
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(sweep / "sweep.json", live / "sweep.json")
    configs = [r["config"] for r in read_json(sweep / "sweep.json")["runs"]]
    plan = SimpleNamespace(runs=[RunConfig.from_dict(c) for c in configs])
    observer = TensorBoardObserver(live / "tensorboard")
    observer.sweep_started(plan, SweepPaths(live))
    for index, run in enumerate(plan.runs, start=1):
        src, paths = sweep / run.run_id, RunPaths(live / run.run_id)
        paths.root.mkdir()
        shutil.copy(src / "config.json", paths.config)
        paths.write_status("running")
        observer.run_started(run, paths, index, len(plan.runs))
        for fraction in (0.0, 0.2, 0.5, 0.35, 0.8, 1.0):  # 0.5 -> 0.35: the file is cut
            _copy_growing(src, paths.root, fraction)
            observer.run_events(run, [])
        shutil.copy(src / "status.json", paths.status)
        observer.run_finished(run, None)
    observer.sweep_finished([], SweepPaths(live))
    after = export_tensorboard(sweep, tmp_path / "after")
    for run_id in RUN_IDS:
        got = points(live / "tensorboard" / run_id)
        assert got == points(after / run_id), run_id
        assert len(got["train/loss"]) == len({step for step, _ in got["train/loss"]})
        acc = accumulate(live / "tensorboard" / run_id)
        assert "_hparams_/session_end_info" in hparams_plugin(acc)


def test_gpu_samples_give_utilisation_memory_power_and_energy_per_gpu():
    state = FoldState()
    sample = {
        "kind": "system",
        "t": 10.0,
        "node": "n0",
        "devices": [
            {
                "local_rank": 1,
                "gpu_util": 97.0,
                "mem_util": 40.0,
                "memory_used": 2**30,
                "power_draw": 301.5,
                "energy": 5000.0,
                "temperature": 61,
            }
        ],
    }
    first = system_points("system-n0", sample, state)
    later = system_points(
        "system-n0",
        {
            **sample,
            "t": 11.0,
            "devices": [{**sample["devices"][0], "energy": 5300.0, "gpu_util": None}],
        },
        state,
    )
    by_tag = {p.tag: p for p in first}
    assert by_tag["n0/gpu1/util_percent"] == Scalar("n0/gpu1/util_percent", 97.0, 0, 10.0)
    assert by_tag["n0/gpu1/memory_used_bytes"].value == 2**30
    assert by_tag["n0/gpu1/power_watts"].value == 301.5
    assert by_tag["n0/gpu1/energy_joules"].value == 0.0
    later_tags = {p.tag: p for p in later}
    assert later_tags["n0/gpu1/energy_joules"] == Scalar("n0/gpu1/energy_joules", 300.0, 1, 11.0)
    assert "n0/gpu1/util_percent" not in later_tags  # a null reading is no point


def test_without_the_extra_the_export_is_an_error_naming_the_pip_command(
    sweep, tmp_path, capsys, monkeypatch
):
    for name in [m for m in sys.modules if m == "tensorboard" or m.startswith("tensorboard.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    assert main(["export", "tensorboard", str(sweep), "--out", str(tmp_path / "tb")]) == 2
    assert PIP_COMMAND in capsys.readouterr().err
    assert not (tmp_path / "tb").exists()

    profile = tmp_path / "p.toml"
    smoke = Path(__file__).resolve().parent.parent / "profiles" / "smoke.toml"
    profile.write_text(smoke.read_text() + "\n[export]\ntensorboard = true\n")
    out = tmp_path / "sweep"
    assert main(["run", "--profile", str(profile), "--out", str(out), "--no-telemetry"]) == 2
    err = capsys.readouterr().err
    assert "export.tensorboard" in err and PIP_COMMAND in err
    assert not (out / "sweep.json").exists()  # nothing launched


def test_not_a_sweep_or_run_folder(tmp_path, capsys):
    assert main(["export", "tensorboard", str(tmp_path)]) == 2
    assert "not a sweep or run directory" in capsys.readouterr().err


def test_exporter_of_a_queued_run_writes_nothing(tmp_path):
    run = RunPaths(tmp_path / "bs64-sgd")
    run.root.mkdir()
    assert RunExporter(run, tmp_path / "tb").export_all() == 0
    assert not (tmp_path / "tb" / "bs64-sgd").exists()


@pytest.mark.slow
def test_larsbench_run_exports_live_what_an_export_after_it_writes(tmp_path):
    """A real smoke sweep (2 runs, 1 epoch) with [export] tensorboard = true and
    --json-progress: the launcher's live files equal an export of the finished sweep."""
    import json
    import subprocess

    root = Path(__file__).resolve().parent.parent
    profile = tmp_path / "smoke-tb.toml"
    profile.write_text(
        (root / "profiles" / "smoke.toml").read_text() + "\n[export]\ntensorboard = true\n"
    )
    out = tmp_path / "sweep"
    args = ["--set", "train.epochs=1", "--set", "sweep.train.batch_size=[64]", "--no-telemetry"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "larsbench.cli",
            "run",
            "--profile",
            str(profile),
            "--out",
            str(out),
            "--json-progress",
            *args,
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    events = [json.loads(line)["event"] for line in done.stdout.splitlines()]
    assert events[0] == "sweep_start" and events[-1] == "sweep_end" and "progress" in events
    after = export_tensorboard(out, tmp_path / "after")
    for run_id in ("bs64-sgd", "bs64-larc-tc0.02"):
        live = points(out / "tensorboard" / run_id)
        assert live == points(after / run_id) and live["train/loss"]
        assert ("trust/factor" in live) == ("larc" in run_id)

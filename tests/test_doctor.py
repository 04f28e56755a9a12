"""larsbench doctor's verdicts from fake figures of a GPU node: each problem gives warn or fail
with a sentence that says what to do; healthy figures give ok."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_pynvml import FakeNvml, GiB, eight_gpus, install

from larsbench.doctor import bandwidth, cuda_checks, data_check, devices, speed, storage
from larsbench.doctor.training_path import PathTrace, judge_training_path
from larsbench.doctor.verdict import FAIL, OK, WARN, DoctorReport, Verdict
from larsbench.feed import FeedCheck
from larsbench.plan.machine import Machine
from larsbench.results import RunResult
from larsbench.sweep.prepare import prepare_sweep

PROFILES = Path(__file__).resolve().parents[1] / "profiles"
A100 = "NVIDIA A100-SXM4-80GB"


def result(opt: str, world: int, ips: float, share: float = 0.05) -> RunResult:
    return RunResult(
        run_id=f"bs{256 * world}-{opt}-np{world}",
        status="completed",
        model="resnet50",
        optimizer=opt,
        world_size=world,
        per_rank_batch=256,
        images_per_sec=ips,
        images_per_sec_per_gpu=ips / world,
        optimizer_share=share,
    )


def by_check(verdicts: list[Verdict]) -> dict[str, Verdict]:
    return {v.check: v for v in verdicts}


# --- training speed ------------------------------------------------------------------------


def test_a_healthy_a100_node_is_ok_against_the_published_table() -> None:
    # DeepLearningExamples, A100 80GB, mixed precision: 2470 img/s on 1, 16621 on 8 GPUs.
    results = [
        result("sgd", 1, 2400),
        result("larc", 1, 2300),
        result("sgd", 8, 16000),
        result("larc", 8, 15500),
    ]
    verdicts = by_check(speed.judge_speed(results, "cuda", A100, "fp16"))
    assert verdicts["speed sgd 1 GPU"].status == OK
    assert "2,470" in verdicts["speed sgd 1 GPU"].expected
    assert verdicts["speed sgd 8 GPUs"].status == OK
    assert verdicts["scaling sgd 1 -> 8 GPUs"].status == OK
    assert verdicts["LARC vs SGD 8 GPUs"].status == OK


def test_a_slow_gpu_fails_and_says_where_to_look() -> None:
    results = [result("sgd", 1, 900), result("larc", 1, 880)]
    v = by_check(speed.judge_speed(results, "cuda", A100, "fp16"))["speed sgd 1 GPU"]
    assert v.status == FAIL
    assert "36%" in v.advice and "nvidia-smi -q -d PERFORMANCE" in v.advice


def test_a_somewhat_slow_gpu_warns() -> None:
    v = by_check(speed.judge_speed([result("sgd", 1, 1700)], "cuda", A100, "fp16"))
    assert v["speed sgd 1 GPU"].status == WARN


def test_poor_scaling_and_a_slow_larc_warn_with_what_to_do() -> None:
    results = [
        result("sgd", 1, 2400),
        result("sgd", 8, 12000),  # 62% per GPU
        result("larc", 1, 2300),
        result("larc", 8, 8000, share=0.3),  # 67% of SGD's img/s at 8
    ]
    v = by_check(speed.judge_speed(results, "cuda", A100, "fp16"))
    assert v["scaling sgd 1 -> 8 GPUs"].status == WARN
    assert "all-reduce" in v["scaling sgd 1 -> 8 GPUs"].advice
    assert v["LARC vs SGD 8 GPUs"].status == WARN
    assert "optimizer.fused" in v["LARC vs SGD 8 GPUs"].advice
    assert "30% of LARC's step" in v["LARC vs SGD 8 GPUs"].measured


def test_a_gpu_missing_from_the_table_is_measured_not_judged() -> None:
    v = by_check(
        speed.judge_speed([result("sgd", 1, 3000)], "cuda", "NVIDIA H100 80GB HBM3", "fp16")
    )
    assert v["speed sgd 1 GPU"].status == OK
    assert "not in the table" in v["speed sgd 1 GPU"].expected


def test_a_failed_throughput_run_fails_its_row() -> None:
    broken = RunResult(
        run_id="bs256-sgd-np1",
        status="failed",
        reason="CUDA out of memory",
        optimizer="sgd",
        world_size=1,
    )
    [v] = speed.judge_speed([broken], "cuda", A100, "fp16")
    assert v.status == FAIL and "out of memory" in v.measured and "torchrun.log" in v.advice


# --- all-reduce bandwidth ---------------------------------------------------------------------


def allreduce(busbw: float, world: int = 8, correct: bool = True) -> bandwidth.AllReduceResult:
    rows = [{"bytes": 512 << 20, "seconds": 0.01, "algbw_gbps": busbw / 1.75, "busbw_gbps": busbw}]
    return bandwidth.AllReduceResult(world, "nccl", correct, rows)


def test_the_bus_factor_is_nccl_tests_2_n_minus_1_over_n() -> None:
    from larsbench.doctor.allreduce import bus_factor

    assert bus_factor(8) == pytest.approx(1.75) and bus_factor(2) == 1.0 and bus_factor(1) == 0.0


def test_expected_bandwidth_per_interconnect() -> None:
    nvlink3 = bandwidth.expected_busbw(bandwidth.Interconnect(12, 3, 4, 16))
    nvlink4 = bandwidth.expected_busbw(bandwidth.Interconnect(18, 4, 5, 16))
    pcie4 = bandwidth.expected_busbw(bandwidth.Interconnect(0, None, 4, 16))
    assert nvlink3 is not None and nvlink3[0] == 300 and "NVLink 3" in nvlink3[1]
    assert nvlink4 is not None and nvlink4[0] == 450
    assert pcie4 is not None and pcie4[0] == pytest.approx(31.5, rel=0.01)
    assert bandwidth.expected_busbw(bandwidth.Interconnect()) is None


def test_low_bandwidth_fails_and_names_the_topology_check() -> None:
    expected = bandwidth.expected_busbw(bandwidth.Interconnect(12, 3))
    low = bandwidth.judge_bandwidth(allreduce(60), "", expected)
    assert low.status == FAIL and "nvidia-smi topo -m" in low.advice and "20%" in low.advice
    assert bandwidth.judge_bandwidth(allreduce(150), "", expected).status == WARN
    assert bandwidth.judge_bandwidth(allreduce(230), "", expected).status == OK


def test_wrong_sums_or_no_run_fail() -> None:
    assert bandwidth.judge_bandwidth(allreduce(230, correct=False), "", None).status == FAIL
    v = bandwidth.judge_bandwidth(None, "torchrun exited with 1 (log: x)", None)
    assert v.status == FAIL and "NCCL_DEBUG=INFO" in v.advice


def test_one_rank_has_no_link_to_judge() -> None:
    v = bandwidth.judge_bandwidth(allreduce(0, world=1), "", None)
    assert v.status == OK and "one rank" in v.expected


def test_nvml_without_nvlink_fields_reads_no_interconnect(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeNvml(eight_gpus()))  # the fake has no NvLink/PCIe functions
    assert bandwidth.read_interconnect(0) == bandwidth.Interconnect()


# --- devices --------------------------------------------------------------------------------


def smi_text(gpus: list[devices.GpuReading], hotter: float = 0.0) -> str:
    return "\n".join(
        f"{g.index}, {g.uuid}, {g.name}, {(g.memory_total or 0) // (1 << 20)}, "
        f"{(g.temperature or 0) + hotter:.0f}, {g.power_draw}"
        for g in gpus
    )


def test_eight_gpus_through_nvml_agree_with_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeNvml(eight_gpus()))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpus = devices.read_nvml()
    assert gpus is not None and len(gpus) == 8
    v = devices.judge_devices("cuda", 8, 4, 64, gpus)
    assert v.status == OK and "8 x NVIDIA H100 80GB HBM3 80 GiB" in v.measured
    cross = devices.judge_nvml_vs_smi(gpus, devices.parse_smi(smi_text(gpus)))
    assert cross is not None and cross.status == OK


def test_fewer_gpus_than_the_profile_needs_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeNvml(eight_gpus()))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    v = devices.judge_devices("cuda", 8, 4, 64, devices.read_nvml())
    assert v.status == FAIL and "CUDA_VISIBLE_DEVICES" in v.advice and "2" in v.advice


def test_no_nvml_on_a_cuda_profile_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, None)
    assert devices.read_nvml() is None
    v = devices.judge_devices("cuda", 8, 4, 64, None)
    assert v.status == FAIL and "nvidia-ml-py" in v.advice


def test_nvml_disagreeing_with_nvidia_smi_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeNvml(eight_gpus()))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpus = devices.read_nvml() or []
    text = smi_text(gpus).replace("81920", "40960", 1)  # GPU 0: 40 GiB per nvidia-smi
    v = devices.judge_nvml_vs_smi(gpus, devices.parse_smi(text))
    assert v is not None and v.status == FAIL and "GPU 0 memory" in v.measured
    assert "nvidia-ml-py" in v.advice


def test_a_temperature_outside_nvidia_smis_readings_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeNvml(eight_gpus()))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpus = devices.read_nvml() or []
    assert gpus[3].temperature == 63 and gpus[3].power_draw == 430
    near = devices.parse_smi(smi_text(gpus, hotter=1)) + devices.parse_smi(smi_text(gpus))
    assert devices.judge_nvml_vs_smi(gpus, near).status == OK  # type: ignore[union-attr]
    far = devices.parse_smi(smi_text(gpus, hotter=10))
    v = devices.judge_nvml_vs_smi(gpus, far)
    assert v is not None and v.status == FAIL and "temperature 60 C vs 70..70" in v.measured


def test_cpu_threads_beyond_the_cores_warn() -> None:
    assert devices.judge_devices("cpu", 2, 1, 2, None).status == OK
    v = devices.judge_devices("cpu", 4, 2, 2, None)
    assert v.status == WARN and "threads_per_rank" in v.advice


# --- data and the feed ----------------------------------------------------------------------


def feed(supply: float, demand: float = 19_800.0) -> FeedCheck:
    sentence = "input-bound: raise data.workers or decode on the GPU (data.decoder)"
    return FeedCheck(
        "torch/pil", supply / 64, 64, supply, demand, "gpu_reference", demand / supply, sentence
    )


def test_a_starved_loader_fails_or_warns_with_the_feed_checks_sentence() -> None:
    starved = data_check.judge_feed(feed(9_600), "")
    assert starved.status == FAIL and "data.workers" in starved.advice
    short = data_check.judge_feed(feed(15_000), "")
    assert short.status == WARN and short.advice
    assert data_check.judge_feed(feed(25_000), "").status == OK


def test_a_feed_check_that_could_not_run_warns_with_its_reason() -> None:
    v = data_check.judge_feed(None, "the feed check failed: no JPEG under train/")
    assert v.status == WARN and v.measured == "the feed check failed: no JPEG under train/"
    assert "benchmarks/data_pipeline.py" in v.advice


def test_data_held_in_memory_has_nothing_to_decode() -> None:
    run = prepare_sweep(PROFILES / "smoke.toml", [], Machine(gpus=0, cpus=2)).runs[0]
    got, note = data_check.measure_feed(run)
    assert got is None and "digits" in note
    v = data_check.judge_feed(got, note, run.data.source)
    assert v.status == OK and "nothing to decode" in v.measured


def test_the_feed_call_site_times_the_run_apart(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import larsbench.feed

    seen = []
    monkeypatch.setattr(
        larsbench.feed, "check_feed_apart", lambda run, *_: seen.append(run) or feed(25_000)
    )
    run = prepare_sweep(
        PROFILES / "smoke.toml",
        [("data.source", "imagefolder"), ("data.path", str(tmp_path))],
        Machine(gpus=0, cpus=2),
    ).runs[0]
    got, note = data_check.measure_feed(run)
    assert seen == [run] and note == "" and data_check.judge_feed(got, note).status == OK
    monkeypatch.setattr(larsbench.feed, "check_feed_apart", lambda run, *_: "did not finish")
    assert data_check.measure_feed(run) == (None, "did not finish")


def test_an_imagefolder_without_class_folders_fails(tmp_path: Path) -> None:
    run = prepare_sweep(
        PROFILES / "smoke.toml",
        [("data.source", "imagefolder"), ("data.path", str(tmp_path))],
        Machine(gpus=0, cpus=2),
    ).runs[0]
    assert data_check.class_count(run) is None
    v = data_check.judge_data("imagefolder", str(tmp_path), None)
    assert v.status == FAIL and "train/CLASS" in v.advice
    for split in ("train", "val"):
        for c in ("a", "b", "c"):
            (tmp_path / split / c).mkdir(parents=True)
    assert data_check.class_count(run) == 3
    assert data_check.judge_data("imagefolder", str(tmp_path), 3).status == OK


# --- disk and shm ---------------------------------------------------------------------------


def test_a_full_disk_fails_and_a_tight_one_warns(tmp_path: Path) -> None:
    need = 10 * GiB
    full = storage.judge_disk(tmp_path, 1 * GiB, need)
    assert full.status == FAIL and "--out" in full.advice
    assert storage.judge_disk(tmp_path, 15 * GiB, need).status == WARN
    assert storage.judge_disk(tmp_path, 100 * GiB, need).status == OK


def test_checkpoint_bytes_count_two_per_training_run() -> None:
    plan = prepare_sweep(PROFILES / "seed-larc.toml", [], Machine(gpus=8, cpus=64))
    resnet50 = 25_557_032 + 53_173  # parameters + BN buffers
    need = storage.checkpoint_bytes(plan.runs, resnet50)
    assert need == len(plan.runs) * 2 * 8 * resnet50


def test_a_small_shm_fails_with_the_docker_flag() -> None:
    torch_loader = [("data.loader", "torch")]
    run = prepare_sweep(PROFILES / "seed-larc.toml", torch_loader, Machine(gpus=8, cpus=64)).runs[0]
    need = storage.shm_bytes(run)
    # 8 ranks x workers x 4 prefetched uint8 batches of 224 px images
    per_batch = run.per_rank_batch * 224 * 224 * 3
    assert need == 8 * run.data.workers * 4 * per_batch
    small = storage.judge_shm(64 << 20, need, run.data.workers)  # Docker's default 64 MiB
    assert small.status == FAIL and "--shm-size=" in small.advice and "data.workers" in small.advice
    assert storage.judge_shm(int(need * 1.2), need, run.data.workers).status == WARN
    assert storage.judge_shm(need * 2, need, run.data.workers).status == OK
    assert storage.judge_shm(None, 0, 0).status == OK
    dali = prepare_sweep(PROFILES / "seed-larc.toml", [], Machine(gpus=8, cpus=64)).runs[0]
    assert dali.data.loader == "dali" and storage.shm_bytes(dali) == 0


# --- the training path and the CUDA checks --------------------------------------------------

FIRST = ["run_start", "step", "trust", "step", "epoch", "eval", "checkpoint", "step", "run_end"]


def test_the_training_path_passes_through_stop_and_resume() -> None:
    trace = PathTrace(
        FIRST, "stopped", "stopped", ["resume", "step", "run_end"], "completed", "completed"
    )
    assert judge_training_path(trace).status == OK


def test_a_resume_that_does_not_complete_fails() -> None:
    trace = PathTrace(
        FIRST,
        "stopped",
        "stopped",
        ["run_start", "run_end"],
        "failed",
        "failed",
        reason="rank 0 failed",
    )
    v = judge_training_path(trace, Path("/tmp/w"))
    assert v.status == FAIL and "/tmp/w" in v.advice


def test_a_path_without_checkpoints_or_trust_events_fails() -> None:
    v = judge_training_path(
        PathTrace(["run_start", "step", "eval", "run_end"], "completed", "completed")
    )
    assert v.status == FAIL and "checkpoint" in v.measured and "trust" in v.measured


def test_a_run_that_ends_before_the_stop_warns() -> None:
    v = judge_training_path(PathTrace(FIRST, "completed", "completed"))
    assert v.status == WARN and "rerun" in v.advice


def test_cuda_check_outputs_are_read() -> None:
    assert cuda_checks.judge_larc_nosync(0, "..\n2 passed in 3.1s\n").status == OK
    failed = cuda_checks.judge_larc_nosync(1, "1 failed, 1 passed\n")
    assert failed.status == FAIL and "-k on_cuda" in failed.advice
    bench = (
        "larsbench LARC / SGD: 1.20x (target <= 1.5x: ok)\n"
        "larsbench LARC, fused=True / SGD: 2.40x (target <= 1.5x: MISSED)\n"
    )
    v = cuda_checks.judge_optimizer_step(0, bench)
    assert v.status == WARN and "2.40x" in v.advice
    assert cuda_checks.judge_optimizer_step(None, "no benchmarks/").status == WARN


# --- the report -----------------------------------------------------------------------------


def test_a_warning_without_advice_is_refused() -> None:
    with pytest.raises(ValueError, match="without advice"):
        Verdict("x", "1", "2", WARN)


def test_the_report_exits_1_only_on_a_failure_and_round_trips_as_json(tmp_path: Path) -> None:
    from larsbench.doctor.report import closing_line, read_report, write_report

    report = DoctorReport("p.toml", True, "node0")
    report.add(Verdict("a", "1", "1", OK))
    report.add(Verdict("b", "1", "2", WARN, "do b"))
    assert report.exit_code == 0 and "PASS" in closing_line(report)
    report.add(Verdict("c", "1", "2", FAIL, "do c"))
    assert report.exit_code == 1 and "1 failed, 1 warned" in closing_line(report)
    write_report(report, tmp_path / "d.json")
    assert read_report(tmp_path / "d.json") == report


def test_doctor_on_a_bad_profile_exits_2_naming_the_key(tmp_path: Path) -> None:
    from larsbench.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[train]\nepochz = 3\n')
    assert main(["doctor", "--profile", str(bad)]) == 2


# --- the doctor's plans: the real sweep machinery, the profile's launch -----------------------


def test_the_speed_plan_times_resnet50_at_1_and_all_ranks_with_sgd_and_larc() -> None:
    machine = Machine(gpus=0, cpus=2)
    base = prepare_sweep(PROFILES / "smoke.toml", [("launch.threads_per_rank", 1)], machine)
    plan = speed.speed_plan(base, base.runs[0], machine, quick=True)
    got = sorted((r.nproc_per_node, r.optimizer.name) for r in plan.runs)
    assert got == [(1, "larc"), (1, "sgd"), (2, "larc"), (2, "sgd")]
    for r in plan.runs:
        assert r.model.arch == "resnet50" and r.train.mode == "throughput"
        assert r.per_rank_batch == 4 and r.data.source == "synthetic" and r.launch.nnodes == 1
    assert ("launch.threads_per_rank", 1) in plan.overrides  # the user's --set comes along


def test_the_path_plan_is_one_larc_run_on_the_generated_jpegs(tmp_path: Path) -> None:
    from larsbench.doctor.training_path import path_plan, write_jpegs

    machine = Machine(gpus=0, cpus=2)
    base = prepare_sweep(PROFILES / "smoke.toml", [], machine)
    images = write_jpegs(tmp_path, ranks=2)
    [run] = path_plan(base, base.runs[0], machine, tmp_path).runs
    assert run.optimizer.name == "larc" and run.data.source == "imagefolder"
    assert run.nproc_per_node == 2 and run.train.checkpoint_every == 1
    assert images // run.train.batch_size == 12  # steps per epoch
    assert data_check.class_count(run) == 2


@pytest.mark.parametrize(
    "module",
    [
        "larsbench.doctor.preflight",
        "larsbench.doctor.report",
        "larsbench.doctor.cuda_checks",
        "larsbench.tui.screens.doctor",
    ],
)
def test_the_doctor_process_imports_no_torch(module: str) -> None:
    import subprocess
    import sys

    code = f"import sys, {module}; print('torch' in sys.modules, 'textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    torch_loaded, textual_loaded = out.stdout.split()
    assert torch_loaded == "False"
    assert textual_loaded == str(module.startswith("larsbench.tui"))

"""Runs the doctor's checks in order for a profile on this node; each check gives verdicts."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from larsbench.doctor import bandwidth, data_check, devices, plans, speed, storage, training_path
from larsbench.doctor.verdict import FAIL, WARN, DoctorReport, Verdict
from larsbench.plan.machine import Machine
from larsbench.rundir import node_name
from larsbench.sweep.prepare import prepare_sweep

Progress = Callable[[str], None]


def _guarded(name: str, report: DoctorReport, progress: Progress, fn: Callable[[], object]) -> None:
    """Run one check; an exception becomes that check's failure, and the others still run."""
    progress(f"doctor: {name} ...")
    started = time.monotonic()
    try:
        out = fn()
    except Exception as err:
        out = Verdict(
            name,
            f"{type(err).__name__}: {err}"[:300],
            "runs",
            FAIL,
            "the check itself crashed: rerun with the same command and report the message",
        )
    if isinstance(out, (Verdict, list)):
        report.add(out)
    progress(f"doctor: {name} done in {time.monotonic() - started:.0f} s")


def run_doctor(
    profile_path: Path,
    quick: bool,
    overrides: list[tuple[str, Any]] | None = None,
    progress: Progress = lambda _line: None,
    machine: Machine | None = None,
) -> tuple[DoctorReport, Path | None]:
    """Every check for the profile's first run on this node; returns the report and the work
    folder when it was kept (something failed: its logs are there). ConfigError if the profile
    is invalid."""
    machine = machine or Machine.here()
    plan = prepare_sweep(profile_path, overrides or [], machine)
    run = plan.runs[0]
    report = DoctorReport(str(profile_path), quick, node_name())
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="larsbench-doctor-"))
    gpus, smi = devices.read_bracketed() if run.device == "cuda" else (None, None)
    gpu_name = gpus[0].name if gpus else None

    def check_devices() -> list[Verdict]:
        out = [
            devices.judge_devices(
                run.device, run.nproc_per_node, run.threads_per_rank, machine.cpus, gpus
            )
        ]
        cross = devices.judge_nvml_vs_smi(gpus, smi)
        return out + ([cross] if cross else [])

    _guarded("devices", report, progress, check_devices)
    ready = not report.failed

    classes = data_check.class_count(run)
    elements: list[int] = []  # the model's, counted by the all-reduce's ranks

    def check_bandwidth() -> Verdict:
        expected = None
        if gpus:
            expected = bandwidth.expected_busbw(bandwidth.read_interconnect(gpus[0].index))
        sizes = bandwidth.SIZES_QUICK if quick else bandwidth.SIZES_FULL
        result, error = bandwidth.measure_bandwidth(
            run, work, sizes, 10 if quick else 20, classes or run.data.num_classes
        )
        if result is not None and result.model_elements:
            elements.append(result.model_elements)
        return bandwidth.judge_bandwidth(result, error, expected)

    def check_speed() -> list[Verdict]:
        results = speed.measure_speed(plan, run, machine, quick, work)
        return speed.judge_speed(results, run.device, gpu_name, run.train.amp)

    def check_data() -> list[Verdict]:
        feed, note = data_check.measure_feed(run)
        return [
            data_check.judge_data(run.data.source, run.data.path, classes),
            data_check.judge_feed(feed, note, run.data.source),
        ]

    def check_storage() -> list[Verdict]:
        needed = storage.checkpoint_bytes(plan.runs, elements[0]) if elements else None
        where = Path("runs") / plan.profile.name
        shm = Path("/dev/shm")
        return [
            storage.judge_disk(where, storage.free_bytes(where), needed),
            storage.judge_shm(
                storage.free_bytes(shm) if shm.is_dir() else None,
                max(storage.shm_bytes(r) for r in plan.runs),
                run.data.workers,
            ),
        ]

    def check_path() -> Verdict:
        trace = training_path.measure_training_path(plan, run, machine, work)
        return training_path.judge_training_path(trace, work / "path")

    device_checks = [("all-reduce", check_bandwidth), ("training speed", check_speed)]
    checks = [*device_checks, ("data", check_data), ("storage", check_storage)]
    checks.append(("training path", check_path))
    for name, fn in checks:
        if plans.stop_requested():
            break
        if not ready and name in ("all-reduce", "training speed", "training path"):
            report.add(
                Verdict(
                    name,
                    "not run",
                    "devices first",
                    WARN,
                    "fix the devices check above, then run doctor again",
                )
            )
            continue
        _guarded(name, report, progress, fn)
    if run.device == "cuda" and ready and not plans.stop_requested():
        from larsbench.doctor import cuda_checks

        _guarded("LARC no-sync on CUDA", report, progress, cuda_checks.run_larc_nosync)
        _guarded(
            "LARC step vs SGD (GPU)",
            report,
            progress,
            lambda: cuda_checks.run_optimizer_step(10 if quick else 30),
        )
    report.seconds = time.monotonic() - started
    if plans.stop_requested():
        report.add(
            Verdict(
                "doctor",
                "stopped by a signal",
                "all checks run",
                WARN,
                "the checks after this point did not run: run doctor again",
            )
        )
    if report.failed:
        return report, work
    shutil.rmtree(work, ignore_errors=True)
    return report, None

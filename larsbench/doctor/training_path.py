"""The training-path check: the real loop on generated JPEGs through train, eval, checkpoint,
trust events, a stop, and a resume that finishes the run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from larsbench.doctor.plans import EventLog, doctor_plan, run_plan
from larsbench.doctor.verdict import FAIL, OK, WARN, Verdict
from larsbench.events import read_events
from larsbench.plan.machine import Machine
from larsbench.plan.run import RunConfig
from larsbench.rundir import SweepPaths
from larsbench.sweep.prepare import SweepPlan

CLASSES = 2
IMAGE_SIZE = 32
BATCH_PER_RANK = 4
STEPS_PER_EPOCH = 12
EPOCHS = 4  # the stop lands in epoch 2; epochs 3-4 give it time to arrive before the end
STOP_EPOCH = 2


def write_jpegs(root: Path, ranks: int) -> int:
    """train/ and val/ of two classes of 40x40 JPEGs of the same noise; returns the training
    image count. Nothing to learn: the loss stays near ln 2, so no guard ends the run early."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    per_class = {"train": STEPS_PER_EPOCH * BATCH_PER_RANK * ranks // CLASSES, "val": 2 * ranks}
    for split, n in per_class.items():
        for c in range(CLASSES):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = np.clip(rng.normal(128, 40, (40, 40, 3)), 0, 255)
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.jpg", quality=90)
    return per_class["train"] * CLASSES


def path_plan(base: SweepPlan, run: RunConfig, machine: Machine, data_root: Path) -> Any:
    """One small LARC run of the profile's launch, amp and decoder on the generated JPEGs."""
    overrides: list[tuple[str, Any]] = [
        ("name", f"{run.profile_name}-doctor-path"),
        ("launch.device", run.device),
        ("launch.backend", run.backend),
        ("launch.nproc_per_node", run.nproc_per_node),
        ("model.arch", "resnet18"),
        ("model.small_input", True),
        ("model.width", 0.25),
        ("data.source", "imagefolder"),
        ("data.path", str(data_root)),
        ("data.image_size", IMAGE_SIZE),
        ("data.val_resize", 0),
        ("data.workers", 0 if run.device == "cpu" else min(run.data.workers, 2)),
        ("train.mode", "train"),
        ("train.epochs", EPOCHS),
        ("train.batch_per_rank", BATCH_PER_RANK),
        ("train.max_steps_per_epoch", 0),
        ("train.warmup_epochs", 0),
        ("train.schedule", "constant"),
        ("train.log_every", 1),
        ("train.eval_every", 1),
        ("train.checkpoint_every", 1),
        ("optimizer.name", "larc"),
        ("optimizer.stats_every", 2),
    ]
    return doctor_plan(base, overrides, {}, machine)


@dataclass
class PathTrace:
    """What the two attempts of the run did: event kinds, how each ended."""

    first_kinds: list[str] = field(default_factory=list)
    first_end: str = ""  # run_end status of the first attempt ("stopped" expected)
    first_state: str = ""
    second_kinds: list[str] = field(default_factory=list)
    second_end: str = ""
    second_state: str = ""
    reason: str = ""
    seconds: float = 0.0


def _end(events: list[dict[str, Any]]) -> str:
    return next((e.get("status", "") for e in reversed(events) if e["kind"] == "run_end"), "")


def measure_training_path(
    base: SweepPlan, run: RunConfig, machine: Machine, work: Path
) -> PathTrace:
    import time

    started = time.monotonic()
    write_jpegs(work / "jpegs", run.nproc_per_node)
    plan = path_plan(base, run, machine, work / "jpegs")
    out = work / "path"

    def stop_in_epoch_2(_run_id: str, event: dict[str, Any]) -> None:
        if event["kind"] == "step" and event.get("epoch") == STOP_EPOCH and log.runner:
            log.runner.stop_run("doctor: the stop test")

    log = EventLog(on_event=stop_in_epoch_2)
    [first] = run_plan(plan, out, log)
    first_events = log.events.get(first.run_id, [])
    trace = PathTrace(
        first_kinds=[e["kind"] for e in first_events],
        first_end=_end(first_events),
        first_state=first.status,
        reason=first.reason,
    )
    if first.status == "stopped":
        [second] = run_plan(plan, out)
        # The file, not the live tail: a tail that read past the checkpoint's offset before
        # the resumed worker cut the file there can miss the events it rewrote (resume first).
        events = read_events(SweepPaths(out).run(second.run_id).rank0_events)
        starts = [i for i, e in enumerate(events) if e["kind"] == "resume"]
        second_events = events[starts[-1] :] if starts else []
        trace.second_kinds = [e["kind"] for e in second_events]
        trace.second_end = _end(second_events)
        trace.second_state = second.status
        trace.reason = second.reason
    trace.seconds = time.monotonic() - started
    return trace


FIRST_NEEDS = ("run_start", "step", "eval", "checkpoint", "trust")


def judge_training_path(trace: PathTrace, where: Path | None = None) -> Verdict:
    """Each stage of the path seen in the events, in the two attempts."""
    check = "training path"
    expected = "steps, eval, checkpoint, trust, stop, resume, completed"
    logs = f" (logs under {where})" if where else ""
    missing = [k for k in FIRST_NEEDS if k not in trace.first_kinds]
    if trace.first_state in ("failed", "diverged") or missing:
        what = f"missing {', '.join(missing)}" if missing else trace.first_state
        return Verdict(
            check,
            f"first attempt {trace.first_state}: {what}; {trace.reason}".strip("; "),
            expected,
            FAIL,
            f"the training loop broke on this node: read logs/torchrun.log of the run{logs}",
        )
    if trace.first_state != "stopped" or trace.first_end != "stopped":
        return Verdict(
            check,
            f"first attempt ended {trace.first_state} before the stop reached it",
            expected,
            WARN,
            "stop and resume were not exercised (the run was too fast): rerun doctor; if it "
            "repeats, the stop signal is not reaching the ranks",
        )
    if "resume" not in trace.second_kinds or trace.second_state != "completed":
        return Verdict(
            check,
            f"stopped, then the resume ended {trace.second_state or 'not started'}: {trace.reason}",
            expected,
            FAIL,
            f"a stopped run does not resume from its checkpoint here{logs}: check the "
            "checkpoint folder is writable and read logs/torchrun.log",
        )
    steps = trace.first_kinds.count("step") + trace.second_kinds.count("step")
    trust = trace.first_kinds.count("trust") + trace.second_kinds.count("trust")
    return Verdict(
        check,
        f"{steps} step reports, {trust} trust events, stopped, resumed, completed in "
        f"{trace.seconds:.0f} s",
        expected,
        OK,
    )

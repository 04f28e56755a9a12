"""The training loop in one process: one gloo rank, the smoke profile's digits, no torchrun."""

from __future__ import annotations

import socket
import time
import tomllib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from cli_helpers import SMOKE
from torch import nn
from torch.utils.data import Dataset

from larsbench.events import read_events
from larsbench.optim import LARC
from larsbench.plan.expand import expand
from larsbench.plan.machine import Machine
from larsbench.plan.run import RunConfig
from larsbench.profile.loading import parse_profile as parse
from larsbench.profile.overrides import apply_overrides, parse_override
from larsbench.rundir import RunPaths
from larsbench.train import report, worker
from larsbench.train.data import RunData
from larsbench.train.evaluate import evaluate
from larsbench.train.loaders import train_loader
from larsbench.train.report import Interval, TrustSnapshots, report_interval
from larsbench.train.schedule import Schedule, lr_at
from larsbench.train.session import seed_data
from larsbench.train.setup import Dist, Parts
from larsbench.train.step import forward_backward, optimizer_step
from larsbench.train.stop import StopRequest

CPU = Dist(rank=0, world=1, local_rank=0, local_world=1, device=torch.device("cpu"))


def smoke_run(*overrides: str, ranks: int = 1) -> RunConfig:
    """The smoke profile's first run on `ranks` CPU ranks, small: 4 steps per epoch."""
    raw = tomllib.loads(SMOKE.read_text(encoding="utf-8"))
    settings = [
        f"launch.nproc_per_node={ranks}",
        "launch.threads_per_rank=1",
        "sweep.train.batch_size=[32]",
        'sweep.optimizer=[{name="sgd"}]',
        "train.max_steps_per_epoch=4",
        "train.epochs=2",
        "data.val_fraction=0.05",
        "model.width=0.125",
        *overrides,
    ]
    raw = apply_overrides(raw, [parse_override(o) for o in settings])
    return expand(parse(raw, str(SMOKE)), Machine(gpus=0, cpus=2), str(SMOKE))[0]


@pytest.fixture
def one_rank() -> Iterator[Dist]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        yield CPU
    finally:
        dist.destroy_process_group()


class StopAsked(StopRequest):
    """A stop request that arrives during step `at` (no signal handlers installed)."""

    def __init__(self, at: int) -> None:
        self.at, self.reads = at, 0

    @property
    def requested(self) -> bool:  # type: ignore[override]
        self.reads += 1  # the stop vote reads it once per step
        return self.reads >= self.at


def events(run_dir: Path, kind: str) -> list[dict]:
    return [e for e in read_events(run_dir / "events" / "rank0.jsonl") if e["kind"] == kind]


def test_step_events_carry_the_lr_their_last_step_ran_with(one_rank: Dist, tmp_path: Path) -> None:
    run = smoke_run("train.log_every=1", "train.warmup_epochs=1")
    worker.train(run, RunPaths(tmp_path), one_rank, StopAsked(at=10**9))
    schedule = Schedule("cosine", run.lr, 4, 8, warmup_steps=4)
    steps = events(tmp_path, "step")
    assert [e["step"] for e in steps] == list(range(1, 9))
    assert [e["lr"] for e in steps] == pytest.approx([lr_at(schedule, i) for i in range(8)])
    assert steps[0]["lr"] == pytest.approx(run.lr / 4)  # warmup starts at peak / warmup steps


def test_a_stop_checkpoints_at_the_next_step_not_the_next_report_and_resumes(
    one_rank: Dist, tmp_path: Path
) -> None:
    run = smoke_run("train.log_every=1000")
    worker.train(run, RunPaths(tmp_path), one_rank, StopAsked(at=1))  # agreed at step 2
    end = events(tmp_path, "run_end")[-1]
    assert (end["status"], end["step"]) == ("stopped", 2)
    saved = events(tmp_path, "checkpoint")
    assert [(c["epoch"], c["epoch_step"]) for c in saved] == [(1, 2)]
    assert not events(tmp_path, "eval")
    assert [e["step"] for e in events(tmp_path, "step")] == [2]  # the stop reports its steps
    worker.train(run, RunPaths(tmp_path), one_rank, StopAsked(at=10**9))
    resume = events(tmp_path, "resume")
    assert [(r["epoch"], r["epoch_step"], r["step"]) for r in resume] == [(1, 2, 2)]
    steps = events(tmp_path, "step")
    assert [e["step"] for e in steps] == [2, 4, 8]  # then the epochs' last steps
    assert sum(e["interval_steps"] for e in steps) == 8  # every step reported once
    assert events(tmp_path, "run_end")[-1]["status"] == "completed"


def test_a_stop_on_an_epochs_last_step_evaluates_that_epoch_first(
    one_rank: Dist, tmp_path: Path
) -> None:
    run = smoke_run("train.epochs=3", "train.checkpoint_every=0")
    worker.train(run, RunPaths(tmp_path), one_rank, StopAsked(at=3))  # agreed at step 4
    assert [e["epoch"] for e in events(tmp_path, "eval")] == [1]
    assert [(c["epoch_step"], c["step"]) for c in events(tmp_path, "checkpoint")] == [(4, 4)]
    end = events(tmp_path, "run_end")[-1]
    assert (end["status"], end["epoch"], end["step"]) == ("stopped", 1, 4)
    worker.train(run, RunPaths(tmp_path), one_rank, StopAsked(at=10**9))
    resume = events(tmp_path, "resume")[-1]
    assert (resume["epoch"], resume["epoch_step"]) == (2, 0)
    assert [e["epoch"] for e in events(tmp_path, "eval")] == [1, 2, 3]


def test_a_stop_at_the_runs_last_step_completes_it(one_rank: Dist, tmp_path: Path) -> None:
    run = smoke_run()
    worker.train(run, RunPaths(tmp_path), one_rank, StopAsked(at=7))  # agreed at step 8
    assert events(tmp_path, "run_end")[-1]["status"] == "completed"
    assert [e["epoch"] for e in events(tmp_path, "eval")] == [1, 2]


def test_the_report_waits_for_the_device_before_it_reads_the_clock(
    one_rank: Dist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "wait_for_device", lambda d: time.sleep(0.3))  # queued work
    interval = Interval(one_rank.device)
    interval.add(torch.tensor(1.0), images=8, data_seconds=0.0)
    assert report_interval(interval, one_rank).step_seconds >= 0.3


def test_evaluation_copies_nothing_to_the_device_per_batch(
    one_rank: Dist, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    batches = [(torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))) for _ in range(6)]
    made = []
    real = torch.tensor

    def counting(*args: object, **kw: object) -> torch.Tensor:
        made.append(args)
        return real(*args, **kw)

    monkeypatch.setattr(torch, "tensor", counting)
    metrics = evaluate(model, batches, one_rank, smoke_run())
    assert metrics["images"] == 24
    assert len(made) <= 1, "a host tensor made (and copied to the device) per batch"


class Noise(Dataset):
    """Each item draws from the RNG of the process that loads it."""

    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.rand(1), 0


def test_each_rank_and_each_restart_seeds_its_loader_workers_differently() -> None:
    run = smoke_run("data.workers=2", "sweep.train.batch_size=[4]", ranks=2)
    data = RunData(Noise(), Noise(), 1)

    def first_batch(rank: int, step: int) -> torch.Tensor:
        seed_data(run.train.seed, rank, step)  # as a rank does before its first batch
        loader, sampler = train_loader(data, run, rank, 2, pin=False)
        sampler.set_epoch(1)
        return next(iter(loader))[0]

    rank0, rank1 = first_batch(0, 0), first_batch(1, 0)
    assert not torch.equal(rank0, rank1), "both ranks' workers drew the same numbers"
    assert torch.equal(rank0, first_batch(0, 0)), "a rank's seed is reproducible"
    assert not torch.equal(rank0, first_batch(0, 10)), "a resumed run replays its start"


def linear_larc() -> LARC:
    model = nn.Linear(4, 3)
    return LARC(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), stats_every=2)


def test_trust_events_carry_the_step_and_lr_larc_recorded_them_at() -> None:
    larc = linear_larc()
    model_params = [p for g in larc.param_groups for p in g["params"]]
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**4)
    snapshots = TrustSnapshots(larc, ["weight", "bias"])
    emitted = []
    for step in range(1, 7):
        lr = 0.1 * step
        for group in larc.param_groups:
            group["lr"] = lr
        loss = (torch.nn.functional.linear(torch.randn(5, 4), *model_params) ** 2).mean()
        scaler.scale(loss).backward()
        if step == 2:
            model_params[0].grad[0, 0] = float("inf")  # GradScaler skips this step
        scaler.step(larc)
        scaler.update()
        larc.zero_grad()
        fields = snapshots.after_step(larc, step, lr)
        if fields is not None:
            emitted.append((fields["step"], fields["larc_step"], fields["lr"]))
    # LARC's steps 2 and 4 were the worker's 3 and 5: step 2 did not count.
    assert emitted == [(3, 2, pytest.approx(0.3)), (5, 4, pytest.approx(0.5))]


def mlp_parts(run: RunConfig, seed: int = 0) -> Parts:
    """A model without BatchNorm, so that a split batch computes the same gradients."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, 10))
    sgd = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9, weight_decay=5e-4)
    return Parts(
        model=model,
        ddp=nn.parallel.DistributedDataParallel(model),
        optimizer=LARC(sgd, trust_coefficient=0.02, stats_every=1),
        scheduler=torch.optim.lr_scheduler.LambdaLR(sgd, lambda s: 1.0),
        scaler=torch.amp.GradScaler("cpu", enabled=False),
        criterion=nn.CrossEntropyLoss(),
        names=[n for n, _ in model.named_parameters()],
    )


def test_accumulating_two_micro_batches_gives_the_weights_of_the_whole_batch(
    one_rank: Dist,
) -> None:
    whole = smoke_run("sweep.train.batch_size=[16]")
    split = replace(whole, train=whole.train.model_copy(update={"accumulate_steps": 2}))
    assert split.micro_batch == 8 and split.lr == whole.lr  # the rule uses the whole batch
    a, b = mlp_parts(whole), mlp_parts(split)
    inner = []
    real_no_sync = b.ddp.no_sync

    def counting_no_sync():  # type: ignore[no-untyped-def]
        inner.append(1)
        return real_no_sync()

    b.ddp.no_sync = counting_no_sync  # type: ignore[method-assign]
    g = torch.Generator().manual_seed(1)
    for _ in range(4):
        images, labels = torch.randn(16, 3, 8, 8, generator=g), torch.randint(0, 10, (16,))
        loss_a = forward_backward(a, images, labels, whole, one_rank)
        loss_b = forward_backward(b, images, labels, split, one_rank)
        optimizer_step(a)
        optimizer_step(b)
        assert loss_b.item() == pytest.approx(loss_a.item(), rel=1e-6)
    assert len(inner) == 4, "DDP all-reduced on an inner micro-batch"
    assert b.optimizer.step_count == 4  # LARC (and its statistics) once per optimizer step
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(pb, pa, rtol=1e-5, atol=1e-6)
    assert not torch.equal(a.model[1].weight, mlp_parts(whole).model[1].weight)  # it trained

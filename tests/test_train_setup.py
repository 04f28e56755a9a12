"""A rank's runtime pieces: the optimizer, DDP's options, compiling ahead, eval's buffers."""

from __future__ import annotations

import copy
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from cli_helpers import SMOKE
from torch import nn

from larsbench.optim import LARC
from larsbench.plan.expand import expand
from larsbench.plan.machine import Machine
from larsbench.plan.run import RunConfig
from larsbench.plan.steps import plan_run
from larsbench.profile.loading import parse_profile
from larsbench.profile.overrides import apply_overrides
from larsbench.train.setup import (
    Dist,
    EvalSyncedDDP,
    Parts,
    build_optimizer,
    build_parts,
    compile_ahead,
    sgd_implementation,
)

CPU = Dist(rank=0, world=1, local_rank=0, local_world=1, device=torch.device("cpu"))


def smoke_run(*overrides: tuple[str, object]) -> RunConfig:
    """The smoke profile's first run (bs64-sgd, 2 ranks) with `overrides` set."""
    import tomllib

    data = apply_overrides(tomllib.loads(SMOKE.read_text()), list(overrides))
    return expand(parse_profile(data), Machine(gpus=0, cpus=2))[0]


@pytest.fixture(scope="module")
def one_rank_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A gloo process group of this process alone: DDP wraps, all-reduces are no-ops."""
    store = tmp_path_factory.mktemp("pg") / "store"
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def _sgd(model: nn.Module) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 10),
    )


def _parts(model: nn.Module, optimizer: torch.optim.Optimizer, compile_model: bool) -> Parts:
    ddp = EvalSyncedDDP(model)
    if compile_model:
        ddp.compile()
    return Parts(
        model=model,
        ddp=ddp,
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0),
        scaler=torch.amp.GradScaler("cpu", enabled=False),
        criterion=nn.CrossEntropyLoss(),
        names=[n for n, _ in model.named_parameters()],
    )


def test_sgd_is_fused_on_cuda_only() -> None:
    assert sgd_implementation(torch.device("cuda", 0)) == {"fused": True}
    assert sgd_implementation(torch.device("cpu")) == {}
    sgd = build_optimizer(_tiny(), smoke_run())
    assert isinstance(sgd, torch.optim.SGD) and not sgd.defaults["fused"]


def test_build_optimizer_passes_fold_into_sgd() -> None:
    larc = build_optimizer(
        _tiny(), smoke_run(("optimizer.name", "larc"), ("optimizer.fold_into_sgd", True))
    )
    assert isinstance(larc, LARC) and larc.fold_into_sgd and not larc.fused


def test_fused_and_fold_together_is_a_config_error() -> None:
    from larsbench.profile.errors import ConfigError

    with pytest.raises(ConfigError, match="optimizer: fused and fold_into_sgd exclude each other"):
        smoke_run(("optimizer.fused", True), ("optimizer.fold_into_sgd", True))


def test_build_parts_passes_the_ddp_options(one_rank_group: None) -> None:
    run = smoke_run(
        ("train.ddp_gradient_as_bucket_view", False),
        ("train.ddp_bucket_cap_mb", 4.0),
        ("train.ddp_static_graph", True),
        ("train.ddp_forward_sync_buffers", False),
    )
    parts = build_parts(run, CPU, 10, plan_run(run, 1437, 360))
    assert isinstance(parts.ddp, EvalSyncedDDP)
    assert parts.ddp.gradient_as_bucket_view is False
    assert parts.ddp.bucket_bytes_cap == 4 * 1024 * 1024
    assert parts.ddp.static_graph is True
    assert parts.ddp.forward_sync_buffers is False
    defaults = build_parts(smoke_run(), CPU, 10, plan_run(run, 1437, 360)).ddp
    assert defaults.gradient_as_bucket_view is True and defaults.forward_sync_buffers is True
    assert defaults.static_graph is False and defaults.bucket_bytes_cap == 25 * 1024 * 1024


def test_compile_ahead_times_the_larc_update_and_skips_everything_else(
    one_rank_group: None,
) -> None:
    run = smoke_run()
    model = _tiny()
    assert compile_ahead(_parts(model, _sgd(model), False), run, CPU) == []
    assert compile_ahead(_parts(model, LARC(_sgd(model)), False), run, CPU) == []
    for options in ({"fused": True}, {"fold_into_sgd": True}):
        done = compile_ahead(_parts(model, LARC(_sgd(model), **options), False), run, CPU)
        assert [what for what, _ in done] == ["larc_fused_update"]
        assert done[0][1] > 0
        assert all(p.grad is None for p in model.parameters())


def test_model_compile_ahead_changes_nothing_and_training_reuses_it(
    one_rank_group: None,
) -> None:
    run = smoke_run(("model.compile", True), ("train.batch_size", 8))  # 4 per rank
    model = _tiny()
    before = copy.deepcopy(model.state_dict())
    parts = _parts(model, _sgd(model), True)
    torch._dynamo.reset()
    torch._dynamo.utils.compilation_time_metrics.clear()
    rng = torch.get_rng_state()
    done = compile_ahead(parts, run, CPU)
    assert [what for what, _ in done] == ["model"] and done[0][1] > 0
    compiled = _compiles()
    assert compiled >= 1
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN too
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)
    images = torch.randn(run.per_rank_batch, 3, 8, 8)
    labels = torch.randint(0, 10, (run.per_rank_batch,))
    for _ in range(2):
        parts.optimizer.zero_grad()
        parts.criterion(parts.ddp(images), labels).backward()
        parts.optimizer.step()
    assert _compiles() == compiled  # training compiled nothing more


def _compiles() -> int:
    """Frames torch._dynamo has compiled since the metrics were cleared (guard hits do not
    count; DDP's Python around the compiled module is traced, not compiled)."""
    return len(torch._dynamo.utils.compilation_time_metrics.get("_compile.compile_inner", []))


# ----------------------------------------------------------------------------- eval buffers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train_then_eval(rank: int, port: int, synced: bool, out: Path) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    wrapper = EvalSyncedDDP if synced else nn.parallel.DistributedDataParallel
    ddp = wrapper(model, forward_sync_buffers=True)
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(rank)  # each rank its own data, as a sampler gives
    for _ in range(3):
        sgd.zero_grad()
        ddp(torch.randn(8, 3, generator=gen) * (rank + 1)).sum().backward()
        sgd.step()
    ddp.eval()  # what evaluate() does first
    torch.save([b.clone() for b in model.buffers()], out / f"rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.parametrize("synced", [True, False], ids=["EvalSyncedDDP", "plain DDP"])
def test_every_rank_evaluates_with_rank_0s_batchnorm_statistics(
    tmp_path: Path, synced: bool
) -> None:
    """Plain DDP with broadcast_buffers=True leaves each rank with its own last update at
    eval() (the control: the check can fail); EvalSyncedDDP gives them rank 0's."""
    mp.spawn(_train_then_eval, args=(_free_port(), synced, tmp_path), nprocs=2)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    same = all(torch.equal(a, b) for a, b in zip(rank0, rank1, strict=True))
    assert same is synced

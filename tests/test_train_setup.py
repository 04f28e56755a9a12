"""A rank's runtime pieces that do not need a process group."""

from __future__ import annotations

import torch
from torch import nn

from larsbench.optim import LARC
from larsbench.train.setup import Dist, compile_ahead

CPU = Dist(rank=0, world=1, local_rank=0, local_world=1, device=torch.device("cpu"))


def _sgd(model: nn.Module) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)


def test_compile_ahead_times_the_fused_update_and_skips_everything_else() -> None:
    model = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Linear(5, 3))
    assert compile_ahead(_sgd(model), CPU) is None
    assert compile_ahead(LARC(_sgd(model)), CPU) is None
    seconds = compile_ahead(LARC(_sgd(model), fused=True), CPU)
    assert seconds is not None and seconds > 0
    assert all(p.grad is None for p in model.parameters())

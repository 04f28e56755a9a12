"""A stop request: a signal to any rank, agreed on by every rank one training step later."""

from __future__ import annotations

import signal

import torch
import torch.distributed as dist


class StopRequest:
    """SIGTERM/SIGINT set a flag on this rank; `StopVote` shares it with the others."""

    def __init__(self) -> None:
        self.requested = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._set)

    def _set(self, signum: int, _frame: object) -> None:
        self.requested = True


class StopVote:
    """Every step, each rank's flag goes into an asynchronous MAX all-reduce on a gloo group
    of CPU tensors; the step after reads the result. No device sync, and every rank reads the
    same value at the same step, so all of them stop (and checkpoint) at one step.

    The vote of step s is waited for at step s+1: by then every rank has reached step s+1's
    gradient all-reduce, so the wait costs nothing but a gloo message on a thread of its own.
    """

    def __init__(self, request: StopRequest) -> None:
        self.request = request
        self.group = dist.new_group(backend="gloo")  # CPU tensors on CUDA runs too
        self.flag = torch.zeros(1, dtype=torch.int32)
        self.pending: dist.Work | None = None

    def agreed(self) -> bool:
        """Whether any rank had asked to stop at the previous step; casts this step's vote."""
        stop = False
        if self.pending is not None:
            self.pending.wait()
            stop = bool(self.flag.item())  # a CPU tensor: no device sync
        self.flag.fill_(int(self.request.requested))
        self.pending = dist.all_reduce(
            self.flag, op=dist.ReduceOp.MAX, group=self.group, async_op=True
        )
        return stop

    def close(self) -> None:
        """Waits for the last vote, which every rank cast, before the group goes away."""
        if self.pending is not None:
            self.pending.wait()
            self.pending = None

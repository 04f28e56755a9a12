"""The node's telemetry sampler for one run: started with it, told its ranks' pids, stopped."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from larsbench.events import EventWriter
from larsbench.plan.run import RunConfig
from larsbench.rundir import RunPaths


@dataclass
class RunSampler:
    """The node's telemetry sampler for one run, told the ranks' pids once they exist."""

    sampler: Any
    writer: EventWriter
    ranks: dict[int, int] = field(default_factory=dict)
    checked: float = 0.0
    RECHECK_SECONDS = 5.0  # ranks change when torchrun restarts the group

    @classmethod
    def start(cls, run: RunConfig, paths: RunPaths, interval: float, node: str) -> RunSampler:
        from larsbench.telemetry.sampler import Sampler

        writer = EventWriter(paths.system_events(node))
        sampler = Sampler(
            writer, interval=interval, device=run.device, local_world_size=run.nproc_per_node
        )
        sampler.start()
        return cls(sampler, writer)

    def track(self, torchrun_pid: int, ranks_on_node: int) -> None:
        """Tell the sampler the ranks' pids once they all exist, and again after a restart."""
        now = time.monotonic()
        if len(self.ranks) >= ranks_on_node and now - self.checked < self.RECHECK_SECONDS:
            return
        from larsbench.telemetry.procs import find_rank_pids

        self.checked = now
        pids = find_rank_pids(torchrun_pid)
        if len(pids) >= ranks_on_node and pids != self.ranks:
            self.sampler.set_ranks(pids)
            self.ranks = pids

    def stop(self) -> None:
        self.sampler.stop()
        self.writer.close()

"""The hardware panel's rank lines: figures with units, and n/a (no unit) once a rank is gone."""

from __future__ import annotations

import math

from larsbench.live.views import RankView
from larsbench.tui.widgets.devices import rank_line


def _rank(cpu: float, rss: float, gpu_mem: float = math.nan) -> RankView:
    return RankView(
        local_rank=0,
        pid=4242,
        cpu_percent=cpu,
        rss_bytes=rss,
        workers=None,
        workers_cpu_percent=math.nan,
        workers_rss_bytes=math.nan,
        gpu_mem_bytes=gpu_mem,
        cpu_history=(50.0, 80.0),
    )


def test_live_rank_shows_cpu_and_memory_in_gib() -> None:
    line = rank_line(_rank(84.0, 0.8 * 2**30, 3 * 2**30), 80).plain
    assert "84% cpu" in line
    assert "rss 0.8G" in line
    assert "gpu 3.0G" in line


def test_finished_rank_shows_na_without_a_unit() -> None:
    line = rank_line(_rank(math.nan, math.nan), 80).plain
    assert "rss n/a " in line
    assert "n/aG" not in line
    assert "gpu" not in line

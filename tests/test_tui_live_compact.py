"""The live screen at 80x24: compact, all three live streams at once; full panels one key away."""

from __future__ import annotations

import math
from pathlib import Path

from tui_helpers import (
    COMPACT_SIZE,
    SIZE,
    app_for,
    fixture_tree,
    running_larc_run,
    screen_text,
    sync,
    wait_until,
)

from larsbench.live.views import DeviceView, NodeView, RunView
from larsbench.tui.widgets.overview import overview_text, overview_title


@sync
async def test_compact_live_screen_shows_the_three_streams_at_80x24(tmp_path: Path) -> None:
    _, _, sweep = fixture_tree(tmp_path)
    run = running_larc_run(sweep)
    app = app_for(tmp_path, run)
    async with app.run_test(size=COMPACT_SIZE) as pilot:
        await wait_until(pilot, lambda: app.view is not None and app.view.run is not None)
        await wait_until(pilot, lambda: "fc.bias" in screen_text(app))
        text = screen_text(app)
        assert "[running]" in text and "epoch 6/8" in text
        assert "cpu per rank r0:" in text  # per-rank utilisation
        assert "img/s 5" in text  # throughput
        assert "conv1.weight" in text and "clip%" in text  # every layer's trust ratio
        assert "Throughput (img/s)" not in text  # the full panels are one key away
        await pilot.press("z")
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "Throughput (img/s)" in text and "Overview" not in text
        await pilot.press("z")
        await pilot.pause(0.3)
        assert "Overview" in screen_text(app)


@sync
async def test_wide_live_screen_keeps_the_full_panels(tmp_path: Path) -> None:
    _, _, sweep = fixture_tree(tmp_path)
    app = app_for(tmp_path, running_larc_run(sweep))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.view is not None and app.view.run is not None)
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "Throughput (img/s)" in text and "Overview" not in text


def _gpu(index: int, util: float) -> DeviceView:
    return DeviceView(
        index=index,
        local_rank=index,
        name="NVIDIA H100 80GB HBM3",
        util_gpu=util,
        util_mem=40.0,
        mem_used=61 * 2**30,
        mem_total=80 * 2**30,
        power_w=600.0,
        power_limit_w=700.0,
        temp_c=70.0,
        sm_clock_mhz=1980.0,
        throttle="",
        util_history=(90.0, 97.0),
    )


def test_overview_of_an_8_gpu_run_fits_80_columns() -> None:
    node = NodeView(
        node="node0",
        source="nvml",
        t=0.0,
        devices=tuple(_gpu(i, 97.0 - i) for i in range(8)),
        ranks=(),
        host_cpu_percent=40.0,
        host_mem_used=math.nan,
        host_mem_total=math.nan,
    )
    run = RunView(
        run_id="bs4096-larc",
        optimizer="larc",
        world_size=8,
        images_per_sec=9800.0,
        rank_images_per_sec=(1250.0,) * 7 + (1000.0,),
        straggler=7,
        data_wait=0.15,
        input_bound=True,
        nodes=(node,),
    )
    lines = overview_text(run, 76).plain.splitlines()
    assert lines[0].startswith("gpu util 0:97% 1:96%") and "7:90%" in lines[0]
    assert "img/s 9.8k (rank 1.23k, slowest r7 1k)" in lines[1] and "INPUT-BOUND" in lines[1]
    assert all(len(line) <= 76 for line in lines)
    assert overview_title(run).startswith("Overview: GPUs (node0, nvml)")

"""The live screen at 80x24: compact, all three live streams at once; full panels one key away."""

from __future__ import annotations

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

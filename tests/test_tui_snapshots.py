"""SVG snapshots of the three screens at 120x40 (and at 80x24: the compact live screen, the
comparison of curves) from the fixed fixture data and clock.

Update after an intended change with: pytest tests/test_tui_snapshots.py --snapshot-update
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input
from tui_helpers import COMPACT_SIZE, SIZE, app_for, fixture_tree, running_larc_run, wait_until

from larsbench.tui.screens.results import ResultsScreen


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    fixture_tree(tmp_path)
    monkeypatch.chdir(tmp_path)  # paths on screen are relative: runs/..., profiles/...
    return tmp_path


def test_results_screen(snap_compare, tree: Path) -> None:  # type: ignore[no-untyped-def]
    app = app_for(tree, tree / "runs" / "fixture-sweep")

    async def ready(pilot: Pilot) -> None:
        await wait_until(pilot, lambda: app.view is not None and bool(app.view.results))
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_live_screen_larc_replay(snap_compare, tree: Path) -> None:  # type: ignore[no-untyped-def]
    app = app_for(tree, tree / "runs" / "fixture-sweep")

    async def ready(pilot: Pilot) -> None:
        await wait_until(pilot, lambda: app.view is not None and bool(app.view.results))
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.view.focus == "bs64-larc-tc0.02")  # type: ignore[union-attr]
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_live_screen_trust_table(snap_compare, tree: Path) -> None:  # type: ignore[no-untyped-def]
    app = app_for(tree, tree / "runs" / "fixture-sweep" / "bs64-larc-tc0.02")

    async def ready(pilot: Pilot) -> None:
        await wait_until(pilot, lambda: app.view is not None and app.view.run is not None)
        await pilot.press("t", "l")  # the clipping table; hide the log
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_configure_screen(snap_compare, tree: Path) -> None:  # type: ignore[no-untyped-def]
    app = app_for(tree, None)

    async def ready(pilot: Pilot) -> None:
        await pilot.pause(0.3)
        await pilot.press("down", "enter")  # the fixture profile
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_configure_screen_with_an_error(snap_compare, tree: Path) -> None:  # type: ignore[no-untyped-def]
    app = app_for(tree, None)

    async def ready(pilot: Pilot) -> None:
        await pilot.pause(0.3)
        await pilot.press("down", "enter")
        await pilot.pause(0.3)
        for field in app.screen.query(Input):
            field.cursor_blink = False  # a blinking cursor makes the snapshot flaky
        await pilot.click("#f-train-batch-size")
        await pilot.press("end", "backspace", "backspace", "backspace", "3")
        await pilot.pause(0.5)

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_live_screen_compact_during_a_larc_run(snap_compare, tree: Path) -> None:  # type: ignore[no-untyped-def]
    run = running_larc_run(tree / "runs" / "fixture-sweep")
    app = app_for(tree, run)

    async def ready(pilot: Pilot) -> None:
        await wait_until(pilot, lambda: app.view is not None and app.view.run is not None)
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=COMPACT_SIZE, run_before=ready)


def test_results_compare_larc_top1_80x24(snap_compare, tree: Path) -> None:  # type: ignore[no-untyped-def]
    app = app_for(tree, tree / "runs" / "fixture-sweep")

    async def ready(pilot: Pilot) -> None:
        await wait_until(pilot, lambda: app.view is not None and bool(app.view.results))
        await pilot.pause(0.2)
        screen = app.screen
        assert isinstance(screen, ResultsScreen)
        # best first: bs64-larc, bs64-sgd, bs512-sgd, bs512-larc (failed)
        await pilot.press("space", "down", "down", "down", "space")
        await wait_until(pilot, lambda: len(screen.selected) == 2)
        chart = screen.chart
        await wait_until(pilot, lambda: len(chart.compare.curves if chart.compare else ()) == 2)
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=COMPACT_SIZE, run_before=ready)

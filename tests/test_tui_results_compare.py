"""The results screen's comparison of curves, through Pilot, on the recorded fixture."""

from __future__ import annotations

import json
from pathlib import Path

from textual.pilot import Pilot
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

from larsbench.tui.app import LarsbenchApp
from larsbench.tui.screens.results import ResultsScreen
from larsbench.tui.widgets.plots import CurvePlot

LARC = ("bs64-larc-tc0.02", "bs512-larc-tc0.02")


def drawn(app: LarsbenchApp) -> tuple[list[str], str, bool]:
    """(line labels, plot title, log y) of what the comparison chart last drew."""
    plot = app.screen.query_one("#compare-plot", CurvePlot)
    assert plot._last is not None
    lines, title, ylog = plot._last[0], plot._last[1], plot._last[2]
    return [ln.label for ln in lines], str(title), ylog


def results(app: LarsbenchApp) -> ResultsScreen:
    assert isinstance(app.screen, ResultsScreen)
    return app.screen


async def select_larc_runs(pilot: Pilot, app: LarsbenchApp) -> None:
    """On the results screen (best first: bs64-larc, bs64-sgd, bs512-sgd, bs512-larc),
    select the two LARC runs with space."""
    await wait_until(pilot, lambda: app.view is not None and bool(app.view.results))
    await wait_until(pilot, lambda: "bs512-larc-tc0.02" in screen_text(app))
    rows = results(app)._row_ids
    assert rows.index(LARC[0]) < rows.index(LARC[1])
    for run_id in LARC:  # the cursor starts on the first row and moves down
        while results(app)._cursor_run() != run_id:
            await pilot.press("down")
        await pilot.press("space")
    await wait_until(pilot, lambda: results(app).chart.compare is not None)
    await wait_until(pilot, lambda: len(drawn(app)[0]) == 2)


@sync
async def test_space_selects_runs_and_overlays_their_top1(tmp_path: Path) -> None:
    _, _, sweep = fixture_tree(tmp_path)
    app = app_for(tmp_path, sweep)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.view is not None and bool(app.view.results))
        assert not app.screen.query_one("#compare-box").display  # nothing selected yet
        await select_larc_runs(pilot, app)
        labels, title, ylog = drawn(app)
        assert labels == list(LARC) and title.startswith("top-1 % by epoch") and not ylog
        box = app.screen.query_one("#compare-box")
        assert box.display and box.border_title == "Compare 2 runs: top-1 % by epoch"
        assert "● bs64-larc-tc0.02" in screen_text(app)  # the table marks the selected runs
        await pilot.press("space")  # the cursor is on bs512-larc: unselect it
        await wait_until(pilot, lambda: drawn(app)[0] == ["bs64-larc-tc0.02"])
        # a lone line keeps its legend: which run it is
        await wait_until(pilot, lambda: "⢕⢕ bs64-larc-tc0.02" in screen_text(app))


@sync
async def test_metric_smoothing_and_log_y_keys(tmp_path: Path) -> None:
    _, _, sweep = fixture_tree(tmp_path)
    app = app_for(tmp_path, sweep)
    async with app.run_test(size=SIZE) as pilot:
        await select_larc_runs(pilot, app)
        seen = []
        for _ in range(5):
            await pilot.press("m")
            seen.append(drawn(app)[1])
        assert seen == [
            "training loss",
            "learning rate",
            "img/s",
            "LARC: median trust factor over layers",
            "top-1 % by epoch",
        ]
        await pilot.press("m")  # loss
        raw = app.screen.query_one("#compare-plot", CurvePlot)._last[0][0].curve.ys  # type: ignore[index]
        await pilot.press("s")
        smoothed = app.screen.query_one("#compare-plot", CurvePlot)._last[0][0].curve.ys  # type: ignore[index]
        assert len(smoothed) == len(raw) and smoothed != raw
        assert "smooth 0.6" in str(app.screen.query_one("#compare-box").border_title)
        await pilot.press("y")
        assert drawn(app)[2] is True and drawn(app)[1] == "training loss  (log10 y)"
        assert "log y" in str(app.screen.query_one("#compare-box").border_title)


@sync
async def test_group_by_a_swept_key(tmp_path: Path) -> None:
    _, _, sweep = fixture_tree(tmp_path)
    app = app_for(tmp_path, sweep)
    async with app.run_test(size=SIZE) as pilot:
        await select_larc_runs(pilot, app)
        await pilot.press("a")  # all four runs
        await wait_until(pilot, lambda: len(drawn(app)[0]) == 4)
        await pilot.press("g")  # by batch
        await wait_until(
            pilot, lambda: drawn(app)[0] == ["batch=64 (mean of 2)", "batch=512 (mean of 2)"]
        )
        await pilot.press("g")  # by optimizer
        assert drawn(app)[0] == ["optimizer=sgd (mean of 2)", "optimizer=larc (mean of 2)"]
        assert "by optimizer" in str(app.screen.query_one("#compare-box").border_title)
        keys = results(app).chart.group_keys()
        assert "optimizer.trust_coefficient" not in keys  # one coefficient in this sweep
        for _ in range(len(keys) - 2):
            await pilot.press("g")
        assert len(drawn(app)[0]) == 4  # back to one line per run


@sync
async def test_full_screen_chart(tmp_path: Path) -> None:
    _, _, sweep = fixture_tree(tmp_path)
    app = app_for(tmp_path, sweep)
    async with app.run_test(size=COMPACT_SIZE) as pilot:
        await select_larc_runs(pilot, app)
        plot = app.screen.query_one("#compare-plot", CurvePlot)
        before = plot.size.height
        await pilot.press("z")
        await pilot.pause(0.2)
        assert not app.screen.query_one("#results-table").display
        assert plot.size.height > before and plot.size.height >= 19  # 24 less header, footer
        await pilot.press("z")
        await pilot.pause(0.2)
        assert app.screen.query_one("#results-table").display


@sync
async def test_a_running_selected_run_gains_its_new_points(tmp_path: Path) -> None:
    _, _, sweep = fixture_tree(tmp_path)
    run = running_larc_run(sweep)  # bs64-larc-tc0.02: evaluated up to epoch 5
    app = app_for(tmp_path, sweep)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.view is not None and bool(app.view.results))
        app.switch_mode("results")
        await wait_until(pilot, lambda: "bs64-larc-tc0.02" in results(app)._row_ids)
        while results(app)._cursor_run() != "bs64-larc-tc0.02":
            await pilot.press("down")
        await pilot.press("space")
        await wait_until(pilot, lambda: drawn(app)[0] == ["bs64-larc-tc0.02"])
        top1 = app.screen.query_one("#compare-plot", CurvePlot)
        assert len(top1._last[0][0].curve.xs) == 5  # type: ignore[index]
        event = {"v": 1, "t": 1.0, "kind": "eval", "epoch": 6, "step": 132, "top1": 94.5}
        with open(run / "events" / "rank0.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")

        def six() -> bool:
            return len(top1._last[0][0].curve.xs) == 6  # type: ignore[index]

        await wait_until(pilot, six)  # within RELOAD_INTERVAL, though nothing else changes
        assert top1._last[0][0].curve.ys[-1] == 94.5  # type: ignore[index]

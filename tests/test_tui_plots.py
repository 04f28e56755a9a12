"""Plots: curves thin to their width, redraw when it changes; labels never hide a marker."""

from __future__ import annotations

from textual.app import App, ComposeResult
from tui_helpers import sync

from larsbench.live.series import Curve
from larsbench.tui.widgets.plots import CurvePlot, Line, Point, ScatterPlot, place_labels, thin


def test_thin_keeps_short_series_and_the_last_value() -> None:
    assert thin([1.0, 2.0, 3.0], 8) == [1.0, 2.0, 3.0]
    out = thin([float(i) for i in range(100)], 10)
    assert len(out) == 10
    assert out[0] == sum(range(10)) / 10
    assert out[-1] == 99.0


class PlotApp(App[None]):
    CSS = "CurvePlot { width: 20; height: 10; }"

    def compose(self) -> ComposeResult:
        yield CurvePlot("loss", id="plot")


@sync
async def test_a_curve_shown_before_layout_is_drawn_again_at_the_real_width() -> None:
    app = PlotApp()
    curve = Curve(tuple(float(i) for i in range(500)), tuple(float(i) for i in range(500)), 1)
    async with app.run_test(size=(60, 20)) as pilot:
        plot = app.query_one(CurvePlot)
        plot.show([Line("loss", curve)])
        await pilot.pause()
        await pilot.pause()
        assert plot.size.width == 20
        assert plot._key is not None and plot._key[0] == max(32, 2 * 20)
        plot.styles.width = 40
        await pilot.pause()
        await pilot.pause()
        assert plot._key[0] == 2 * 40


# A 71 x 13 canvas over x 0..70, y 0..12: one cell per unit, so cells are easy to read.
CANVAS = {"cols": 71, "rows": 13, "xlim": (0.0, 70.0), "ylim": (0.0, 12.0)}


def test_labels_go_right_of_markers_when_nothing_is_in_the_way() -> None:
    points = [Point("bs64", 5, 10, True), Point("bs512", 40, 2, True)]
    assert place_labels(points, **CANVAS) == [1, 1]


def test_a_label_that_would_cover_a_neighbour_goes_left_or_nowhere() -> None:
    # The smoke sweep at 80 columns: bs64-larc's label ran over bs64-sgd's marker.
    best = Point("bs64-sgd", 30, 10, True)
    near = Point("bs64-larc", 20, 10, False)  # right: cells 21..29 reach best's marker
    assert place_labels([best, near], **CANVAS) == [1, -1]
    best = Point("bs64-sgd", 15, 10, True)
    near = Point("bs64-larc-tc0.02", 12, 10, False)  # and no room left of x=12
    assert place_labels([best, near], **CANVAS) == [1, 0]


def test_labels_do_not_overlap_each_other_or_leave_the_canvas() -> None:
    first = Point("x" * 30, 30, 6, True)  # its label takes cells 31..60 of row 6
    last = Point("second-label", 65, 6, False)  # right runs off; left would be 53..64
    assert place_labels([first, last], **CANVAS) == [1, 0]
    edge = Point("a-long-label-here", 69, 3, False)
    assert place_labels([edge], **CANVAS) == [-1]


class BarsApp(App[None]):
    CSS = "ScatterPlot { width: 60; height: 12; }"

    def compose(self) -> ComposeResult:
        yield ScatterPlot(id="plot")


@sync
async def test_a_throughput_sweep_shows_one_bar_per_run_fastest_on_top() -> None:
    app = BarsApp()
    async with app.run_test(size=(60, 12)) as pilot:
        app.query_one(ScatterPlot).show_speeds(
            [("bs64-sgd", 62.0), ("bs32-larc", 44.5), ("bs32-sgd", 42.9)], "img/s per run"
        )
        await pilot.pause()
        await pilot.pause()
        lines = [s.text for s in app.screen._compositor.render_strips()]
        rows = {
            run: i
            for i, line in enumerate(lines)
            for run in ("bs64-sgd", "bs32-sgd")
            if run in line
        }
        assert rows["bs64-sgd"] < rows["bs32-sgd"], "\n".join(lines)
        assert any("img/s per run" in line for line in lines)

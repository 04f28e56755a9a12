"""The curve plot thins its points to its width, and draws again when its width changes."""

from __future__ import annotations

from textual.app import App, ComposeResult
from tui_helpers import sync

from larsbench.tui.series import Curve
from larsbench.tui.widgets.plots import CurvePlot, Line, thin


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

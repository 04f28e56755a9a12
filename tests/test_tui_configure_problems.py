"""The configure screen marks the field each ConfigError problem names, and previews
throughput runs as the dry run does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Static
from tui_helpers import SIZE, app_for, fixture_tree, screen_text, sync, wait_until

from larsbench.tui.app import LarsbenchApp


@asynccontextmanager
async def configuring(tmp_path: Path) -> AsyncIterator[tuple[LarsbenchApp, Pilot]]:
    """The app on the configure screen with the fixture profile loaded and validated."""
    fixture_tree(tmp_path)
    app = app_for(tmp_path, None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        await pilot.press("down", "enter")  # the picker: fixture-larc, then fixture
        await wait_until(pilot, lambda: "Runs (4)" in screen_text(app))
        yield app, pilot


@sync
async def test_a_sections_own_check_marks_the_field_it_names(tmp_path: Path) -> None:
    async with configuring(tmp_path) as (app, pilot):
        app.screen.query_one("#f-optimizer-fused", Checkbox).value = True
        app.screen.query_one("#f-optimizer-fold-into-sgd", Checkbox).value = True
        await wait_until(pilot, lambda: "exclude each other" in screen_text(app))
        error = app.screen.query_one("#e-f-optimizer-fused", Static)
        assert error.display and "fused and fold_into_sgd" in str(error.render())
        assert app.screen.query_one("#f-optimizer-fused").has_class("-error")
        assert not app.screen.query_one("#e-f-optimizer", Static).display
        assert not app.screen.query_one("#general-errors", Static).display
        assert "fix 1 error" in screen_text(app)


@sync
async def test_a_key_without_a_field_is_a_general_error(tmp_path: Path) -> None:
    async with configuring(tmp_path) as (app, pilot):
        app.screen.query_one("#f-extra", Input).value = "train.momentum=1.5"
        await wait_until(pilot, lambda: "less than 1" in screen_text(app))
        general = app.screen.query_one("#general-errors", Static)
        assert general.display
        assert "form: train.momentum: Input should be less than 1" in str(general.render())
        assert not app.screen.query_one("#e-extra", Static).display


@sync
async def test_a_bad_union_value_is_one_error_on_its_field(tmp_path: Path) -> None:
    async with configuring(tmp_path) as (app, pilot):
        app.screen.query_one("#f-launch-nproc-per-node", Input).value = "many"
        await wait_until(pilot, lambda: "(got 'many')" in screen_text(app))
        error = app.screen.query_one("#e-f-launch-nproc-per-node", Static)
        assert error.display and "valid integer" in str(error.render())
        assert not app.screen.query_one("#general-errors", Static).display
        assert "fix 1 error" in screen_text(app)


@sync
async def test_the_preview_of_throughput_runs_shows_their_steps(tmp_path: Path) -> None:
    async with configuring(tmp_path) as (app, pilot):
        app.screen.query_one("#f-extra", Input).value = "train.mode=throughput"
        # 10 warm-up + 30 + 30 + 15 timed steps; an epoch of the 1437 digits at batch 64: 22
        await wait_until(pilot, lambda: "in throughput mode (85 steps" in screen_text(app))
        row = next(ln for ln in screen_text(app).splitlines() if " bs64-sgd " in ln)
        assert row.split()[-1] == "22"

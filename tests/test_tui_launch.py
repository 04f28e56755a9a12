"""End to end: configure the smoke profile in the app, launch it, see live numbers (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input
from tui_helpers import MACHINE, screen_text, sync, wait_until

# Needs the real headless runner; skipped only while larsbench.sweep does not exist yet.
pytest.importorskip(
    "larsbench.sweep", reason="the headless runner (larsbench.sweep) is not there yet"
)

import larsbench
from larsbench.tui.app import make_app

REPO_PROFILES = Path(larsbench.__file__).resolve().parent.parent / "profiles"


@pytest.mark.slow
@sync
async def test_configure_launch_smoke_and_see_live_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not (REPO_PROFILES / "smoke.toml").is_file():
        pytest.skip("profiles/smoke.toml is not there")
    monkeypatch.chdir(tmp_path)
    app = make_app(
        profiles_dirs=[REPO_PROFILES],
        runs_dir=tmp_path / "runs",
        machine=MACHINE,
        poll_interval=0.2,
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(
            pilot, lambda: "smoke" in screen_text(app) and "Runs (" in screen_text(app)
        )
        # One short run: batch 64, SGD, one epoch.
        for wid, value in (("#f-train-batch-size", "64"), ("#f-optimizer", "sgd")):
            app.screen.query_one(wid, Input).value = value
        app.screen.query_one("#f-train-epochs", Input).value = "1"
        await wait_until(pilot, lambda: "Runs (1)" in screen_text(app))
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: app.current_mode == "live", timeout=20)
        assert app.launched is not None
        out = app.watch_dir
        assert out is not None
        await wait_until(
            pilot,
            lambda: app.view is not None and app.view.run is not None and app.view.run.step > 0,
            timeout=240,
        )
        await pilot.pause(0.5)
        text = screen_text(app)
        assert "bs64-sgd" in text and "loss " in text and "loss n/a" not in text
        assert "img/s" in text
        await wait_until(pilot, lambda: app.view.finished, timeout=240)  # type: ignore[union-attr]
        assert (Path(out) / "bs64-sgd" / "result.json").is_file()
        await pilot.press("r")
        await wait_until(
            pilot, lambda: "bs64-sgd" in screen_text(app) and "completed" in screen_text(app)
        )
        process = app.launched
    if process is not None:
        process.wait(timeout=60)

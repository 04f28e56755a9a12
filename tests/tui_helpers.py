"""Shared helpers for the terminal-app tests (kept out of conftest.py, which the lead owns)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from fixtures.make_sweep import T0, make_profiles_dir, make_recorded_sweep
from textual.pilot import Pilot

from larsbench.config import Machine
from larsbench.tui.app import LarsbenchApp, make_app

FIXED_NOW = T0 + 1000.0  # the injected clock: no wall time reaches the screens
MACHINE = Machine(gpus=0, cpus=4)
SIZE = (120, 40)


def fixture_tree(root: Path) -> tuple[Path, Path, Path]:
    """(profiles dir, runs dir, recorded sweep) under root."""
    profiles = make_profiles_dir(root)
    runs = root / "runs"
    sweep = make_recorded_sweep(runs)
    return profiles, runs, sweep


def app_for(root: Path, watch: Path | None, **kwargs: object) -> LarsbenchApp:
    profiles = root / "profiles"
    return make_app(
        watch_dir=watch,
        profiles_dirs=[profiles],
        runs_dir=root / "runs",
        clock=lambda: FIXED_NOW,
        machine=MACHINE,
        poll_interval=0.05,
        **kwargs,  # type: ignore[arg-type]
    )


async def wait_until(pilot: Pilot, condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Pause the pilot until condition() is true (the watcher thread reads asynchronously)."""
    waited = 0.0
    while not condition():
        if waited >= timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {condition}")
        await pilot.pause(0.05)
        waited += 0.05
    await pilot.pause()


def screen_text(app: LarsbenchApp) -> str:
    """What the topmost screen shows, as plain text (one line per terminal row)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text for strip in strips)


def sync(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test with asyncio.run (no pytest async plugin is installed)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper

"""Shared helpers for the terminal-app tests (kept out of conftest.py, which the lead owns)."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from fixtures.make_sweep import T0, make_profiles_dir, make_recorded_sweep
from textual.pilot import Pilot

from larsbench.plan.machine import Machine
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


COMPACT_SIZE = (80, 24)
MID_RUN_EPOCH = 5


def running_larc_run(sweep: Path, run_id: str = "bs64-larc-tc0.02") -> Path:
    """Turn one finished LARC run of the fixture into one caught mid-run: its events end
    during epoch MID_RUN_EPOCH + 1 (no run_end) and status.json says running."""
    run = sweep / run_id
    events = run / "events" / "rank0.jsonl"
    kept = []
    for line in events.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event["kind"] == "run_end" or event.get("epoch", 0) > MID_RUN_EPOCH + 1:
            continue
        if event.get("epoch") == MID_RUN_EPOCH + 1 and event["kind"] in ("epoch", "eval"):
            continue
        kept.append(line)
    events.write_text("\n".join(kept) + "\n", encoding="utf-8")
    status = run / "status.json"
    status.write_text(json.dumps({"state": "running", "reason": ""}), encoding="utf-8")
    (run / "result.json").unlink(missing_ok=True)
    return run

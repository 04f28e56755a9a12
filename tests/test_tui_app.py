"""The terminal app driven headless through Pilot, fed the recorded fixture sweep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.make_sweep import T0
from textual.widgets import Input, Static
from tui_helpers import SIZE, app_for, fixture_tree, screen_text, sync, wait_until

from larsbench.rundir import node_name
from larsbench.tui.app import LarsbenchApp
from larsbench.tui.screens.dialogs import ConfirmDialog, HelpScreen, QuitDialog
from larsbench.tui.widgets.trust import TrustTable


def result_rows(app: LarsbenchApp) -> list[str]:
    """The run ids of the results table, top to bottom."""
    return [ln.split()[0] for ln in screen_text(app).splitlines() if ln.startswith(" bs")]


def first_row(app: LarsbenchApp) -> str:
    """The run id in the results table's first row."""
    rows = result_rows(app)
    return rows[0] if rows else ""


@sync
async def test_attach_to_a_finished_sweep_opens_the_results(tmp_path: Path) -> None:
    _, _, sweep = fixture_tree(tmp_path)
    app = app_for(tmp_path, sweep)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.view is not None and bool(app.view.results))
        assert app.current_mode == "results"
        await wait_until(pilot, lambda: "has the best top-1" in screen_text(app))
        text = screen_text(app)
        assert "results: fixture" in text
        assert "bs64-larc-tc0.02" in text and "93.78%" in text
        assert "failed" in text
        assert first_row(app) == "bs64-larc-tc0.02"  # best top-1 first
        await pilot.press("o")  # sort by img/s
        await wait_until(pilot, lambda: first_row(app) == "bs512-sgd")


@sync
async def test_arrow_keys_pick_the_run_that_enter_opens(tmp_path: Path) -> None:
    _, _, sweep = fixture_tree(tmp_path)
    app = app_for(tmp_path, sweep)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.view is not None and bool(app.view.results))
        await wait_until(pilot, lambda: first_row(app) == "bs64-larc-tc0.02")
        second = result_rows(app)[1]
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: app.view.focus == second)  # type: ignore[union-attr]
        assert app.current_mode == "live"


@sync
async def test_live_screen_shows_the_fixture_numbers(tmp_path: Path) -> None:
    _, _, sweep = fixture_tree(tmp_path)
    app = app_for(tmp_path, sweep)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.view is not None and bool(app.view.results))
        await pilot.press("enter")  # open the highlighted (best) run: a replay
        await wait_until(pilot, lambda: app.view.focus == "bs64-larc-tc0.02")  # type: ignore[union-attr]
        assert app.current_mode == "live"
        await wait_until(pilot, lambda: "epoch 8/8 done" in screen_text(app))
        text = screen_text(app)
        assert "bs64-larc-tc0.02 [completed]" in text and "replay" in text
        assert "loss 0.6266" in text
        assert "global 542 img/s" in text and "r0 271" in text
        assert "top-1 93.78%" in text
        assert "CPU ranks (node0, psutil)" in text and "pid 41001" in text
        assert "data wait 5.0%" in text
        assert "LARC trust ratios" in text and "conv1.weight" in text
        assert "epoch 8/8 done" in text  # the log tail
        await pilot.press("t")
        await wait_until(pilot, lambda: app.screen.query_one(TrustTable).row_count == 9)
        table = app.screen.query_one(TrustTable)
        assert table.display and table.row_count == 9
        first = [str(c) for c in table.get_row_at(0)]
        assert first[0] == "conv1.weight" and first[1] == "100%"
        last = [str(c) for c in table.get_row_at(table.row_count - 1)]
        assert last[1] == "0%"
        await pilot.press("n", "n")  # bs512-sgd, then the failed run
        await wait_until(pilot, lambda: app.view.focus == "bs512-larc-tc0.02")  # type: ignore[union-attr]
        await wait_until(pilot, lambda: "[failed]" in screen_text(app))
        text = screen_text(app)
        assert "[failed]" in text and "gloo connection reset" in text


@sync
async def test_sgd_run_has_no_trust_view(tmp_path: Path) -> None:
    _, _, sweep = fixture_tree(tmp_path)
    app = app_for(tmp_path, sweep / "bs64-sgd")  # a single run directory
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.view is not None and app.view.run is not None)
        assert app.current_mode == "live"
        await wait_until(pilot, lambda: "Plain SGD" in screen_text(app))
        text = screen_text(app)
        assert "run dir" in text and "bs64-sgd [completed]" in text
        assert "Plain SGD: no layer-wise trust ratios" in text


@sync
async def test_configure_form_shows_validation_errors_inline(tmp_path: Path) -> None:
    fixture_tree(tmp_path)
    app = app_for(tmp_path, None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        assert app.current_mode == "configure"
        await pilot.press("down", "enter")  # the picker: fixture-larc, then fixture
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "Runs (4)" in text and "bs512-larc-tc0.02" in text
        epochs = app.screen.query_one("#f-train-epochs", Input)
        epochs.focus()
        epochs.value = ""
        await pilot.press(*"ten")
        await wait_until(pilot, lambda: "(got 'ten')" in screen_text(app))
        error = app.screen.query_one("#e-f-train-epochs", Static)
        assert error.display and epochs.has_class("-error")
        assert "valid integer" in str(error.render())
        assert "fix 1 error" in screen_text(app)
        epochs.value = "8"
        await wait_until(pilot, lambda: "Runs (4)" in screen_text(app))
        batch = app.screen.query_one("#f-train-batch-size", Input)
        batch.focus()
        batch.value = ""
        await pilot.press(*"63")
        await wait_until(pilot, lambda: "does not divide" in screen_text(app))
        epochs.value = "2"
        batch.value = "64, 512"
        await wait_until(pilot, lambda: "Runs (4)" in screen_text(app))
        assert not error.display


@sync
async def test_a_profile_picked_before_the_form_is_there_is_the_one_it_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys pressed in the moment before the form's body mounts (after the first frame) are
    not lost: the picker starts on the profile the form would open, and an Enter then is
    kept and opened when the form comes (it was dropped, and the first profile opened)."""
    monkeypatch.setattr("larsbench.tui.app.FORM_AFTER_FIRST_FRAME", 1.0)
    fixture_tree(tmp_path)
    app = app_for(tmp_path, None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        assert not app.screen.query("#fields")  # the form is not there yet
        await pilot.press("down", "enter")  # from fixture-larc (the first) to fixture
        assert not app.screen.query("#fields")
        await wait_until(pilot, lambda: "Runs (4)" in screen_text(app))
        assert app.screen.profile_path is not None
        assert app.screen.profile_path.name == "fixture.toml"


@sync
async def test_help_screen_and_mode_keys(tmp_path: Path) -> None:
    _, _, sweep = fixture_tree(tmp_path)
    app = app_for(tmp_path, sweep)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.view is not None)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "stop the current run" in screen_text(app)
        await pilot.press("escape")
        await pilot.press("v")
        assert app.current_mode == "live"
        await pilot.press("c")
        assert app.current_mode == "configure"
        await pilot.press("r")
        assert app.current_mode == "results"


FAKE_RUNNER = """
import signal, sys, time
out = sys.argv[1]
def note(sig, frame):
    with open(out, "a") as f:
        f.write(signal.Signals(sig).name + "\\n")
    if sig == signal.SIGTERM:
        sys.exit(0)
signal.signal(signal.SIGUSR1, note)
signal.signal(signal.SIGTERM, note)
open(out, "a").close()
time.sleep(60)
"""


def running_sweep(tmp_path: Path, pid: int) -> Path:
    """The fixture sweep, as if its runner (pid) were still on the last run."""
    _, _, sweep = fixture_tree(tmp_path)
    runner = {"pid": pid, "host": node_name(), "started": T0, "state": "running"}
    runner["current"] = "bs512-larc-tc0.02"
    (sweep / "runner.json").write_text(json.dumps(runner))
    status = {"state": "running", "reason": "", "t": T0 + 300}
    (sweep / "bs512-larc-tc0.02" / "status.json").write_text(json.dumps(status))
    return sweep


Runner = tuple["subprocess.Popen[bytes]", Path]


@pytest.fixture
def fake_runner(tmp_path: Path) -> Iterator[Runner]:
    log = tmp_path / "signals.txt"
    proc = subprocess.Popen([sys.executable, "-c", FAKE_RUNNER, str(log)])
    deadline = time.time() + 10
    while not log.exists() and time.time() < deadline:
        time.sleep(0.05)
    yield proc, log
    if proc.poll() is None:
        proc.kill()
    proc.wait()


@sync
async def test_stop_run_signals_the_runner_and_quit_can_leave_it(
    tmp_path: Path, fake_runner
) -> None:  # type: ignore[no-untyped-def]
    proc, log = fake_runner
    sweep = running_sweep(tmp_path, proc.pid)
    app = app_for(tmp_path, sweep)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.view is not None and app.view.live)
        assert app.current_mode == "live"
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await wait_until(pilot, lambda: "SIGUSR1" in log.read_text())
        await pilot.press("q")
        assert isinstance(app.screen, QuitDialog)
        assert "re-attach later with" in screen_text(app) and "larsbench watch" in screen_text(app)
        await pilot.press("l")  # leave it running
        await pilot.pause()
    assert proc.poll() is None
    assert "SIGTERM" not in log.read_text()


@sync
async def test_quit_can_stop_the_sweep(tmp_path: Path, fake_runner: Runner) -> None:
    proc, log = fake_runner
    sweep = running_sweep(tmp_path, proc.pid)
    app = app_for(tmp_path, sweep)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.view is not None and app.view.live)
        await pilot.press("q")
        await pilot.press("s")
        await pilot.pause()
    assert proc.wait(timeout=10) == 0
    assert "SIGTERM" in log.read_text()


def write_line(path: Path, **event: object) -> None:
    with open(path, "a") as f:
        f.write(json.dumps({"v": 1, **event}) + "\n")


@sync
async def test_live_screen_follows_a_growing_run(tmp_path: Path) -> None:
    """A sweep whose runner (this test's process) appends events while the app watches."""
    sweep = tmp_path / "growing"
    run = sweep / "bs256-sgd"
    (run / "events").mkdir(parents=True)
    config = {"run_id": "bs256-sgd", "train": {"epochs": 2, "batch_size": 256}}
    (sweep / "sweep.json").write_text(
        json.dumps({"name": "growing", "runs": [{"run_id": "bs256-sgd", "config": config}]})
    )
    runner = {"pid": os.getpid(), "host": node_name(), "state": "running", "current": "bs256-sgd"}
    (sweep / "runner.json").write_text(json.dumps(runner))
    (run / "config.json").write_text(json.dumps(config))
    (run / "status.json").write_text(json.dumps({"state": "running"}))
    events = run / "events" / "rank0.jsonl"
    write_line(events, t=T0, kind="run_start", total_steps=200, epochs=2, world_size=2)
    app = app_for(tmp_path, sweep)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.view is not None and app.view.run is not None)
        assert app.current_mode == "live"
        for step in range(10, 110, 10):
            write_line(
                events,
                t=T0 + step,
                kind="step",
                epoch=1,
                step=step,
                loss=3.0 - step / 100,
                lr=0.1,
                images_per_sec=2560.0,
                rank_images_per_sec=[1280.0, 1280.0],
            )
        await wait_until(pilot, lambda: app.view.run.step == 100)  # type: ignore[union-attr]
        await wait_until(pilot, lambda: "step 100/200" in screen_text(app))
        text = screen_text(app)
        assert "step 100/200" in text and "loss 2" in text
        assert "ETA run 1m40s" in text  # 100 steps left at 1 step/s
        assert "global 2.56k img/s" in text
        # The header notices when events stop (injected clock: T0 + 1000).
        header = str(app.screen.query_one("#live-header", Static).render())
        assert "no events for 15m00s" in header


def test_runner_command_is_the_cli() -> None:
    from larsbench.tui import runner_control

    cmd = runner_control.runner_command(Path("p.toml"), Path("out"), ["train.epochs=2"])
    assert cmd[:2] == [sys.executable, "-c"] and "larsbench.cli" in cmd[2]
    assert cmd[3:] == ["run", "--profile", "p.toml", "--out", "out", "--set", "train.epochs=2"]


def test_launch_is_detached_and_logs_to_runner_log(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from larsbench.tui import runner_control

    fake = [sys.executable, "-c", "print('runner says hi')"]
    monkeypatch.setattr(runner_control, "runner_command", lambda *a: fake)
    proc = runner_control.launch_sweep(Path("p.toml"), tmp_path / "out", [])
    assert proc.wait(timeout=10) == 0
    assert (tmp_path / "out" / "runner.log").read_text() == "runner says hi\n"
    proc = runner_control.launch_sweep(Path("p.toml"), tmp_path / "out", [])
    assert os.getsid(proc.pid) == proc.pid != os.getsid(0)  # its own session (zombie or not)
    proc.wait(timeout=10)


@sync
async def test_results_screen_shows_the_reference_and_the_reproduction(tmp_path: Path) -> None:
    # A [reference] table added to the sweep's profile after the sweep ran counts, as in report.
    _, _, sweep = fixture_tree(tmp_path)
    profile = sweep / "profile.toml"
    profile.write_text(
        profile.read_text()
        + '\n[reference]\nsource = "the study"\ntolerance = 0.5\n'
        + '[reference.top1]\n"bs64-larc-tc0.02" = 93.5\n'
    )
    app = app_for(tmp_path, sweep)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_until(pilot, lambda: app.view is not None and app.view.reference is not None)
        await wait_until(pilot, lambda: "reproduce it" in screen_text(app))
        text = screen_text(app)
        assert "Against the" in text
        assert "ref top-1" in text and "vs ref" in text
        row = next(ln for ln in text.splitlines() if ln.startswith(" bs64-larc-tc0.02"))
        assert "93.78%" in row and "93.50%" in row and "+0.28" in row

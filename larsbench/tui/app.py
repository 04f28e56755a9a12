"""The Textual app: builds the screens, runs the watcher thread, launches and stops sweeps."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.worker import get_current_worker

from larsbench.rundir import SweepPaths, is_run_dir, is_sweep_dir
from larsbench.runner_file import read_runner
from larsbench.tui import runner_control
from larsbench.tui.discover import default_profiles_dirs
from larsbench.tui.screens.configure import ConfigureScreen
from larsbench.tui.screens.dialogs import HelpScreen, QuitDialog

if TYPE_CHECKING:
    from larsbench.live.sweepview import SweepView
    from larsbench.plan.machine import Machine
    from larsbench.tui.watcher import SweepUpdated, SweepWatcher

# Textual paints on a timer (at most 60 frames a second): the configure form waits this long
# after the first frame is ready, so that the frame is on the terminal before the form builds.
FORM_AFTER_FIRST_FRAME = 0.04  # seconds
POLL_INTERVAL = 1.0  # seconds between reads of the watched folder: at most 1 UI update/s


# The live and results screens (plotext, the trust and comparison widgets) and the watcher (the
# fold, the summary, telemetry) are imported on first use: the first paint, the configure
# screen, needs none of them.
def live_screen() -> Screen[Any]:
    from larsbench.tui.screens.live import LiveScreen

    return LiveScreen()


def results_screen() -> Screen[Any]:
    from larsbench.tui.screens.results import ResultsScreen

    return ResultsScreen()


class LarsbenchApp(App[None]):
    """Configure, launch, watch and compare sweeps. Build it with make_app()."""

    CSS_PATH = "larsbench.tcss"
    TITLE = "larsbench"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        "configure": ConfigureScreen,
        "live": live_screen,
        "results": results_screen,
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark,f1", "help", "Help"),
        Binding("q", "quit_app", "Quit"),
        Binding("ctrl+c,ctrl+q", "quit_app", "Quit", show=False, priority=True),
        Binding("c", "goto('configure')", "Configure"),
        Binding("v", "goto('live')", "Live"),
        Binding("r", "goto('results')", "Results"),
    ]

    def __init__(
        self,
        watch_dir: Path | None = None,
        profiles_dirs: list[Path] | None = None,
        runs_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
        machine: Machine | None = None,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        super().__init__()
        self.initial_watch = Path(watch_dir) if watch_dir is not None else None
        self.profiles_dirs = list(profiles_dirs) if profiles_dirs else default_profiles_dirs()
        self.runs_dir = runs_dir if runs_dir is not None else Path.cwd() / "runs"
        self.clock = clock
        self._machine = machine
        self.poll_interval = poll_interval
        self.watch_dir: Path | None = None
        self.watcher: SweepWatcher | None = None
        self.view: SweepView | None = None
        self.launched: subprocess.Popen[bytes] | None = None
        self.first_frame_shown = False

    @property
    def machine(self) -> Machine:
        """What `auto` resolves against in the preview (the node the app runs on)."""
        if self._machine is None:
            from larsbench.plan.machine import Machine

            self._machine = Machine.here()
        return self._machine

    def on_ready(self) -> None:
        """Textual's first frame is on the terminal: the configure form may fill now."""
        self.first_frame_shown = True
        if isinstance(self.screen, ConfigureScreen):
            self.screen.set_timer(FORM_AFTER_FIRST_FRAME, self.screen.open_form)

    def on_mount(self) -> None:
        if self.initial_watch is not None:
            self.attach(self.initial_watch)
        else:
            self.switch_mode("configure")

    # --- watching ---------------------------------------------------------------------------

    def attach(self, path: Path, process: subprocess.Popen[bytes] | None = None) -> None:
        """Watch a sweep or run folder (replacing any watched one) and show it."""
        from larsbench.tui.watcher import SweepWatcher

        path = Path(path)
        self.watch_dir = path
        self.view = None
        if process is not None:
            self.launched = process
        self.watcher = SweepWatcher(path, clock=self.clock, interval=self.poll_interval)
        watcher = self.watcher
        self.run_worker(
            lambda: self._watch(watcher),
            name=f"watch {path}",
            group="watch",
            exclusive=True,
            thread=True,
        )
        self.switch_mode(self._first_mode(path, launched=process is not None))

    @staticmethod
    def _first_mode(path: Path, launched: bool) -> str:
        """Live while something runs (or for a single run), else the results."""
        if launched or (is_run_dir(path) and not is_sweep_dir(path)):
            return "live"
        runner = read_runner(SweepPaths(path))
        if runner.running and runner.alive():
            return "live"
        return "results" if is_sweep_dir(path) else "live"

    def _watch(self, watcher: SweepWatcher) -> None:
        """The worker thread: files in, immutable snapshots out, only via post_message."""
        from larsbench.tui.watcher import SweepUpdated

        worker = get_current_worker()
        watcher.run(
            publish=lambda view: self.post_message(SweepUpdated(view)),
            cancelled=lambda: worker.is_cancelled,
        )

    def focus_run(self, run_id: str | None) -> None:
        """Show this run on the live screen (None: follow the running one)."""
        if self.watcher is not None:
            self.watcher.focus(run_id)

    def on_sweep_updated(self, message: SweepUpdated) -> None:
        if message.view.root != self.watch_dir:
            return  # a late snapshot from a watcher that was replaced
        self.view = message.view
        if self.launched is not None and self.launched.poll() is not None:
            self.launched = None  # reaped; the runner has exited
        show = getattr(self.screen, "show_view", None)
        if show is not None:
            show(message.view)

    # --- actions ----------------------------------------------------------------------------

    def action_goto(self, mode: str) -> None:
        if mode != "configure" and self.watch_dir is None:
            self.notify(
                "No sweep yet: launch one (ctrl+r) or watch a recent sweep (w).",
                severity="warning",
            )
            return
        self.switch_mode(mode)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def sweep_running(self) -> bool:
        if self.view is not None and self.view.live:
            return True
        return self.launched is not None and self.launched.poll() is None

    def action_quit_app(self) -> None:
        if not self.sweep_running() or self.watch_dir is None:
            self.exit()
            return
        where = str(self.watch_dir)
        name = self.view.name if self.view else self.watch_dir.name

        def chosen(choice: str | None) -> None:
            if choice == "stop":
                self._stop_sweep()
                self.exit()
            elif choice == "leave":
                self.exit()

        self.push_screen(QuitDialog(name, where), chosen)

    def _stop_sweep(self) -> None:
        assert self.watch_dir is not None
        why = runner_control.stop_sweep(self.watch_dir)
        if why and self.launched is not None and self.launched.poll() is None:
            self.launched.terminate()  # not yet in runner.json: SIGTERM stops the sweep too


def make_app(
    watch_dir: Path | None = None,
    profiles_dirs: list[Path] | None = None,
    *,
    runs_dir: Path | None = None,
    clock: Callable[[], float] = time.time,
    machine: Machine | None = None,
    poll_interval: float = POLL_INTERVAL,
) -> LarsbenchApp:
    """Build the app; tests inject fixture folders, a fixed clock and a fixed machine."""
    return LarsbenchApp(
        watch_dir=watch_dir,
        profiles_dirs=profiles_dirs,
        runs_dir=runs_dir,
        clock=clock,
        machine=machine,
        poll_interval=poll_interval,
    )


def run_app(watch_dir: Path | None = None, profiles_dirs: list[Path] | None = None) -> None:
    """`larsbench` (no folder: start on the configure screen) and `larsbench watch DIR`."""
    make_app(watch_dir=watch_dir, profiles_dirs=profiles_dirs).run()

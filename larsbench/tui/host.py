"""What the screens need from the app (ScreenHost), so that no screen imports the app class."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from larsbench.live.sweepview import SweepView
    from larsbench.plan.machine import Machine


class ScreenHost(Protocol):
    """The app as its screens see it; LarsbenchApp satisfies it (`self.app` is one)."""

    profiles_dirs: list[Path]  # where the configure screen lists profiles; the first saves
    runs_dir: Path  # where launched sweeps go and recent ones are listed
    clock: Callable[[], float]  # wall clock (fixed in tests): sweep folder names
    first_frame_shown: bool  # Textual's first frame is on the terminal (events.Ready)

    @property
    def machine(self) -> Machine:
        """What `auto` resolves against in the preview."""
        ...

    @property
    def view(self) -> SweepView | None:
        """The latest snapshot of the watched folder (None before its first read)."""
        ...

    def attach(self, path: Path, process: subprocess.Popen[bytes] | None = None) -> None:
        """Watch a sweep or run folder and show it."""
        ...

    def focus_run(self, run_id: str | None) -> None:
        """Show this run on the live screen (None: follow the running one)."""
        ...

"""Starting `larsbench run` detached, and signalling it: stop the run, stop the sweep."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from larsbench.rundir import SweepPaths
from larsbench.runner_file import signal_runner

RUNNER_LOG = "runner.log"
# `python -c` keeps the command independent of where the console script is installed.
_ENTRY = "import sys; from larsbench.cli import main; sys.exit(main())"


def runner_command(profile: Path, out: Path, set_args: list[str]) -> list[str]:
    """The headless runner's command line: the same as typing `larsbench run ...`."""
    cmd = [sys.executable, "-c", _ENTRY, "run", "--profile", str(profile), "--out", str(out)]
    for item in set_args:
        cmd += ["--set", item]
    return cmd


def launch_sweep(profile: Path, out: Path, set_args: list[str]) -> subprocess.Popen[bytes]:
    """Start the runner in its own session (it outlives the app), output to OUT/runner.log."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / RUNNER_LOG, "ab") as log:
        return subprocess.Popen(
            runner_command(profile, out, set_args),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_run(sweep_dir: Path) -> str:
    """SIGUSR1: the runner stops the current run and goes on with the next."""
    return signal_runner(SweepPaths(sweep_dir), signal.SIGUSR1)


def stop_sweep(sweep_dir: Path) -> str:
    """SIGTERM: the runner stops the current run and the sweep."""
    return signal_runner(SweepPaths(sweep_dir), signal.SIGTERM)

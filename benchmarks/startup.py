"""Start-up time: `larsbench --help` and the terminal app's first paint, against `python -c pass`.

    .venv/bin/python benchmarks/startup.py [--reps 7]

Every case is a fresh process, timed from its spawn by this script (wall clock), interleaved:
each repetition runs every case once, the order rotated, so a shared machine's drifts hit them
alike; the table shows medians.

- `python -c pass`: the interpreter's own start-up, the baseline.
- `larsbench --help`: the console script (`python -m larsbench.cli --help` when the script is
  not installed next to this Python); until the process exits. Target: at most 5x the baseline.
- `import larsbench.tui.app`: the app's imports alone (textual and the core), no target: the share
  of the first paint that is imports.
- first paint, pty: `larsbench` (the app, no folder: the configure screen) in a pseudo-terminal
  of 120x40, until its output first holds visible text (Textual's first frame, not only its
  mode-setting escapes); then its process group is killed. Target: at most 20x the baseline.
- first paint, run_test: a subprocess that imports `larsbench.tui.app.make_app` and enters
  `App.run_test()` (headless, 120x40), until it prints that the first screen is mounted. No
  target: it also waits for Textual's test harness; the pty case is the user's wait.

Both app cases start in an empty temporary folder (no ./runs, no ./profiles: the shipped profiles
are listed). Targets are multiples of `python -c pass` measured in the same run, because
machines differ; the last lines say whether each case's median meets its multiple.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import platform
import pty
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

BASELINE = "python -c pass"
TARGETS = {"larsbench --help": 5.0, "first paint, pty": 20.0}  # at most this many baselines
TIMEOUT = 60.0
SIZE = (120, 40)

# Escape sequences (CSI, OSC, and two-byte ones) that carry no visible text.
_ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=$ ]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")

RUN_TEST = """
import asyncio, sys
from larsbench.tui.app import make_app

async def main():
    app = make_app()
    async with app.run_test(size=({cols}, {rows})) as pilot:
        print("mounted", type(app.screen).__name__, flush=True)
        sys.stdout.close()
        await pilot.press("ctrl+q")

asyncio.run(main())
"""


def larsbench_command() -> list[str]:
    script = Path(sys.executable).parent / "larsbench"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "larsbench.cli"]


def time_exit(cmd: list[str], cwd: Path) -> float:
    """Spawn to exit."""
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {done.returncode}\n{done.stderr.decode()}")
    return elapsed


def time_first_line(cmd: list[str], cwd: Path) -> float:
    """Spawn to the first line on stdout (the process may go on; it is then killed)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    line = proc.stdout.readline() if proc.stdout else b""
    elapsed = time.perf_counter() - started
    _kill_group(proc.pid)
    proc.wait()
    if not line.startswith(b"mounted"):
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise SystemExit(f"{' '.join(cmd)}: no 'mounted' line\n{err[-2000:]}")
    return elapsed


def time_first_paint(cmd: list[str], cwd: Path) -> float:
    """Spawn in a pseudo-terminal to the first output that holds visible text."""
    started = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: a session leader on the pty
        try:
            os.chdir(cwd)
            os.environ["TERM"] = "xterm-256color"
            os.environ["COLUMNS"], os.environ["LINES"] = str(SIZE[0]), str(SIZE[1])
            os.execv(cmd[0], cmd)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
    seen = b""
    try:
        while time.perf_counter() - started < TIMEOUT:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child is gone
                break
            if not chunk:
                break
            seen += chunk
            if _ESCAPES.sub(b"", seen).strip():
                return time.perf_counter() - started
        raise SystemExit(f"{' '.join(cmd)}: no visible output; it wrote {seen[-300:]!r}")
    finally:
        _kill_group(pid)
        os.waitpid(pid, 0)
        os.close(fd)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="interleaved repetitions")
    args = parser.parse_args(argv)

    larsbench = larsbench_command()
    if len(larsbench) > 1:
        print("no larsbench script next to this Python: timing python -m larsbench.cli")
    with tempfile.TemporaryDirectory(prefix="larsbench-startup-") as tmp_dir:
        cwd = Path(tmp_dir)
        run_test_py = cwd / "first_screen.py"
        run_test_py.write_text(RUN_TEST.format(cols=SIZE[0], rows=SIZE[1]))
        cases: dict[str, Callable[[], float]] = {
            BASELINE: lambda: time_exit([sys.executable, "-c", "pass"], cwd),
            "larsbench --help": lambda: time_exit([*larsbench, "--help"], cwd),
            "import larsbench.tui.app": lambda: time_exit(
                [sys.executable, "-c", "import larsbench.tui.app"], cwd
            ),
            "first paint, pty": lambda: time_first_paint(larsbench, cwd),
            "first paint, run_test": lambda: time_first_line(
                [sys.executable, str(run_test_py)], cwd
            ),
        }
        names = list(cases)
        for name in names:  # warm the page cache and bytecode caches: not timed
            cases[name]()
        times: dict[str, list[float]] = {name: [] for name in names}
        loads = []
        for rep in range(args.reps):
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                times[name].append(cases[name]())
            loads.append(os.getloadavg()[0])
            shown = ", ".join(f"{n} {times[n][-1]:.3f}" for n in names)
            print(f"  rep {rep + 1}/{args.reps}: {shown} s", flush=True)

    print(
        f"\n{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"textual {version('textual')}, torch {version('torch')}; {args.reps} reps; "
        f"load average (1 min) {min(loads):.2f}-{max(loads):.2f}"
    )
    print_table(times)


def print_table(times: dict[str, list[float]]) -> None:
    """Each case's median, min and max, its multiple of the baseline's median, its target."""
    base = statistics.median(times[BASELINE])
    print(
        f"{'case':<24} {'median s':>9} {'min s':>7} {'max s':>7} {'x pass':>7} "
        f"{'target x':>9} {'verdict':>8}"
    )
    for name, seconds in times.items():
        med = statistics.median(seconds)
        target = TARGETS.get(name)
        verdict = ("ok" if med / base <= target else "MISSED") if target else ""
        shown = f"{target:>9.0f} {verdict:>8}" if target else f"{'':>9} {'':>8}"
        print(
            f"{name:<24} {med:>9.3f} {min(seconds):>7.3f} {max(seconds):>7.3f} "
            f"{med / base:>7.1f} {shown}"
        )
    for name, target in TARGETS.items():
        multiple = statistics.median(times[name]) / base
        verdict = "ok" if multiple <= target else "MISSED"
        print(f"{name}: {multiple:.1f}x {BASELINE} (target at most {target:g}x): {verdict}")


if __name__ == "__main__":
    main()

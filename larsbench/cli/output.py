"""How every command answers: its exit codes, the error line on stderr, the rich console."""

from __future__ import annotations

import sys
from typing import Any

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def make_console(stderr: bool = False) -> Any:
    """A rich console; when output is a file or pipe, wide enough that tables never wrap."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr) if stream.isatty() else Console(stderr=stderr, width=200)


def fail(message: str, code: int = EXIT_USAGE) -> int:
    """Print the error line `larsbench: error: MESSAGE` on stderr; returns the exit code."""
    print(f"larsbench: error: {message}", file=sys.stderr)
    return code

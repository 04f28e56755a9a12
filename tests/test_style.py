"""The code stays ruff clean (lint and format), as the style guide asks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or "ruff"
    return subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_check_is_clean() -> None:
    done = ruff("check", "larsbench", "tests", "benchmarks")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_is_clean() -> None:
    done = ruff("format", "--check", "larsbench", "tests", "benchmarks")
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_function_of_the_training_side_is_over_60_lines() -> None:
    """The worker reads in one sitting (issue 15): named steps, none longer than a screen."""
    import ast

    long = []
    for path in sorted((ROOT / "larsbench" / "train").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines > 60:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


def test_no_module_of_the_package_is_over_400_lines() -> None:
    """A module over ~400 lines is probably two (../shared/STYLE.md, issue 16)."""
    long = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "larsbench").rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert long == {}

"""The app never imports torch, and its pure modules do not even import textual."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import larsbench.live

# Every module of larsbench.live (a run's live state), found on disk so that a new one counts.
_LIVE_PATH = larsbench.live.__path__
LIVE = [
    "larsbench.live",
    *sorted(f"larsbench.live.{m.name}" for m in pkgutil.iter_modules(_LIVE_PATH)),
]

# The app's Textual-free models: they import plainly (the package's __init__ loads nothing).
PURE = [
    "larsbench.tui.form",
    "larsbench.tui.tomltext",
    "larsbench.tui.discover",
    "larsbench.tui.runner_control",
    "larsbench.tui.compare",
]


def loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_importing_the_app_does_not_import_torch() -> None:
    loaded = loaded_after("from larsbench.tui.app import make_app; make_app()")
    assert "textual" in loaded
    assert "torch" not in loaded and "torchvision" not in loaded
    assert "matplotlib" not in loaded  # only summary.png needs it


@pytest.mark.parametrize("module", LIVE)
def test_the_live_state_imports_neither_textual_nor_torch(module: str) -> None:
    loaded = loaded_after(f"import {module}")
    assert "textual" not in loaded, f"{module} pulls in textual"
    assert "torch" not in loaded, f"{module} pulls in torch"


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_not_import_textual(module: str) -> None:
    loaded = loaded_after(f"import {module}")
    assert "textual" not in loaded, f"{module} pulls in textual"
    assert "torch" not in loaded

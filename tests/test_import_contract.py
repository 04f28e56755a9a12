"""The core never imports the UI, and the command line never imports torch at start-up."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEADLESS_MODULES = [
    "larsbench.cli",
    "larsbench.profile.loading",
    "larsbench.profile.overrides",
    "larsbench.plan.expand",
    "larsbench.plan.steps",
    "larsbench.events",
    "larsbench.rundir",
    "larsbench.results",
    "larsbench.launch",
    "larsbench.sweep",
    "larsbench.headless",
    "larsbench.json_progress",
    "larsbench.reference",
    "larsbench.export.tensorboard",
    "larsbench.export.tb_protos",  # tensorboard's writer: neither torch nor TensorFlow
]


def loaded_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("module", HEADLESS_MODULES)
def test_headless_modules_import_neither_textual_nor_torch(module: str) -> None:
    loaded = loaded_after_import(module)
    assert "textual" not in loaded, f"{module} pulls in textual"
    assert "torch" not in loaded, f"{module} pulls in torch"


def test_cli_help_does_not_import_torch() -> None:
    code = (
        "import sys; from larsbench.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules and 'textual' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)

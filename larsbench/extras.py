"""Optional extras of larsbench: whether they are installed, and the error that says how."""

from __future__ import annotations

import importlib.util

DALI_INSTALL = "pip install 'larsbench[dali]'  (or: pip install nvidia-dali-cuda130)"


def dali_installed() -> bool:
    """NVIDIA DALI importable here (found without importing it)."""
    try:
        return importlib.util.find_spec("nvidia.dali") is not None
    except (ImportError, ValueError):  # no `nvidia` namespace package at all
        return False


def dali_missing(where: str) -> str:
    """The message for a profile that asks for DALI where it is not installed."""
    return (
        f'{where}: data.loader: "dali" needs NVIDIA DALI, which is not installed here '
        f"(the larsbench[dali] extra). Install it with: {DALI_INSTALL}; "
        'or use data.loader = "torch"'
    )


def require_dali() -> None:
    if not dali_installed():
        raise ImportError(dali_missing("this run"))

"""The terminal app (Textual): configure, launch, watch and compare sweeps."""

from larsbench.tui.app import LarsbenchApp, make_app, run_app

__all__ = ["LarsbenchApp", "make_app", "run_app"]

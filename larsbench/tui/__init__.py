"""The terminal app (Textual): configure, launch, watch and compare sweeps (`tui/app.py`).

This package's own import loads nothing: its Textual-free models (form, discover, compare,
tomltext, runner_control) import without Textual (tests/test_tui_import.py).
"""

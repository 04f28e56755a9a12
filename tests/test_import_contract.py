"""The layers, read from the real imports: no circle, no upward import between the floors, the
core never imports the UI, the UI and the launcher never import torch, the workers never import
the sweep layer.

The rules name packages and prefixes, never a module list: a new module is covered by where it
lives. The graph comes from the source (tests/import_graph.py); the last tests import the
modules for real, in a subprocess.
"""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from import_graph import ImportGraph, build_graph, in_area

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "larsbench"

UI = ("larsbench.tui",)  # the terminal app, the only importer of the UI libraries
UI_LIBRARIES = ("textual", "textual_plotext", "plotext")
APP_OPENER = ("larsbench.cli",)  # may import larsbench.tui inside a function: `larsbench` opens it
HEAVY = ("torch", "torchvision", "nvidia.dali")  # the training side's libraries
WORKERS = ("larsbench.train", "larsbench.optim", "larsbench.doctor.allreduce")  # torchrun's ranks
WORKER_PACKAGES = ("larsbench.train", "larsbench.optim")
LAUNCHER = ("larsbench.cli", "larsbench.sweep", "larsbench.launch", "larsbench.headless")
SWEEP_LAYER = (*LAUNCHER, "larsbench.tui", "larsbench.doctor")

# Outside the workers, the only modules that may reach torch, each inside a function that runs
# in a short-lived subprocess of its own (torch and CUDA stay out of the caller's process).
TORCH_ALLOWED = {
    "larsbench.feed": "check_feed times the run's decode in `python -m larsbench.feed`",
}


# The floors, lowest first: a module imports (at any level) only modules of its own floor or
# below. A module is on the floor of the longest prefix that names it; a module no prefix
# names (a new top-level module) is on the lowest floor, until it needs to be placed higher.
FLOORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "data",
        (
            "larsbench",
            "larsbench.events",
            "larsbench.rundir",
            "larsbench.format",
            "larsbench.profile",
            "larsbench.extras",
            "larsbench.filelist",
            "larsbench.gpu_reference",
        ),
    ),
    (
        "machine and plan",
        (
            "larsbench.telemetry",
            "larsbench.plan",
            "larsbench.optim",
            "larsbench.reference",
            "larsbench.runner_file",
        ),
    ),
    (
        "workers, launch, the fold",
        ("larsbench.train", "larsbench.launch", "larsbench.live.fold", "larsbench.export"),
    ),
    ("results", ("larsbench.results", "larsbench.feed")),
    ("views of results", ("larsbench.live", "larsbench.summary")),
    ("sweep", ("larsbench.sweep",)),
    ("front-end views", ("larsbench.headless", "larsbench.slurm", "larsbench.doctor")),
    ("machine-readable progress", ("larsbench.json_progress",)),
    ("front ends", ("larsbench.cli", "larsbench.tui")),
)


def floor_of(module: str) -> int:
    """The floor a module lives on (the longest prefix naming it; the lowest when none)."""
    best, floor = -1, 0
    for number, (_, prefixes) in enumerate(FLOORS):
        for prefix in prefixes:
            if in_area(module, (prefix,)) and len(prefix) > best:
                best, floor = len(prefix), number
    return floor


def upward_imports(graph: ImportGraph) -> list[str]:
    """Imports, at any level, of a module on a higher floor than the importer's."""
    bad = []
    for imp in graph.imports:
        target = graph.internal(imp.target)
        if target is None or floor_of(target) <= floor_of(imp.importer):
            continue
        below, above = FLOORS[floor_of(imp.importer)][0], FLOORS[floor_of(target)][0]
        bad.append(f"{imp.importer}:{imp.line} ({below}) imports {target} ({above})")
    return bad


def heavy_loaders(graph: ImportGraph) -> set[str]:
    """The package's modules whose import loads torch (itself or through what it imports)."""
    direct = {i.importer for i in graph.imports if i.at_import_time and in_area(i.target, HEAVY)}
    return {m for m in graph.modules if graph.loaded_by([m]) & direct}


def circles(graph: ImportGraph) -> list[str]:
    """Circles over every import: module-level, inside functions, under TYPE_CHECKING."""
    return [" <-> ".join(c) for c in graph.cycles()]


def ui_in_core(graph: ImportGraph) -> list[str]:
    """Imports of textual or the app outside tui/ (but the cli's function that opens it)."""
    bad = []
    for imp in graph.imports:
        if in_area(imp.importer, UI):
            continue
        opens_app = in_area(imp.importer, APP_OPENER) and not imp.module_level
        if in_area(imp.target, UI_LIBRARIES) or (in_area(imp.target, UI) and not opens_app):
            bad.append(f"{imp.importer}:{imp.line} imports {imp.target}")
    return bad


def torch_at_start_up(graph: ImportGraph) -> list[str]:
    """Modules the UI or the launcher load at import time that import torch at import time."""
    roots = [m for m in graph.modules if in_area(m, (*UI, *LAUNCHER))]
    loaded = graph.loaded_by(roots)
    return [
        f"{imp.importer}:{imp.line} imports {imp.target} (loaded by the UI or the launcher)"
        for imp in graph.imports
        if imp.importer in loaded and imp.at_import_time and in_area(imp.target, HEAVY)
    ]


def torch_outside_workers(graph: ImportGraph) -> list[str]:
    """Imports, at any level, of torch or of a module that loads it, outside the workers and
    TORCH_ALLOWED."""
    loaders = heavy_loaders(graph)
    bad = []
    for imp in graph.imports:
        if in_area(imp.importer, (*WORKERS, *TORCH_ALLOWED)):
            continue
        target = graph.internal(imp.target)
        if in_area(imp.target, HEAVY) or target in loaders:
            bad.append(f"{imp.importer}:{imp.line} imports {imp.target}, which is torch")
    return bad


def workers_reaching_the_sweep_layer(graph: ImportGraph) -> list[str]:
    """Imports in train/ or optim/, at any level, of the sweep layer or of a module that loads
    it at import time."""
    bad = []
    for imp in graph.imports:
        if not in_area(imp.importer, WORKER_PACKAGES):
            continue
        target = graph.internal(imp.target)
        if target is None:
            continue
        reached = sorted(m for m in graph.loaded_by([target]) if in_area(m, SWEEP_LAYER))
        reached = [m for m in reached if not in_area(m, WORKERS) and m != "larsbench.doctor"]
        if in_area(target, SWEEP_LAYER) and not in_area(target, WORKERS):
            reached.insert(0, target)
        if reached:
            bad.append(f"{imp.importer}:{imp.line} imports {imp.target}, reaching {reached}")
    return bad


RULES = (
    circles,
    upward_imports,
    ui_in_core,
    torch_at_start_up,
    torch_outside_workers,
    workers_reaching_the_sweep_layer,
)


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    return build_graph(ROOT, PACKAGE)


def test_the_graph_holds_the_whole_package(graph: ImportGraph) -> None:
    files = set((ROOT / PACKAGE).rglob("*.py"))
    assert set(graph.modules.values()) == files
    assert "larsbench.tui.app" in graph.modules and "larsbench.train.worker" in graph.modules
    app = [i for i in graph.imports if i.importer == "larsbench.tui.app"]
    assert any(i.target == "textual.app" and i.at_import_time for i in app)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_the_layers_hold(graph: ImportGraph, rule) -> None:
    assert rule(graph) == []


def test_every_torch_exception_is_still_needed(graph: ImportGraph) -> None:
    """An allowlisted module that no longer reaches torch leaves the list."""
    loaders = heavy_loaders(graph)
    for module in TORCH_ALLOWED:
        assert module in graph.modules, f"{module} is gone: remove it from TORCH_ALLOWED"
        reach = [
            i
            for i in graph.imports
            if i.importer == module
            and (in_area(i.target, HEAVY) or graph.internal(i.target) in loaders)
        ]
        assert reach, f"{module} no longer imports torch: remove it from TORCH_ALLOWED"
        assert not any(i.at_import_time for i in reach), f"{module} imports torch at import time"


def test_the_screens_reach_the_app_only_through_screen_host(graph: ImportGraph) -> None:
    """The circle the issue found: the screens typed against the app class."""
    from larsbench.tui.host import ScreenHost

    screens = [i for i in graph.imports if in_area(i.importer, ("larsbench.tui.screens",))]
    assert screens and not [i for i in screens if in_area(i.target, ("larsbench.tui.app",))]
    from larsbench.tui.app import make_app

    app = make_app(profiles_dirs=[ROOT / "profiles"])
    members = [n for n in vars(ScreenHost) if not n.startswith("_")]
    members += list(ScreenHost.__annotations__)
    for name in members:
        inspect.getattr_static(app, name)  # AttributeError: the app no longer satisfies it


# --- the checker fails where it should: a copy of the package with one violation each ---------


def copy_of_the_package(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / PACKAGE, tmp_path / PACKAGE, ignore=shutil.ignore_patterns("*.pyc"))
    return tmp_path


def with_line(root: Path, module: str, line: str) -> ImportGraph:
    path = root / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = path.with_suffix("") / "__init__.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text(encoding="utf-8") if path.exists() else '"""A new module."""\n'
    path.write_text(text + line + "\n", encoding="utf-8")
    return build_graph(root, PACKAGE)


def test_a_ui_import_in_the_core_fails(tmp_path: Path) -> None:
    root = copy_of_the_package(tmp_path)
    graph = with_line(root, "larsbench.events", "from larsbench.tui.app import make_app")
    assert [v for v in ui_in_core(graph) if v.startswith("larsbench.events:")]
    graph = with_line(root, "larsbench.newcore", "from textual.widgets import Static")
    assert [v for v in ui_in_core(graph) if v.startswith("larsbench.newcore:")]


def test_the_cli_opens_the_app_only_from_a_function(tmp_path: Path) -> None:
    root = copy_of_the_package(tmp_path)
    graph = with_line(root, "larsbench.cli", "import larsbench.tui.app")
    assert [v for v in ui_in_core(graph) if v.startswith("larsbench.cli:")]


def test_a_type_checking_circle_fails(tmp_path: Path) -> None:
    root = copy_of_the_package(tmp_path)
    line = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from larsbench.tui import app"
    graph = with_line(root, "larsbench.tui.screens.live", line)  # the app imports it lazily
    assert any(
        "larsbench.tui.app" in c and "larsbench.tui.screens.live" in c for c in circles(graph)
    )
    graph = with_line(root, "larsbench.rundir", "def f():\n    import larsbench.results")
    assert any("larsbench.rundir" in c for c in circles(graph))


def test_an_upward_import_fails(tmp_path: Path) -> None:
    root = copy_of_the_package(tmp_path)
    graph = with_line(root, "larsbench.plan.expand", "def f():\n    import larsbench.summary.rows")
    assert [v for v in upward_imports(graph) if v.startswith("larsbench.plan.expand:")]
    graph = with_line(root, "larsbench.newcore", "from larsbench.sweep import runner")
    assert [v for v in upward_imports(graph) if v.startswith("larsbench.newcore:")]
    assert floor_of("larsbench.live.fold") < floor_of("larsbench.results")
    assert floor_of("larsbench.results") < floor_of("larsbench.live.run_state")


def test_torch_at_the_launchers_start_up_fails(tmp_path: Path) -> None:
    root = copy_of_the_package(tmp_path)
    graph = with_line(root, "larsbench.newcore", "import torch")  # in no one's start-up yet
    assert torch_at_start_up(graph) == []
    assert [v for v in torch_outside_workers(graph) if v.startswith("larsbench.newcore:")]
    graph = with_line(root, "larsbench.events", "from larsbench.train.model import build_model")
    assert [v for v in torch_at_start_up(graph) if v.startswith("larsbench.train.model:")]
    assert [v for v in torch_outside_workers(graph) if v.startswith("larsbench.events:")]


def test_a_function_level_torch_import_in_the_core_fails(tmp_path: Path) -> None:
    root = copy_of_the_package(tmp_path)
    graph = with_line(root, "larsbench.results", "def f():\n    import torchvision")
    assert torch_at_start_up(graph) == []
    assert [v for v in torch_outside_workers(graph) if v.startswith("larsbench.results:")]


def test_a_worker_importing_the_sweep_layer_fails(tmp_path: Path) -> None:
    root = copy_of_the_package(tmp_path)
    graph = with_line(root, "larsbench.optim.newopt", "def f():\n    from larsbench import sweep")
    assert [v for v in workers_reaching_the_sweep_layer(graph) if "larsbench.sweep" in v]
    graph = with_line(root, "larsbench.newcore", "import larsbench.headless")
    graph = with_line(root, "larsbench.train.newstep", "import larsbench.newcore")
    found = workers_reaching_the_sweep_layer(graph)
    assert [v for v in found if v.startswith("larsbench.train.newstep:")]


# --- real imports, in a subprocess -------------------------------------------------------------


def headless_modules(graph: ImportGraph) -> list[str]:
    """Every module but the app, the workers, TORCH_ALLOWED and `__main__` (which runs)."""
    return [
        m
        for m in graph.modules
        if not in_area(m, (*UI, *WORKERS, *TORCH_ALLOWED)) and not m.endswith(".__main__")
    ]


def test_the_headless_modules_import_neither_textual_nor_torch(graph: ImportGraph) -> None:
    modules = headless_modules(graph)
    assert "larsbench.cli" in modules or "larsbench.cli.__main__" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"    heavy = sorted(m for m in {('textual', *HEAVY)!r} if m in sys.modules)\n"
        "    if heavy:\n"
        "        raise SystemExit(f'{name} pulls in {heavy}')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_first_paint_loads_nothing_only_the_live_and_results_screens_use() -> None:
    """The configure screen comes first: the plots, the trust and comparison widgets, the
    watcher and telemetry (psutil) load when the live or results screen does, and the
    profile models (pydantic) when the form fills, after the first frame."""
    code = (
        "import sys; from larsbench.tui.app import make_app\n"
        "make_app()\n"
        "late = ('plotext', 'textual_plotext', 'psutil', 'larsbench.telemetry', 'matplotlib',"
        " 'larsbench.tui.screens.live', 'larsbench.tui.screens.results',"
        " 'larsbench.tui.watcher', 'pydantic', 'larsbench.tui.form')\n"
        "print(' '.join(m for m in late if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == []


def test_cli_help_does_not_import_torch() -> None:
    code = (
        "import sys; from larsbench.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules and 'textual' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)

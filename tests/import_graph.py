"""The package's import graph, read from its source with `ast` (the layer test's helper)."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Import:
    """One imported name: who imports it, where, and whether it runs at import time."""

    importer: str  # the importing module, dotted: "larsbench.tui.app"
    target: str  # the module imported, dotted; `from m import name` is m.name when a module
    line: int
    module_level: bool  # False inside a function (runs only when the function is called)
    type_checking: bool  # under `if TYPE_CHECKING:` (never runs)

    @property
    def at_import_time(self) -> bool:
        """Whether importing the importer runs this import."""
        return self.module_level and not self.type_checking


@dataclass(frozen=True)
class ImportGraph:
    """Every module of one package and every import statement in them."""

    package: str
    modules: dict[str, Path]  # dotted name -> file (packages: their __init__.py)
    imports: tuple[Import, ...]

    def internal(self, target: str) -> str | None:
        """The package's module a target names (itself or its nearest parent), else None."""
        name = target
        while name:
            if name in self.modules:
                return name
            name = name.rpartition(".")[0]
        return None

    def edges(self, *, runtime_only: bool = False) -> dict[str, set[str]]:
        """importer -> the package's modules it imports (runtime_only: at import time)."""
        out: dict[str, set[str]] = {name: set() for name in self.modules}
        for imp in self.imports:
            if runtime_only and not imp.at_import_time:
                continue
            target = self.internal(imp.target)
            if target is not None and target != imp.importer:
                out[imp.importer].add(target)
        return out

    def loaded_by(self, roots: Iterable[str]) -> set[str]:
        """The package's modules importing `roots` runs (import-time imports, transitively;
        a module's parent packages included, as Python runs their __init__ first)."""
        edges = self.edges(runtime_only=True)
        seen: set[str] = set()
        todo = list(roots)
        while todo:
            name = todo.pop()
            if name in seen or name not in self.modules:
                continue
            seen.add(name)
            todo.extend(edges[name])
            todo.extend(parents(name))
        return seen

    def cycles(self) -> list[list[str]]:
        """Strongly connected sets of more than one module over every import (type-checking
        and function-level ones included), each sorted; empty when the graph has no circle."""
        return [sorted(c) for c in _strongly_connected(self.edges()) if len(c) > 1]


def parents(name: str) -> Iterator[str]:
    """ "a.b.c" -> "a.b", "a"."""
    while "." in name:
        name = name.rpartition(".")[0]
        yield name


def in_area(name: str, prefixes: Iterable[str]) -> bool:
    """Whether a dotted name is one of the prefixes or inside one ("a.b" is in "a")."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def build_graph(source_root: Path, package: str) -> ImportGraph:
    """Parse every .py file of source_root/package (a folder of dotted modules)."""
    modules: dict[str, Path] = {}
    for path in sorted((source_root / package).rglob("*.py")):
        parts = list(path.relative_to(source_root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    imports: list[Import] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        imports.extend(_imports(tree, name, is_package, set(modules)))
    return ImportGraph(package, modules, tuple(imports))


def _imports(tree: ast.Module, importer: str, is_package: bool, known: set[str]) -> list[Import]:
    found: list[Import] = []

    def visit(node: ast.AST, module_level: bool, type_checking: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(importer, alias.name, node.lineno, module_level, type_checking))
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(node, importer, is_package)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                target = sub if sub in known else base
                found.append(Import(importer, target, node.lineno, module_level, type_checking))
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, module_level, True)
            for child in node.orelse:
                visit(child, module_level, type_checking)
            return
        inner = module_level and not isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
        )
        for child in ast.iter_child_nodes(node):
            visit(child, inner, type_checking)

    visit(tree, True, False)
    return found


def _from_base(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The module a `from X import ...` reads, relative imports resolved."""
    if not node.level:
        return node.module or ""
    here = importer.split(".")
    if not is_package:
        here = here[:-1]
    here = here[: len(here) - (node.level - 1)]
    return ".".join([*here, node.module] if node.module else here)


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the graph is small, but recursion depth is not ours)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                found.append(group)
    return found

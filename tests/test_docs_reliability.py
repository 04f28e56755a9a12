"""docs/reliability.md cannot drift: every test it cites exists, every promise cites one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
DOC = TESTS.parent / "docs" / "reliability.md"
CITED = re.compile(r"`(?:(test_\w+\.py)::)?(test_\w+)`")


def defined_tests() -> dict[str, set[str]]:
    """Test file name -> the test functions it defines (async ones included)."""
    out = {}
    for path in TESTS.glob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        out[path.name] = {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name.startswith("test_")
        }
    return out


def promise_rows(text: str) -> list[str]:
    """The table rows under the header `| promise | how | proved by |`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| promise |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_every_test_cited_in_reliability_md_exists() -> None:
    defined = defined_tests()
    everywhere = set().union(*defined.values())
    cited = CITED.findall(DOC.read_text(encoding="utf-8"))
    assert len(cited) >= 20, "the citations were not found: has the format changed?"
    missing = []
    for file, name in cited:
        if file and name not in defined.get(file, set()):
            missing.append(f"{file}::{name}")
        elif not file and name not in everywhere:
            missing.append(name)
    assert not missing, f"docs/reliability.md cites tests that do not exist: {missing}"


def test_every_promise_in_reliability_md_names_a_test() -> None:
    rows = promise_rows(DOC.read_text(encoding="utf-8"))
    assert len(rows) >= 15
    for row in rows:
        proved_by = row.rstrip(" |").rsplit(" | ", 1)[-1]
        assert CITED.search(proved_by) or proved_by.startswith("same test"), row

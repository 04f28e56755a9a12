"""docs/architecture.md's module table is the package: every module in it, none that is gone,
each on the floor the layer test places it."""

from __future__ import annotations

import re
from pathlib import Path

from test_import_contract import FLOORS, floor_of

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"


def table_rows() -> list[tuple[int, str]]:
    """(floor, path) of each module row, in the order the table gives them."""
    rows, floor = [], -1
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"\| \*\*(\d+) ", line)
        if heading:
            floor = int(heading.group(1))
        row = re.match(r"\| `([\w/]+\.py)` \|", line)
        if row:
            rows.append((floor, row.group(1)))
    return rows


def module_name(path: str) -> str:
    name = "larsbench." + path.removesuffix(".py").replace("/", ".")
    return name.removesuffix(".__init__") if name != "larsbench.__init__" else "larsbench"


def test_the_table_lists_every_module_once() -> None:
    listed = [path for _, path in table_rows()]
    on_disk = sorted(
        str(p.relative_to(ROOT / "larsbench")) for p in (ROOT / "larsbench").rglob("*.py")
    )
    assert sorted(listed) == on_disk
    assert len(listed) == len(set(listed))


def test_each_module_sits_under_its_floor() -> None:
    rows = table_rows()
    assert {floor for floor, _ in rows} <= set(range(len(FLOORS)))
    for floor, path in rows:
        assert floor == floor_of(module_name(path)), f"{path}: floor {floor_of(module_name(path))}"

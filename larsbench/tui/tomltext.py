"""TOML text for profile values and whole profiles (tomllib reads TOML; nothing here writes it)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def toml_value(value: Any) -> str:
    """One value as TOML: 1, 0.5, 1e-08, true, "text", [1, 2], { name = "larc" }."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(value)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = ", ".join(f"{toml_key(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def dump_profile(data: dict[str, Any], header: str = "") -> str:
    """A profile dict (top-level scalars, then one table per section, sweep last) as TOML."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict) and k != "sweep"}
    for key, value in scalars.items():
        lines.append(f"{toml_key(key)} = {toml_value(value)}")
    for name, table in [*tables.items(), *(("sweep", data["sweep"]),) * ("sweep" in data)]:
        if not table:
            continue
        lines += ["", f"[{toml_key(name)}]"]
        for key, value in table.items():
            lines.append(f"{toml_key(str(key))} = {toml_value(value)}")
    return "\n".join(lines) + "\n"

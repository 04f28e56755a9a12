"""`--set` overrides: KEY=VALUE items read as TOML and set on a raw profile for every run."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

from larsbench.profile.errors import ConfigError, ConfigProblem
from larsbench.profile.schema import SECTIONS, field_at


def parse_value(text: str) -> Any:
    """A `--set` value read as TOML (1, 0.5, true, [1, 2], {name="larc"}), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_override(item: str) -> tuple[str, Any]:
    """`section.key=value` -> (key, value); ConfigError when there is no `=` or no key."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        message = "expected KEY=VALUE, e.g. train.epochs=5"
        line = f"--set {item!r}: {message}"
        raise ConfigError.of(ConfigProblem(key.strip(), message, line))
    return key.strip(), parse_value(value.strip())


def _refuse(source: str, key: str, message: str) -> ConfigError:
    """`SOURCE KEY: MESSAGE` (an override names itself as `--set KEY`)."""
    return ConfigError.of(ConfigProblem(key, message, f"{source} {key}: {message}"))


def apply_overrides(
    data: dict[str, Any], overrides: list[tuple[str, Any]], source: str = "--set"
) -> dict[str, Any]:
    """A copy of the raw profile with each `section.key=value` set for every run.

    `sweep.<section.key>=[...]` replaces that sweep list; setting a swept key fixes it for
    every run, so it leaves the sweep.
    """
    out = copy.deepcopy(data)
    for key, value in overrides:
        if key.startswith("sweep."):
            swept = key.removeprefix("sweep.")
            if field_at(swept) is None:
                raise _refuse(source, key, f"{swept!r} names no setting")
            out.setdefault("sweep", {})[swept] = value if isinstance(value, list) else [value]
            continue
        parts = key.split(".")
        if key in ("name", "description"):
            out[key] = value
        elif len(parts) == 2 and parts[0] in SECTIONS:
            if field_at(key) is None:
                allowed = ", ".join(SECTIONS[parts[0]].model_fields)
                raise _refuse(source, key, f"unknown key; allowed in {parts[0]}: {allowed}")
            out.setdefault(parts[0], {})[parts[1]] = value
        else:
            raise _refuse(
                source, key, f"expected section.key with section one of {', '.join(SECTIONS)}"
            )
        _unsweep(out.get("sweep", {}), key)
    return out


def _unsweep(sweep: dict[str, Any], key: str) -> None:
    """A key set for every run leaves the sweep, also from swept section tables."""
    sweep.pop(key, None)
    section, _, name = key.partition(".")
    tables = sweep.get(section)
    if not name or not isinstance(tables, list):
        return
    kept: list[Any] = []
    for table in tables:
        if isinstance(table, dict):
            table = {k: v for k, v in table.items() if k != name}
        if table not in kept:
            kept.append(table)
    sweep[section] = kept

"""Profile files: the one reader of profile TOML (size, UTF-8, syntax and nesting checked)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from larsbench.profile.errors import ConfigError

PROFILE_MAX_BYTES = 1024 * 1024  # the largest shipped profile is under 4 KiB


def read_profile_file(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any]]:
    """A profile file's text and its TOML tables; ConfigError naming the file when it is not
    a readable UTF-8 TOML file of reasonable size."""
    path = Path(path)
    try:
        if path.is_dir():
            raise ConfigError(f"{path}: is a directory; give a profile .toml file")
        size = path.stat().st_size
        if size > PROFILE_MAX_BYTES:
            raise ConfigError(
                f"{path}: {size / 2**20:.1f} MiB is too large for a profile "
                f"(limit {PROFILE_MAX_BYTES // 2**20} MiB)"
            )
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the profile: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {err.start}: {data[err.start : err.start + 1]!r}); "
            "a profile is a UTF-8 TOML file"
        ) from None
    return text, profile_tables(text, path)


def profile_tables(text: str, source: str | os.PathLike[str]) -> dict[str, Any]:
    """A profile's text as TOML tables; ConfigError naming `source` when it is empty, not
    TOML, or nested too deeply."""
    if not text.strip():
        raise ConfigError(f'{source}: empty; a profile needs at least name = "..."')
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: not valid TOML: {err}") from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid TOML: nested too deeply") from None
    if _depth(raw) > PROFILE_MAX_DEPTH:
        raise ConfigError(
            f"{source}: tables nested more than {PROFILE_MAX_DEPTH} deep; a profile has "
            "sections (launch, model, data, train, optimizer, sweep) holding keys"
        )
    return raw


PROFILE_MAX_DEPTH = 8  # [sweep] optimizer = [{...}] is 3 deep


def _depth(value: Any) -> int:
    """How deep tables and arrays nest (iterative: a hostile file must not blow the stack)."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        item, level = todo.pop()
        deepest = max(deepest, level)
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        todo.extend((child, level + 1) for child in children)
    return deepest


def shipped_profiles_dir() -> Path:
    """The profiles that ship with larsbench: `profiles/` of the checkout it is installed
    from (`pip install -e .`, as the README says)."""
    return Path(__file__).resolve().parents[2] / "profiles"

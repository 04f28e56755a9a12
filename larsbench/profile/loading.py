"""Profile loading: a profile's tables validated into a Profile; errors name source and key path."""

from __future__ import annotations

import os
from typing import Any

from pydantic import ValidationError

from larsbench.profile.errors import ConfigError, ConfigProblem
from larsbench.profile.files import read_profile_file
from larsbench.profile.schema import (
    PROFILE_TABLES,
    SECTIONS,
    FieldError,
    Profile,
    ReferenceConfig,
    allowed_keys,
)

# Fields whose next key path part is a table key of the profile's (run id, swept key), not
# a union branch or a list index: reference.top1.RUN_ID, sweep.KEY.
_TABLE_FIELDS = {("reference", "top1"), ("sweep",)}


def _key_path(loc: tuple[Any, ...], err: object) -> str:
    """The profile key an error belongs to: pydantic's location without union branches or
    list indices (launch.nproc_per_node.int -> launch.nproc_per_node), and for a section's
    own check the field it names."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in {**SECTIONS, **PROFILE_TABLES}:
        keep = 3 if tuple(parts[:2]) in _TABLE_FIELDS else 2
    else:
        keep = 2 if tuple(parts[:1]) in _TABLE_FIELDS else 1
    key = ".".join(parts[:keep])
    if isinstance(err, FieldError) and len(parts) <= 1:
        key = ".".join([*parts, err.field])
    return key


def validation_problems(err: ValidationError, source: str) -> list[ConfigProblem]:
    """One problem per pydantic error: `SOURCE: KEY.PATH: message (got VALUE)`."""
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        key = _key_path(loc, (e.get("ctx") or {}).get("error"))
        if e["type"] == "extra_forbidden":
            message = f"unknown key; allowed keys here: {', '.join(allowed_keys(loc))}"
        else:
            got = e.get("input")
            shown = "" if isinstance(got, dict) or got is None else f" (got {got!r})"
            message = e["msg"].removeprefix("Value error, ") + shown
        problems.append(ConfigProblem(key, message, f"{source}: {where}: {message}"))
    return problems


def validation_error(err: ValidationError, source: str) -> ConfigError:
    """The ConfigError of a pydantic ValidationError: a line per problem."""
    return ConfigError.of(*validation_problems(err, source))


def parse_profile(data: dict[str, Any], source: str = "<profile>") -> Profile:
    """A profile's tables validated; ConfigError naming `source` and each bad key."""
    try:
        return Profile.model_validate(data)
    except ValidationError as err:
        raise validation_error(err, source) from None


def load_profile(path: str | os.PathLike[str]) -> Profile:
    """Read and validate a profile; errors name the file and the key path."""
    _text, data = read_profile_file(path)
    return parse_profile(data, str(path))


def check_reference_ids(reference: ReferenceConfig, run_ids: list[str], source: str) -> None:
    """A reference top-1 for a run id the sweep does not have is an error naming the key."""
    unknown = [key for key in reference.top1 if key not in run_ids]
    if unknown:
        raise ConfigError.at(
            source,
            f"reference.top1.{unknown[0]}",
            f"no run of the sweep has this id; run ids: {', '.join(run_ids)}",
        )

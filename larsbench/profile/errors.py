"""ConfigError: a profile, override or run that cannot be used, with each problem's key."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong: the dotted key it belongs to ("" for none), what is wrong with it, and
    the whole line that says so (source and key included), as the error's text has it."""

    key: str
    message: str
    line: str


class ConfigError(ValueError):
    """A profile, override or run configuration that cannot be used; the message says why,
    `problems` says it per key (the configure form marks the field of each)."""

    def __init__(self, text: str, problems: Iterable[ConfigProblem] = ()) -> None:
        super().__init__(text)
        self.problems: tuple[ConfigProblem, ...] = tuple(problems) or (
            ConfigProblem("", text, text),
        )

    @classmethod
    def of(cls, *problems: ConfigProblem) -> ConfigError:
        """The error whose text is its problems' lines."""
        return cls("\n".join(p.line for p in problems), problems)

    @classmethod
    def at(cls, source: str, key: str, message: str) -> ConfigError:
        """`SOURCE: KEY: MESSAGE`, one problem of `key`."""
        return cls.of(ConfigProblem(key, message, f"{source}: {key}: {message}"))

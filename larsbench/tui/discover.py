"""Finds what the start screen lists: profiles in profiles/ folders and recent sweep folders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import larsbench
from larsbench.profile.errors import ConfigError
from larsbench.profile.files import read_profile_file
from larsbench.rundir import FINAL_STATES, RUNNING, SweepPaths, is_sweep_dir, read_json
from larsbench.runner_file import read_runner

RECENT_LIMIT = 20


def default_profiles_dirs() -> list[Path]:
    """./profiles, then the repository's profiles/ (when larsbench runs from a checkout)."""
    here = Path.cwd() / "profiles"
    repo = Path(larsbench.__file__).resolve().parent.parent / "profiles"
    dirs = [here]
    if repo.resolve() != here.resolve():
        dirs.append(repo)
    return dirs


@dataclass(frozen=True)
class ProfileEntry:
    """A profile file: its name and description as written, or why it cannot be read."""

    path: Path
    name: str
    description: str = ""
    error: str = ""


@dataclass(frozen=True)
class SweepEntry:
    """A sweep folder under runs/: its name and how far it got."""

    path: Path
    name: str
    state: str  # running | finished | stopped | failed | ""
    done: int
    total: int

    @property
    def label(self) -> str:
        if self.state == RUNNING:
            return f"running {self.done}/{self.total}"
        if self.state == "finished":
            return f"done {self.done}/{self.total}"
        if self.state:
            return f"{self.state} {self.done}/{self.total}"
        return f"{self.done}/{self.total}"


def find_profiles(dirs: list[Path]) -> list[ProfileEntry]:
    """Every *.toml in the folders, first folder wins on a repeated file name."""
    seen: set[str] = set()
    out = []
    for d in dirs:
        if not d.is_dir():
            continue
        for path in sorted(d.glob("*.toml")):
            if path.name in seen:
                continue
            seen.add(path.name)
            try:
                _text, data = read_profile_file(path)
                out.append(
                    ProfileEntry(
                        path,
                        str(data.get("name") or path.stem),
                        str(data.get("description") or ""),
                    )
                )
            except ConfigError as err:
                out.append(ProfileEntry(path, path.stem, error=str(err)))
    return out


def sweep_entry(path: Path) -> SweepEntry:
    sweep = SweepPaths(path)
    state = read_runner(sweep).state
    ids = sweep.run_ids()
    done = sum(1 for r in ids if sweep.run(r).read_status().get("state") in FINAL_STATES)
    meta = read_json(sweep.sweep)
    name = str(meta.get("name") or path.name) if isinstance(meta, dict) else path.name
    return SweepEntry(path, name, state, done, len(ids))


def find_sweeps(runs_dir: Path, limit: int = RECENT_LIMIT) -> list[SweepEntry]:
    """Sweep folders directly under runs_dir, newest first."""
    if not runs_dir.is_dir():
        return []
    dirs = [p for p in runs_dir.iterdir() if p.is_dir() and is_sweep_dir(p)]
    dirs.sort(key=lambda p: (p / "sweep.json").stat().st_mtime, reverse=True)
    return [sweep_entry(p) for p in dirs[:limit]]

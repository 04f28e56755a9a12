"""An ImageFolder tree's file list, scanned once and cached in the sweep folder.

The list (class names and (path, label) pairs) is what torchvision's ImageFolder builds:
classes are the sorted sub-folder names; files are walked in sorted order (links followed)
and kept when their suffix is an image suffix. On ImageNet that is 1.28 M files, which every
rank of every run used to walk again. Here preflight scans once, writes
SWEEP/filelists/<hash>.json, and every rank of every run of the sweep reads it.

The cache is valid while every folder it saw keeps its modification time (adding, removing
or renaming a file changes its folder's mtime; a new class folder changes the root's).
Stdlib only: the CLI's preflight uses it without importing torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

# torchvision.datasets.folder.IMG_EXTENSIONS (matched case-insensitively, as there).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
FORMAT = 1


@dataclass(frozen=True)
class FileList:
    """One ImageFolder split: its classes in label order and its (path, label) pairs."""

    root: str
    classes: tuple[str, ...]
    samples: tuple[tuple[str, int], ...]
    folders: dict[str, int]  # folder path relative to root ("" for root) -> st_mtime_ns

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def paths(self) -> list[str]:
        return [p for p, _ in self.samples]

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.samples]


def scan(root: Path) -> FileList:
    """Walks `root` as ImageFolder does; raises FileNotFoundError when a split has no class
    folder, as ImageFolder does."""
    root = Path(root).resolve()
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    if not classes:
        raise FileNotFoundError(f"{root}: no class folders (ImageFolder wants root/CLASS/IMAGE)")
    folders = {"": root.stat().st_mtime_ns}
    samples: list[tuple[str, int]] = []
    for label, name in enumerate(classes):
        for dirpath, _dirs, files in sorted(os.walk(root / name, followlinks=True)):
            folders[os.path.relpath(dirpath, root)] = os.stat(dirpath).st_mtime_ns
            for fname in sorted(files):
                if fname.lower().endswith(IMAGE_SUFFIXES):
                    samples.append((os.path.join(dirpath, fname), label))
    return FileList(str(root), tuple(classes), tuple(samples), folders)


def cache_path(cache_dir: Path, root: Path) -> Path:
    key = hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"{key}.json"


def is_current(files: FileList) -> bool:
    """True while every folder the list saw has the same mtime (none removed)."""
    root = Path(files.root)
    for rel, mtime in files.folders.items():
        try:
            if os.stat(root / rel).st_mtime_ns != mtime:
                return False
        except OSError:
            return False
    return True


def _read(path: Path, root: Path) -> FileList | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("root") != str(root):
            return None
        samples = tuple((p, int(label)) for p, label in data["samples"])
        return FileList(str(root), tuple(data["classes"]), samples, dict(data["folders"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


_MEMO: dict[str, FileList] = {}  # this process's lists: preflight, the plan table, the check


def file_list(root: Path, cache_dir: Path | None = None) -> FileList:
    """The file list of one split (e.g. DATA/train): from this process's memo or cache_dir
    when current there, else scanned (and written to cache_dir when it is given)."""
    root = Path(root).resolve()
    memo = _MEMO.get(str(root))
    if memo is not None and is_current(memo):
        if cache_dir is not None and not cache_path(cache_dir, root).is_file():
            _store(cache_path(cache_dir, root), memo)
        return memo
    if cache_dir is not None:
        cached = _read(cache_path(cache_dir, root), root)
        if cached is not None and is_current(cached):
            _MEMO[str(root)] = cached
            return cached
    files = scan(root)
    _MEMO[str(root)] = files
    if cache_dir is not None:
        _store(cache_path(cache_dir, root), files)
    return files


def _store(path: Path, files: FileList) -> None:
    payload = {
        "format": FORMAT,
        "root": files.root,
        "classes": list(files.classes),
        "folders": files.folders,
        "samples": [list(s) for s in files.samples],
    }
    # A read-only sweep folder: the scan is still right, only not shared.
    with contextlib.suppress(OSError):
        _write_compact(path, payload)


def _write_compact(path: Path, payload: dict) -> None:
    """Atomic (a rank reads the old list or the new one) and compact: ImageNet's is ~100 MB
    indented, ~60 MB not."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""The ImageFolder file list: ImageFolder's classes and labels, scanned once per sweep and
cached in the sweep folder, rebuilt when a folder of the tree changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from larsbench import filelist
from larsbench.filelist import cache_path, file_list, scan
from larsbench.plan.sizes import dataset_sizes
from larsbench.profile.schema import DataConfig

FILES = [
    "n02/b.JPEG",
    "n01/a.jpg",
    "n01/z.png",
    "n10/nested/d.webp",
    "n10/c.jpeg",
    "n10/notes.txt",  # not an image
    "n03-empty-but-a-class/.keep",
]


def make_tree(root: Path) -> Path:
    for name in FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")  # listing never opens an image
    return root


@pytest.fixture(autouse=True)
def no_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without this process's memo of earlier scans."""
    monkeypatch.setattr(filelist, "_MEMO", {})


def test_the_list_is_imagefolders(tmp_path: Path) -> None:
    from torchvision.datasets import ImageFolder

    root = make_tree(tmp_path / "train")
    ours = scan(root)
    theirs = ImageFolder(str(root), allow_empty=True)
    assert list(ours.classes) == theirs.classes
    assert [(os.path.realpath(p), c) for p, c in ours.samples] == [
        (os.path.realpath(p), c) for p, c in theirs.samples
    ]
    assert len(ours) == 5


def test_the_cached_list_is_reused_then_rebuilt_after_a_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_tree(tmp_path / "data" / "train")
    for folder in (root, root / "n02"):  # an old mtime: a change shows on any clock tick
        os.utime(folder, ns=(10**18, 10**18))
    cache = tmp_path / "sweep" / "filelists"
    first = file_list(root, cache)
    assert cache_path(cache, root).is_file()

    scans: list[Path] = []
    real_scan = filelist.scan

    def counting_scan(r: Path) -> filelist.FileList:
        scans.append(r)
        return real_scan(r)

    monkeypatch.setattr(filelist, "scan", counting_scan)
    monkeypatch.setattr(filelist, "_MEMO", {})  # another process: a rank, a later run
    again = file_list(root, cache)
    assert scans == [] and again.samples == first.samples and again.classes == first.classes

    (root / "n02" / "new.jpg").write_bytes(b"")  # the folder's mtime moves
    monkeypatch.setattr(filelist, "_MEMO", {})
    changed = file_list(root, cache)
    assert len(scans) == 1 and len(changed) == len(first) + 1

    monkeypatch.setattr(filelist, "_MEMO", {})
    assert len(file_list(root, cache)) == len(first) + 1 and len(scans) == 1  # rewritten

    (root / "n04").mkdir()  # a new class: the root's mtime moves
    (root / "n04" / "e.jpg").write_bytes(b"")
    monkeypatch.setattr(filelist, "_MEMO", {})
    assert "n04" in file_list(root, cache).classes and len(scans) == 2


def test_a_changed_nested_folder_invalidates_the_list(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "train")
    cache = tmp_path / "cache"
    file_list(root, cache)
    os.utime(root / "n10" / "nested", ns=(0, 0))
    assert not filelist.is_current(filelist._read(cache_path(cache, root), root.resolve()))


def test_dataset_sizes_writes_the_list_the_ranks_read(tmp_path: Path) -> None:
    make_tree(tmp_path / "data" / "train")
    make_tree(tmp_path / "data" / "val")
    cache = tmp_path / "sweep" / "filelists"
    data = DataConfig(source="imagefolder", path=str(tmp_path / "data"))
    assert dataset_sizes(data, cache) == (5, 5)
    assert sorted(p.suffix for p in cache.iterdir()) == [".json", ".json"]


def test_an_unreadable_cache_is_rebuilt(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "train")
    cache = tmp_path / "cache"
    cache.mkdir()
    cache_path(cache, root).write_text("{not json")
    assert len(file_list(root, cache)) == 5
    assert filelist._read(cache_path(cache, root), root.resolve()) is not None

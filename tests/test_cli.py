"""The command line's usage errors: clear messages, exit code 2, nothing launched."""

from __future__ import annotations

from pathlib import Path

import pytest

from larsbench.cli import main
from larsbench.cli.output import EXIT_USAGE


def test_an_out_dir_that_cannot_be_written_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["run", "--out", str(blocker / "sweep")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"--out {blocker / 'sweep'}: cannot write there" in err


def test_sample_interval_has_a_floor(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--sample-interval", "0.1", "--dry-run"]) == EXIT_USAGE
    assert "floor is 0.25 s" in capsys.readouterr().err


def test_report_needs_a_sweep_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == EXIT_USAGE
    assert "not a sweep directory (no sweep.json)" in capsys.readouterr().err


def test_watch_needs_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watch", str(tmp_path / "missing")]) == EXIT_USAGE
    assert "no such directory" in capsys.readouterr().err


def test_bad_set_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--set", "train.epochs", "--dry-run"]) == EXIT_USAGE
    assert "expected KEY=VALUE" in capsys.readouterr().err

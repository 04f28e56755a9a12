"""The configure screen shows the feed check of an ImageFolder profile, from a thread."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_helpers import MACHINE, screen_text, sync, wait_until

from larsbench import feed
from larsbench.tui.app import make_app


@sync
async def test_the_configure_screen_shows_the_feed_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data" / "train" / "a").mkdir(parents=True)
    (tmp_path / "data" / "val" / "a").mkdir(parents=True)
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "jp.toml").write_text(
        'name = "jp"\n[launch]\ndevice = "cpu"\nnproc_per_node = 2\n'
        f'[data]\nsource = "imagefolder"\npath = "{tmp_path / "data"}"\nworkers = 4\n'
        "[train]\nbatch_size = 8\n"
    )
    asked: list[str] = []

    def fake_check(run, sweep_dir, throughput_dir):  # type: ignore[no-untyped-def]
        asked.append(run.run_id)  # the timing itself: tests/test_feed.py
        return feed.feed_verdict(feed.loader_label(run), 150.0, 8, 0, None, "off", 2400.0, "t")

    monkeypatch.setattr(feed, "check_feed_apart", fake_check)
    app = make_app(profiles_dirs=[profiles], runs_dir=tmp_path / "runs", machine=MACHINE)
    async with app.run_test(size=(120, 50)) as pilot:
        await wait_until(pilot, lambda: "decode about 1,200 img/s" in screen_text(app))
        text = " ".join(screen_text(app).split())
        assert "input-bound by about 2.0x" in text
        assert asked == ["bs8-sgd"]

"""The data check: the data path and its class count, and the feed check's decode rate."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from larsbench.doctor.verdict import FAIL, OK, WARN, Verdict
from larsbench.plan.run import RunConfig

DIGITS_CLASSES = 10
FEED_FAIL_BELOW = 0.5  # supply / demand below this: the GPUs would wait most of each step


class FeedLike(Protocol):
    """The fields of larsbench.feed.FeedCheck that the verdict reads."""

    loader: str
    supply_images_per_sec: float
    demand_images_per_sec: float | None
    sentence: str

    @property
    def ok(self) -> bool: ...


def class_count(run: RunConfig) -> int | None:
    """Classes the run will train on; None when an ImageFolder's train/ or val/ is missing or
    their class folders differ."""
    data = run.data
    if data.source == "digits":
        return DIGITS_CLASSES
    if data.source == "synthetic":
        return data.num_classes
    root = Path(data.path)
    try:
        train = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
        val = sorted(p.name for p in (root / "val").iterdir() if p.is_dir())
    except OSError:
        return None
    return len(train) if train and train == val else None


def judge_data(source: str, path: str, classes: int | None) -> Verdict:
    """Whether the data the profile names are here, and how many classes they hold."""
    if source != "imagefolder":
        return Verdict("data", f"{source}: {classes} classes (in memory)", "readable", OK)
    if classes is None:
        return Verdict(
            "data",
            f"{path or '(data.path empty)'}: no train/ and val/ with the same class folders",
            "an ImageFolder root",
            FAIL,
            "set data.path to a folder holding train/CLASS/*.JPEG and val/CLASS/*.JPEG with "
            "the same class folders (ImageNet's val/ must be sorted into class folders first)",
        )
    return Verdict("data", f"{path}: {classes} classes", "an ImageFolder root", OK)


def judge_feed(feed: FeedLike | None, note: str, source: str = "imagefolder") -> Verdict:
    """The decode rate against what the GPUs will ask for, from the feed check; `note` says
    why there is no FeedCheck. Data held in memory (digits, synthetic) has nothing to decode."""
    check = "data feed"
    if source != "imagefolder":
        return Verdict(check, f"{source}: in memory, nothing to decode", "no decode", OK)
    if feed is None:
        return Verdict(
            check,
            note,
            "decode rate >= the GPUs' demand",
            WARN,
            "the input pipeline was not timed: run benchmarks/data_pipeline.py on this node "
            "before a long run",
        )
    demand = feed.demand_images_per_sec
    measured = f"{feed.loader}: {feed.supply_images_per_sec:,.0f} img/s"
    expected = f">= {demand:,.0f} img/s (demand)" if demand else "no demand figure"
    figures = {"supply": feed.supply_images_per_sec, "demand": demand}
    if feed.ok:
        return Verdict(check, measured, expected, OK, figures=figures)
    ratio = feed.supply_images_per_sec / demand if demand else 0.0
    status = WARN if ratio >= FEED_FAIL_BELOW else FAIL
    return Verdict(check, measured, expected, status, feed.sentence, figures)


def measure_feed(run: RunConfig) -> tuple[Any | None, str]:
    """(FeedCheck, "") from larsbench.feed's check, timed in a subprocess so that torch and
    DALI stay out of the doctor's process; (None, why) when it could not run or the data is
    held in memory."""
    if run.data.source != "imagefolder":
        return None, f"data.source {run.data.source}: nothing to decode"
    from larsbench.feed import check_feed_apart

    feed = check_feed_apart(run, None, None)
    return (None, feed) if isinstance(feed, str) else (feed, "")

"""The feed check: supply (a decode rate x cores) against demand (a throughput run, or the
published per-GPU figures), and the sentence that says it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from larsbench.feed import (
    FeedCheck,
    check_feed,
    check_feed_apart,
    feed_markdown,
    feed_verdict,
    gpu_decoder_absent,
    loader_cores,
    throughput_demand,
)
from larsbench.gpu_reference import reference_speed
from larsbench.plan.expand import expand
from larsbench.plan.machine import Machine
from larsbench.profile.loading import parse_profile

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")


def test_pil_on_64_cores_cannot_feed_8_a100s() -> None:
    check = feed_verdict("torch/pil", 150.0, 64, 8, "NVIDIA A100-SXM4-80GB", "fp16")
    ref = reference_speed("NVIDIA A100-SXM4-80GB", "fp16")
    assert ref is not None
    assert check.supply_images_per_sec == pytest.approx(9600)
    assert check.demand_images_per_sec == pytest.approx(8 * ref.per_gpu_at_8)
    assert check.bound_ratio == pytest.approx(8 * ref.per_gpu_at_8 / 9600)
    assert not check.ok
    assert check.sentence == (
        "this host can decode about 9,600 img/s with PIL (64 cores); 8 x A100 at about 2,100 "
        "img/s need 17,000: the runs will be input-bound by about 1.7x. "
        'Use data.loader = "dali".'
    )
    assert ref.source in check.demand_source


def test_enough_cores_keep_up() -> None:
    check = feed_verdict("torch/torchvision", 400.0, 128, 8, "Tesla V100-SXM2-16GB", "off")
    assert check.ok and check.bound_ratio is not None and check.bound_ratio < 1
    assert check.sentence.endswith("the loaders keep up (17.9x headroom).")


def test_a_throughput_run_is_the_demand_when_there_is_one() -> None:
    check = feed_verdict(
        "dali/cpu",
        300.0,
        10,
        0,
        None,
        "off",
        demand_images_per_sec=6000.0,
        demand_source="throughput run bs256-sgd",
    )
    assert check.bound_ratio == pytest.approx(2.0)
    assert check.demand_source == "throughput run bs256-sgd"
    assert "input-bound by about 2.0x" in check.sentence


def test_the_mixed_decoder_scales_with_the_gpus() -> None:
    check = feed_verdict("dali/mixed", 5000.0, 16, 8, "NVIDIA A100 80GB PCIe", "fp16")
    assert check.supply_images_per_sec == pytest.approx(40000)
    assert check.ok and "GPU decoder (nvJPEG)" in check.sentence


def test_an_unknown_gpu_leaves_the_demand_unknown() -> None:
    check = feed_verdict("torch/pil", 150.0, 64, 8, "NVIDIA H200", "bf16")
    assert check.demand_images_per_sec is None and check.bound_ratio is None
    assert check.demand_source == "unknown" and check.ok
    assert "no published figure for H200" in check.sentence
    unnamed = feed_verdict("torch/pil", 150.0, 64, 8, None, "fp16")  # a cuda run, no GPU here
    assert unnamed.demand_images_per_sec is None
    assert "no GPU visible here" in unnamed.sentence and "GPU with amp" not in unnamed.sentence


def run_for(root: Path, **data: object):
    profile = parse_profile(
        {
            "name": "t",
            "launch": {"nproc_per_node": 2, "device": "cpu"},
            "data": {"source": "imagefolder", "path": str(root), "image_size": 32, **data},
            "train": {"batch_size": 8},
        }
    )
    return expand(profile, Machine(gpus=0, cpus=2))[0]


def write_jpegs(root: Path, n: int = 8) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for i in range(n):
            folder = root / split / f"c{i % 2}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 255, (75, 100, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=85)


def test_the_loaders_get_no_more_cores_than_they_start(tmp_path: Path) -> None:
    assert loader_cores(run_for(tmp_path, workers=1), available=64) == 2  # 2 ranks x 1
    assert loader_cores(run_for(tmp_path, workers=8), available=6) == 6


@pytest.mark.parametrize("decoder", ["pil", "torchvision"])
def test_check_feed_times_the_real_files(tmp_path: Path, decoder: str) -> None:
    write_jpegs(tmp_path)
    run = run_for(tmp_path, decoder=decoder, workers=1)
    check = check_feed(run, sample=4, sweep_dir=tmp_path / "sweep")
    assert isinstance(check, FeedCheck)
    assert check.loader == f"torch/{decoder}" and check.cores == 2
    assert check.per_core_images_per_sec > 0
    assert check.supply_images_per_sec == pytest.approx(2 * check.per_core_images_per_sec)
    assert check.demand_source == "unknown"  # a CPU run without a throughput run
    assert (tmp_path / "sweep" / "filelists").is_dir()


def test_the_gpu_decoder_is_not_timed_where_no_gpu_is_visible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cuda profile with the dali loader, dry-run on a node without GPUs (a login node):
    a plain reason instead of CUDA's "Found no NVIDIA driver" from the timing subprocess."""
    write_jpegs(tmp_path)
    gpu_run = run_for(tmp_path, loader="dali", workers=1)
    gpu_run = replace(gpu_run, device="cuda")
    monkeypatch.setattr("larsbench.telemetry.nvml.visible_gpu_count", lambda: 0)
    reason = check_feed_apart(gpu_run, None, None)
    assert isinstance(reason, str) and reason.startswith("not timed here")
    assert 'data.loader = "dali"' in reason and "no GPU is visible" in reason
    assert gpu_decoder_absent(gpu_run, visible_gpus=8) is None  # the GPU node times it
    cpu_run = run_for(tmp_path, loader="dali", workers=1)  # DALI's CPU operators: timed here
    assert gpu_decoder_absent(cpu_run, visible_gpus=0) is None
    assert gpu_decoder_absent(replace(gpu_run, data=run_for(tmp_path).data), 0) is None


def test_a_throughput_run_of_the_same_profile_gives_the_demand(tmp_path: Path) -> None:
    run = run_for(tmp_path)
    events = tmp_path / "tp" / "bs8-sgd" / "events" / "rank0.jsonl"
    events.parent.mkdir(parents=True)
    lines = [
        {"kind": "run_start", "global_batch": 8, "world_size": 2, "config": run.to_dict()},
        {"kind": "throughput", "images_per_sec": 1234.0},
    ]
    events.write_text("".join(json.dumps(e) + "\n" for e in lines))
    assert throughput_demand(tmp_path / "tp", run) == (1234.0, "throughput run bs8-sgd")
    other = replace(run, train=run.train.model_copy(update={"batch_size": 16}))
    assert throughput_demand(tmp_path / "tp", other) is None


def test_the_verdicts_go_into_summary_md(tmp_path: Path) -> None:
    (tmp_path / "feed.json").write_text(
        json.dumps([{"runs": ["a", "b"], "sentence": "this host can decode ...", "ok": False}])
    )
    text = feed_markdown(tmp_path)
    assert "## Feed check" in text and "- a, b: this host can decode ..." in text
    assert feed_markdown(tmp_path / "none") == ""

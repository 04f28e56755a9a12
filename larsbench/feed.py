"""The feed check: can this host's input pipeline keep the GPUs busy?

Supply: the decode-and-crop rate of one core, timed on a sample of the run's real training
files for the chosen loader, times the cores the loaders get (for DALI's `mixed` decoder,
the GPU decoder's rate per GPU times the GPUs). Demand: what the GPUs will ask for, from a
throughput run of the same profile when one exists, otherwise from DeepLearningExamples'
published ResNet50 figures (larsbench/gpu_reference.py). The verdict is one sentence.

`feed_verdict` is pure arithmetic; `check_feed` times the decode (it imports torch and DALI
inside, so the CLI can import this module at start-up).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from larsbench.events import iter_kind, read_events
from larsbench.format import two_figures
from larsbench.gpu_reference import reference_speed

if TYPE_CHECKING:
    from larsbench.plan.run import RunConfig

LOADER_NAMES = {
    "torch/pil": "PIL",
    "torch/torchvision": "decode_jpeg",
    "dali/cpu": "DALI's CPU decoder",
    "dali/mixed": "DALI's GPU decoder (nvJPEG)",
}


@dataclass(frozen=True)
class FeedCheck:
    loader: str  # "torch/pil", "torch/torchvision", "dali/cpu", "dali/mixed"
    per_core_images_per_sec: float  # measured decode+crop rate of one core (mixed: one GPU)
    cores: int  # cores available to the loaders
    supply_images_per_sec: float  # per_core x cores (or the mixed decoder's rate x GPUs)
    demand_images_per_sec: float | None  # what the GPUs will ask for; None when unknown
    demand_source: str  # "throughput run RUN_ID" or the cited table, or "unknown"
    bound_ratio: float | None  # demand / supply (>1: input-bound by that factor)
    sentence: str  # the one plain sentence

    @property
    def ok(self) -> bool:
        """Not input-bound: the demand is unknown or the supply covers it."""
        return self.bound_ratio is None or self.bound_ratio <= 1


def feed_verdict(
    loader: str,
    per_core_images_per_sec: float,
    cores: int,
    gpus: int,
    gpu_name: str | None,
    amp: str,
    demand_images_per_sec: float | None = None,
    demand_source: str = "",
) -> FeedCheck:
    """The verdict from a measured rate: supply vs demand, and the sentence that says it."""
    name = LOADER_NAMES.get(loader, loader)
    if loader == "dali/mixed":
        supply = per_core_images_per_sec * max(gpus, 1)
        supply_text = f"this host can decode about {two_figures(supply)} img/s with {name}"
    else:
        supply = per_core_images_per_sec * max(cores, 1)
        supply_text = (
            f"this host can decode about {two_figures(supply)} img/s with {name} ({cores} cores)"
        )
    gpu_label = _gpu_label(gpu_name)
    if demand_images_per_sec is None and gpus > 0 and gpu_name:
        ref = reference_speed(gpu_name, amp)
        if ref is not None:
            demand_images_per_sec = ref.per_gpu_at_8 * gpus
            demand_source = f"{ref.source}: {ref.gpu}, {ref.precision}"
    if demand_images_per_sec is None:
        if gpus == 0:
            why = "no GPU and no throughput run"
        elif not gpu_name:
            why = "no GPU visible here to look its published speed up"
        else:
            why = f"no published figure for {gpu_label} with amp {amp!r}"
        sentence = (
            f"{supply_text}; the demand is unknown ({why}): "
            "run `larsbench run --throughput` on this profile to measure it."
        )
        return FeedCheck(
            loader, per_core_images_per_sec, cores, supply, None, "unknown", None, sentence
        )
    ratio = demand_images_per_sec / supply if supply > 0 else float("inf")
    per_gpu = demand_images_per_sec / max(gpus, 1)
    need = (
        f"{gpus} x {gpu_label} at about {two_figures(per_gpu)} img/s "
        f"need {two_figures(demand_images_per_sec)}"
        if gpus > 0
        else f"the ranks need about {two_figures(demand_images_per_sec)} img/s"
    )
    if ratio > 1:
        verdict = f"the runs will be input-bound by about {ratio:.1f}x."
        if loader.startswith("torch/"):
            verdict += ' Use data.loader = "dali".'
        elif loader == "dali/cpu" and gpus > 0:
            verdict += ' Use launch.device = "cuda": DALI then decodes on the GPU.'
    else:
        verdict = f"the loaders keep up ({1 / ratio:.1f}x headroom)."
    return FeedCheck(
        loader,
        per_core_images_per_sec,
        cores,
        supply,
        demand_images_per_sec,
        demand_source,
        ratio,
        f"{supply_text}; {need}: {verdict}",
    )


def _gpu_label(gpu_name: str | None) -> str:
    """ "NVIDIA A100-SXM4-80GB" -> "A100"; unknown names as given."""
    if not gpu_name:
        return "GPU"
    for family in ("A100", "V100", "H100", "H200", "B200", "L40S", "A10", "T4"):
        if family in gpu_name.upper():
            return family
    return gpu_name


def loader_label(run: RunConfig) -> str:
    """The FeedCheck.loader of a run: which decoder its training set goes through."""
    if run.data.loader == "dali":
        return "dali/mixed" if run.device == "cuda" else "dali/cpu"
    return f"torch/{run.data.decoder}"


def loader_cores(run: RunConfig, available: int | None = None) -> int:
    """Cores the loaders of one node get: the node's cores, but no more than the loader
    processes (torch) or threads (DALI) that the ranks of the node start."""
    if available is None:
        available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    return max(1, min(available, run.nproc_per_node * max(run.data.workers, 1)))


def throughput_demand(throughput_dir: Path, run: RunConfig) -> tuple[float, str] | None:
    """Img/s a throughput run of the same profile measured at this run's global batch and
    world size: (img/s, "throughput run RUN_ID"), or None when there is none."""
    if not throughput_dir.is_dir():
        return None
    for events in sorted(throughput_dir.glob("*/events/rank0.jsonl")):
        found = read_events(events)  # the one reader; damaged lines are skipped there
        start = next(reversed(list(iter_kind(found, "run_start"))), None)
        measured = next(reversed(list(iter_kind(found, "throughput"))), None)
        if start is None or measured is None:
            continue
        if (
            start.get("global_batch") == run.train.batch_size
            and start.get("world_size") == run.world_size
            and start.get("config", {}).get("model", {}).get("arch") == run.model.arch
        ):
            ips = measured.get("images_per_sec")
            if isinstance(ips, int | float) and ips > 0:
                return float(ips) / run.launch.nnodes, f"throughput run {events.parent.parent.name}"
    return None


def sample_files(paths: list[str], sample: int) -> list[str]:
    """`sample` files spread evenly over the list (every class, not the first folder)."""
    if len(paths) <= sample:
        return list(paths)
    step = len(paths) / sample
    return [paths[int(i * step)] for i in range(sample)]


def _time_per_image(decode_batch, files: list[str], repeats: int = 2) -> float:
    """Seconds per image of the best of `repeats` timed passes after one warm-up pass."""
    decode_batch(files[: max(1, len(files) // 4)])  # warms the page cache and the code
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        decode_batch(files)
        best = min(best, time.perf_counter() - started)
    return best / len(files)


def check_feed(
    run: RunConfig,
    sample: int = 32,
    sweep_dir: Path | None = None,
    throughput_dir: Path | None = None,
) -> FeedCheck:
    """Times the decode-and-crop of `sample` of the run's training files on this host (one
    thread), for the run's loader, and returns the verdict against the GPUs' demand."""
    from larsbench.filelist import file_list

    if run.data.source != "imagefolder":
        raise ValueError(
            f"data.source {run.data.source!r}: the feed check times an ImageFolder's files"
        )
    cache = sweep_dir / "filelists" if sweep_dir is not None else None
    files = sample_files(file_list(Path(run.data.path) / "train", cache).paths, sample)
    label = loader_label(run)
    if label.startswith("dali/"):
        from larsbench.train.dali import decode_rate

        per_image = 1.0 / decode_rate(run, files)
    else:
        import torch

        from larsbench.train.data import train_transform

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            transform, load = train_transform(run.data)
            per_image = _time_per_image(lambda fs: [transform(load(f)) for f in fs], files)
        finally:
            torch.set_num_threads(threads)
    gpus, gpu_name = _gpus(run)
    demand = throughput_demand(throughput_dir, run) if throughput_dir is not None else None
    ips, source = demand if demand is not None else (None, "")
    return feed_verdict(
        label,
        1.0 / per_image,
        loader_cores(run),
        gpus,
        gpu_name,
        run.train.amp,
        ips,
        source,
    )


def _gpus(run: RunConfig) -> tuple[int, str | None]:
    """(GPUs of this node the run uses, their name from NVML), (0, None) on CPU."""
    if run.device != "cuda":
        return 0, None
    from larsbench.telemetry import nvml

    devices = nvml.visible_devices()
    name = None
    if devices:
        name = nvml.call(
            lambda nv: nvml.as_text(nv.nvmlDeviceGetName(nv.nvmlDeviceGetHandleByIndex(devices[0])))
        )
    return run.nproc_per_node, name


def feed_file(sweep_dir: Path) -> Path:
    """SWEEP/feed.json: the verdicts `larsbench run` printed, for summary.md."""
    return Path(sweep_dir) / "feed.json"


def feed_markdown(sweep_dir: Path) -> str:
    """summary.md's section with the verdicts of SWEEP/feed.json; "" when there are none."""
    try:
        verdicts = json.loads(feed_file(sweep_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    bullets = [
        f"- {', '.join(v.get('runs', []))}: {v['sentence']}"
        for v in (verdicts if isinstance(verdicts, list) else [])
        if isinstance(v, dict) and "sentence" in v
    ]
    if not bullets:
        return ""
    lines = [
        "## Feed check (before launch)",
        "",
        "Predicted by `larsbench run` from a timed decode of the training files on this host; "
        "the `input bound` column above is what the runs measured.",
        "",
        *bullets,
    ]
    return "\n".join([*lines, "", ""])


def feed_key(run: RunConfig) -> tuple[object, ...]:
    """Runs with the same key get the same verdict (one check per distinct key)."""
    d = run.data
    return (loader_label(run), d.path, d.image_size, d.workers, run.nproc_per_node, run.train.amp)


def gpu_decoder_absent(run: RunConfig, visible_gpus: int | None = None) -> str | None:
    """Why the run's decoder cannot be timed on this host: DALI's `mixed` decoder with no GPU
    visible (a dry run on a cluster's login node); None when it can."""
    if loader_label(run) != "dali/mixed":
        return None
    if visible_gpus is None:
        from larsbench.telemetry.nvml import visible_gpu_count

        visible_gpus = visible_gpu_count()
    if visible_gpus > 0:
        return None
    return (
        'not timed here: data.loader = "dali" on launch.device = "cuda" decodes on the GPU '
        "(nvJPEG) and no GPU is visible on this host; run the dry run, or `larsbench doctor`, "
        "on a GPU node"
    )


def check_feed_apart(
    run: RunConfig, sweep_dir: Path | None, throughput_dir: Path | None, timeout: float = 300
) -> FeedCheck | str:
    """check_feed in a short-lived subprocess (python -m larsbench.feed); a str says why no
    verdict came back (gpu_decoder_absent: not started at all)."""
    import subprocess
    import sys
    import tempfile

    if (absent := gpu_decoder_absent(run)) is not None:
        return absent

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(run.to_dict(), f)
    cmd = [sys.executable, "-m", "larsbench.feed", f.name]
    cmd += [str(sweep_dir or ""), str(throughput_dir or "")]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"the feed check did not finish ({err})"
    finally:
        Path(f.name).unlink(missing_ok=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"the feed check failed: {lines[-1] if lines else done.returncode}"
    return FeedCheck(**json.loads(done.stdout.strip().splitlines()[-1]))


def feed_checks(
    runs: list[RunConfig], sweep_dir: Path | None, throughput_dir: Path | None
) -> list[tuple[list[str], FeedCheck | str]]:
    """One check per distinct feed_key among the ImageFolder runs: (run ids, verdict)."""
    groups: dict[tuple[object, ...], list[RunConfig]] = {}
    for run in runs:
        if run.data.source == "imagefolder" and Path(run.data.path, "train").is_dir():
            groups.setdefault(feed_key(run), []).append(run)
    return [
        ([r.run_id for r in group], check_feed_apart(group[0], sweep_dir, throughput_dir))
        for group in groups.values()
    ]


def main(argv: list[str] | None = None) -> int:
    """python -m larsbench.feed RUN_CONFIG.json [SWEEP_DIR [THROUGHPUT_DIR]]: prints the
    FeedCheck as JSON. The CLI runs it as a subprocess: torch, DALI and a CUDA context stay
    out of the `larsbench run` process that then launches the ranks."""
    import sys
    from dataclasses import asdict

    from larsbench.plan.run import RunConfig

    args = sys.argv[1:] if argv is None else argv
    run = RunConfig.from_dict(json.loads(Path(args[0]).read_text(encoding="utf-8")))
    sweep_dir = Path(args[1]) if len(args) > 1 and args[1] else None
    throughput_dir = Path(args[2]) if len(args) > 2 and args[2] else None
    check = check_feed(run, sweep_dir=sweep_dir, throughput_dir=throughput_dir)
    print(json.dumps(asdict(check)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

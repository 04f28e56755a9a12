"""The collective-bandwidth check: an all-reduce over all local ranks, as nccl-tests reports it."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from larsbench.doctor.verdict import FAIL, OK, Verdict, by_ratio
from larsbench.launch import worker_environment
from larsbench.plan.run import RunConfig
from larsbench.rundir import RunPaths, write_json_atomic
from larsbench.telemetry import nvml
from larsbench.telemetry.gpus import handle

MiB = 1 << 20
# Message sizes (bytes): up to ResNet50's 25.6M fp32 gradients (~100 MB, what DDP all-reduces
# per step in 25 MB buckets) and beyond, where bus bandwidth reaches its plateau.
SIZES_QUICK = (1 * MiB, 8 * MiB, 32 * MiB)
SIZES_FULL = (1 * MiB, 8 * MiB, 32 * MiB, 128 * MiB, 512 * MiB)

# Nominal per-direction bandwidth (GB/s) of one NVLink by generation (NVIDIA's NVLink pages:
# V100 6 x 25 = 150, A100 12 x 25 = 300, H100 18 x 25 = 450, B200 18 x 50 = 900 GB/s per
# direction), and of one PCIe lane by generation (PCI-SIG: 8, 16, 32, 64 GT/s after encoding).
NVLINK_GBPS_PER_LINK = {1: 20.0, 2: 25.0, 3: 25.0, 4: 25.0, 5: 50.0}
PCIE_GBPS_PER_LANE = {3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}
NVLINK_MAX_LINKS = 18
WARN_BELOW, FAIL_BELOW = 0.6, 0.3  # of the nominal link bandwidth (nccl-tests reaches ~0.8)


@dataclass(frozen=True)
class Interconnect:
    """What links GPU 0 to its peers, as NVML reports it (None: not read)."""

    nvlink_links: int = 0
    nvlink_version: int | None = None
    pcie_gen: int | None = None
    pcie_width: int | None = None


def read_interconnect(index: int) -> Interconnect:
    """NVLink links and generation, PCIe generation and width of one GPU, through NVML."""
    h = handle(index)
    if h is None:
        return Interconnect()
    links, version = 0, None
    for link in range(NVLINK_MAX_LINKS):
        state = nvml.call(lambda nv, link=link: nv.nvmlDeviceGetNvLinkState(h, link))
        if state:
            links += 1
            version = nvml.call(lambda nv, link=link: nv.nvmlDeviceGetNvLinkVersion(h, link))
    return Interconnect(
        links,
        version,
        nvml.call(lambda nv: nv.nvmlDeviceGetMaxPcieLinkGeneration(h)),
        nvml.call(lambda nv: nv.nvmlDeviceGetMaxPcieLinkWidth(h)),
    )


def expected_busbw(ic: Interconnect) -> tuple[float, str] | None:
    """(nominal GB/s per direction, what it is) for the all-reduce's slowest link, or None."""
    if ic.nvlink_links and ic.nvlink_version in NVLINK_GBPS_PER_LINK:
        gbps = ic.nvlink_links * NVLINK_GBPS_PER_LINK[ic.nvlink_version]
        return gbps, f"NVLink {ic.nvlink_version} x {ic.nvlink_links} links: {gbps:.0f} GB/s"
    if ic.pcie_gen in PCIE_GBPS_PER_LANE and ic.pcie_width:
        gbps = PCIE_GBPS_PER_LANE[ic.pcie_gen] * ic.pcie_width
        return gbps, f"PCIe {ic.pcie_gen} x{ic.pcie_width}: {gbps:.0f} GB/s"
    return None


@dataclass(frozen=True)
class AllReduceResult:
    """The worker's figures: ranks, backend, whether sums were right, one row per size."""

    world: int
    backend: str
    correct: bool
    rows: list[dict[str, float]]
    model_elements: int | None = None  # the run's model, counted by rank 0

    @property
    def peak_busbw(self) -> float:
        return max((r["busbw_gbps"] for r in self.rows), default=0.0)

    @property
    def peak_algbw(self) -> float:
        return max((r["algbw_gbps"] for r in self.rows), default=0.0)


def _sizes_text(result: AllReduceResult) -> str:
    return ", ".join(f"{r['bytes'] / MiB:g} MiB {r['busbw_gbps']:.2f}" for r in result.rows)


def judge_bandwidth(
    result: AllReduceResult | None, error: str, expected: tuple[float, str] | None
) -> Verdict:
    """The verdict on the measured bus bandwidth against the link's nominal figure."""
    check = "all-reduce bus bandwidth"
    if result is None:
        return Verdict(
            check,
            f"the all-reduce did not run: {error}",
            "it runs",
            FAIL,
            "the ranks cannot talk: rerun with NCCL_DEBUG=INFO and read the log named above",
        )
    if not result.correct:
        return Verdict(
            check,
            f"{result.world} ranks over {result.backend}: wrong sums",
            "sum of rank+1 = n(n+1)/2",
            FAIL,
            "the collective returns wrong data: update the driver and NCCL, and check the GPUs "
            "with nvidia-smi -q for ECC errors",
        )
    figures: dict[str, Any] = {"world": result.world, "rows": result.rows}
    if result.world == 1:
        return Verdict(
            check,
            f"1 rank over {result.backend}: {result.peak_algbw:.1f} GB/s (algorithm)",
            "n/a: nothing crosses a link with one rank",
            OK,
            figures=figures,
        )
    measured = f"{result.world} ranks, {result.backend}, busbw GB/s: {_sizes_text(result)}"
    if expected is None:
        why = "gloo on the CPU" if result.backend == "gloo" else "link not read by NVML"
        return Verdict(check, measured, f"no published figure ({why})", OK, figures=figures)
    nominal, what = expected
    ratio = result.peak_busbw / nominal
    figures |= {"expected_gbps": nominal, "ratio": ratio}
    status = by_ratio(ratio, WARN_BELOW, FAIL_BELOW)
    advice = ""
    if status != OK:
        advice = (
            f"peak {result.peak_busbw:.0f} GB/s is {ratio:.0%} of the link's {nominal:.0f}: check "
            "`nvidia-smi topo -m` (NV# links, not PHB/SYS), that NCCL_P2P_DISABLE and "
            "NCCL_SHM_DISABLE are unset, and NCCL_DEBUG=INFO for a fallback to sockets"
        )
    expected_text = f">= {WARN_BELOW:.0%} of {what}"
    return Verdict(check, measured, expected_text, status, advice, figures)


def measure_bandwidth(
    run: RunConfig,
    work: Path,
    sizes: tuple[int, ...],
    iters: int,
    classes: int = 0,
    timeout: float = 240.0,
) -> tuple[AllReduceResult | None, str]:
    """Runs larsbench.doctor.allreduce under torchrun with the run's ranks and backend (and,
    with `classes`, counts the run's model there)."""
    paths = RunPaths(work / "allreduce")
    paths.logs_dir.mkdir(parents=True, exist_ok=True)
    config, out = paths.root / "config.json", paths.root / "allreduce.json"
    write_json_atomic(config, run.to_dict())
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += ["--nproc-per-node", str(run.nproc_per_node)]
    cmd += ["-m", "larsbench.doctor.allreduce", "--run-config", str(config)]
    cmd += ["--sizes", ",".join(map(str, sizes)), "--iters", str(iters), "--out", str(out)]
    cmd += ["--classes", str(classes)]
    log = paths.logs_dir / "torchrun.log"
    try:
        with open(log, "wb") as f:
            done = subprocess.run(
                cmd,
                stdout=f,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=worker_environment(run, paths),
                timeout=timeout,
            )
    except subprocess.TimeoutExpired:
        return None, f"no result within {timeout:.0f} s (log: {log})"
    if done.returncode != 0 or not out.exists():
        return None, f"torchrun exited with {done.returncode} (log: {log})"
    d = json.loads(out.read_text(encoding="utf-8"))
    result = AllReduceResult(
        d["world"], d["backend"], d["correct"], d["rows"], d.get("model_elements")
    )
    return result, ""

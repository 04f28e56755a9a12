"""The devices check: GPUs through larsbench's NVML wrapper, cross-checked with nvidia-smi."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from larsbench.doctor.verdict import FAIL, OK, WARN, Verdict
from larsbench.telemetry import nvml
from larsbench.telemetry.gpus import gpu_info, handle, read_gpu

MiB = 1 << 20
GiB = 1 << 30
MEMORY_TOLERANCE = 2 * MiB  # nvidia-smi prints MiB; NVML gives bytes


@dataclass(frozen=True)
class GpuReading:
    """One visible GPU as NVML (or nvidia-smi) names it; a field it could not read is None."""

    index: int
    name: str | None
    uuid: str | None
    memory_total: int | None  # bytes
    temperature: float | None = None  # degrees C, a live reading
    power_draw: float | None = None  # W, a live reading


def read_nvml() -> list[GpuReading] | None:
    """The GPUs CUDA will show the ranks, in their order; None when NVML does not load."""
    if not nvml.available():
        return None
    out = []
    for index in nvml.visible_devices():
        h = handle(index)
        info, now = gpu_info(index, None, h), read_gpu(index, None, h)
        out.append(
            GpuReading(
                index, info.name, info.uuid, info.memory_total, now.temperature, now.power_draw
            )
        )
    return out


SMI_QUERY = "index,uuid,name,memory.total,temperature.gpu,power.draw"
# Live readings: ours must lie within nvidia-smi's just before and just after, give or take.
TEMPERATURE_TOLERANCE = 2.0  # C
POWER_TOLERANCE, POWER_RELATIVE = 25.0, 0.10  # W, and 10% of the higher reading


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # [N/A], [Not Supported]
        return None


def parse_smi(text: str) -> list[GpuReading]:
    """Rows of `nvidia-smi --query-gpu=SMI_QUERY --format=csv,noheader,nounits` (memory in
    MiB; a field it cannot read, `[N/A]`, is None)."""
    rows = []
    for line in text.strip().splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 6 or not cells[0].isdigit():
            continue
        mib = _number(cells[3])
        memory = None if mib is None else int(mib * MiB)
        temperature, power = _number(cells[4]), _number(cells[5])
        rows.append(GpuReading(int(cells[0]), cells[2], cells[1], memory, temperature, power))
    return rows


def read_bracketed() -> tuple[list[GpuReading] | None, list[GpuReading] | None]:
    """NVML's readings between two nvidia-smi queries: (ours, nvidia-smi before + after), the
    second a list of before rows followed by after rows (None without nvidia-smi)."""
    before = read_smi()
    ours = read_nvml()
    after = read_smi()
    if before is None or after is None:
        return ours, None
    return ours, before + after


def read_smi() -> list[GpuReading] | None:
    """nvidia-smi's view of every GPU; None where nvidia-smi is not installed or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    cmd = [exe, f"--query-gpu={SMI_QUERY}", "--format=csv,noheader,nounits"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_smi(done.stdout)


def _describe(gpus: list[GpuReading]) -> str:
    names: dict[str, int] = {}
    for g in gpus:
        memory = f" {g.memory_total / GiB:.0f} GiB" if g.memory_total else ""
        key = f"{g.name or 'unnamed GPU'}{memory}"
        names[key] = names.get(key, 0) + 1
    return ", ".join(f"{n} x {key}" for key, n in names.items())


def judge_devices(
    device: str, nproc: int, threads: int, cpus: int, gpus: list[GpuReading] | None
) -> Verdict:
    """Enough devices for the profile's ranks on this node."""
    if device == "cpu":
        measured = f"{nproc} CPU ranks x {threads} threads on {cpus} cores"
        expected = f"<= {cpus} threads in all"
        if nproc * threads > cpus:
            return Verdict(
                "devices",
                measured,
                expected,
                WARN,
                f"the ranks' threads outnumber the cores: set launch.threads_per_rank to "
                f"{max(cpus // nproc, 1)} or launch.nproc_per_node lower",
            )
        return Verdict("devices", measured, expected, OK)
    expected = f"{nproc} GPUs (launch.nproc_per_node)"
    if gpus is None:
        return Verdict(
            "devices",
            "NVML did not load",
            expected,
            FAIL,
            "install the NVIDIA driver and nvidia-ml-py (pip install nvidia-ml-py), then run "
            "nvidia-smi to see the GPUs",
        )
    if len(gpus) < nproc:
        return Verdict(
            "devices",
            f"{len(gpus)} visible: {_describe(gpus)}" if gpus else "no GPU visible",
            expected,
            FAIL,
            "check CUDA_VISIBLE_DEVICES and nvidia-smi, or set launch.nproc_per_node to "
            f'{len(gpus)} (or "auto")'
            if gpus
            else "check the driver with nvidia-smi",
        )
    measured = _describe(gpus)
    if len({g.name for g in gpus}) > 1:
        return Verdict(
            "devices",
            measured,
            expected,
            WARN,
            "the GPUs differ: the slowest sets the pace of every step; set CUDA_VISIBLE_DEVICES "
            "to GPUs of one model",
        )
    return Verdict("devices", measured, expected, OK, figures={"gpus": len(gpus)})


def _live_problems(g: GpuReading, rows: list[GpuReading]) -> list[str]:
    """Temperature and power of NVML's reading outside nvidia-smi's readings around it."""
    out = []
    for field, unit, tol, rel in (
        ("temperature", "C", TEMPERATURE_TOLERANCE, 0.0),
        ("power_draw", "W", POWER_TOLERANCE, POWER_RELATIVE),
    ):
        ours = getattr(g, field)
        theirs = [getattr(r, field) for r in rows if getattr(r, field) is not None]
        if ours is None or not theirs:
            continue  # not supported on this GPU: nothing to compare
        lo, hi = min(theirs), max(theirs)
        if not lo - tol - rel * hi <= ours <= hi + tol + rel * hi:
            out.append(f"GPU {g.index} {field} {ours:.0f} {unit} vs {lo:.0f}..{hi:.0f}")
    return out


def judge_nvml_vs_smi(
    gpus: list[GpuReading] | None, smi: list[GpuReading] | None
) -> Verdict | None:
    """NVML through larsbench against nvidia-smi, GPU by GPU (by UUID; `smi` may hold rows
    read before and after ours); None on a CPU node."""
    if gpus is None:
        return None
    expected = "same GPUs, names, memory; temperature and power within nvidia-smi's"
    if smi is None:
        return Verdict("nvml vs nvidia-smi", "nvidia-smi not found", expected, OK)
    by_uuid: dict[str | None, list[GpuReading]] = {}
    for row in smi:
        by_uuid.setdefault(row.uuid, []).append(row)
    problems = []
    for g in gpus:
        rows = by_uuid.get(g.uuid, [])
        other = rows[0] if rows else None
        problems += _live_problems(g, rows)
        if other is None:
            problems.append(f"GPU {g.index} ({g.uuid}) missing from nvidia-smi")
            continue
        if g.name != other.name:
            problems.append(f"GPU {g.index} name {g.name!r} vs {other.name!r}")
        if g.memory_total is None or other.memory_total is None:
            problems.append(f"GPU {g.index} memory not read")
        elif abs(g.memory_total - other.memory_total) > MEMORY_TOLERANCE:
            ours, theirs = g.memory_total / MiB, other.memory_total / MiB
            problems.append(f"GPU {g.index} memory {ours:.0f} vs {theirs:.0f} MiB")
    measured = f"{len(gpus)} GPUs read, {len({r.uuid for r in smi})} in nvidia-smi"
    if problems:
        return Verdict(
            "nvml vs nvidia-smi",
            f"{measured}: " + "; ".join(problems[:3]),
            expected,
            FAIL,
            "NVML and nvidia-smi disagree: update nvidia-ml-py to match the driver "
            "(pip install -U nvidia-ml-py); telemetry would be wrong until they agree",
        )
    return Verdict("nvml vs nvidia-smi", measured + ", all agree", expected, OK)

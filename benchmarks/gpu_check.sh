#!/usr/bin/env bash
# GPU machine check of the telemetry: NVML readings against nvidia-smi at the same moment (under
# load), then a short 1-GPU ResNet50 throughput smoke with telemetry, then LARC's optimizer
# step against SGD's on the GPU (eager and fused=True) and LARC's no-sync tests on CUDA.
# About 6 minutes.
#
#   OUT=/tmp/gpu-check benchmarks/gpu_check.sh     # PYTHON=python3 by default; needs torch
#
# Exit status: 0 when both parts pass; the smoke runs (and reports) even if the NVML check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1
echo "== gpu_check: results in $OUT"

# --- the package, without a virtual environment (GPU_CHECK_NO_INSTALL=1 skips pip) -------------
has() { "$PY" -c "import $1" >/dev/null 2>&1; }
if [ -z "${GPU_CHECK_NO_INSTALL:-}" ]; then
  for spec in pynvml:nvidia-ml-py psutil:psutil pydantic:pydantic; do
    has "${spec%%:*}" || "$PY" -m pip install -q "${spec#*:}" || echo "!! could not install ${spec#*:}"
  done
  "$PY" -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 \
    || echo "(pip install -e . failed: using PYTHONPATH)"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
command -v nvidia-smi >/dev/null || { echo "!! nvidia-smi not found"; exit 2; }
nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader

# --- 1. NVML (through larsbench) against nvidia-smi ---------------------------------------------
nvml_status=0
timeout 150 "$PY" - "$OUT" <<'PYEOF' 2>&1 | tee "$OUT/nvml-check.txt" || nvml_status=$?
"""Compare the sampler's readings with nvidia-smi queried just before and just after."""

import os
import subprocess
import sys
import time

from larsbench import nvml
from larsbench.events import EventWriter, read_events
from larsbench.telemetry import Sampler

out = sys.argv[1]
QUERY = "index,uuid,utilization.gpu,memory.used,memory.total,power.draw,temperature.gpu"
LOAD = (
    "import time, torch\n"
    "x = torch.randn(8192, 8192, device='cuda')\n"
    "t = time.time()\n"
    "while time.time() - t < 40:\n"
    "    y = x @ x\n"
    "    torch.cuda.synchronize()\n"
)


def smi() -> dict[int, list[str]]:
    cmd = ["nvidia-smi", f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = [[c.strip() for c in line.split(",")] for line in text.strip().splitlines()]
    return {int(r[0]): r for r in rows}


def num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # [N/A], [Not Supported]
        return None


assert nvml.available(), "NVML did not initialise (library or driver missing)"
visible = nvml.visible_devices()
print(f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r} -> NVML {visible}")
assert visible, "no visible GPU"

load = subprocess.Popen([sys.executable, "-c", LOAD])  # local rank 0's GPU, under load
writer = EventWriter(os.path.join(out, "nvml-check", "system-check.jsonl"))
sampler = Sampler(writer, interval=0.25, proc_interval=0.25, local_world_size=len(visible))
assert sampler.source == "nvml", sampler.source
sampler.set_ranks({0: load.pid})
deadline = time.time() + 60
while time.time() < deadline and (sampler.sample_once().devices[0].gpu_util or 0) < 50:
    time.sleep(0.5)

# field: (nvidia-smi column, our attribute, scale to smi units, absolute tolerance, relative)
FIELDS = {
    "utilization.gpu": (2, "gpu_util", 1.0, 10.0, 0.0),
    "memory.used MiB": (3, "memory_used", 1 / 2**20, 256.0, 0.02),
    "memory.total MiB": (4, "memory_total", 1 / 2**20, 2.0, 0.0),
    "power.draw W": (5, "power_draw", 1.0, 25.0, 0.10),
    "temperature.gpu C": (6, "temperature", 1.0, 2.0, 0.0),
}
worst: dict[str, float] = dict.fromkeys(FIELDS, 0.0)
failures: list[str] = []
energy: list[tuple[float, float, float]] = []  # (t, J of GPU 0, W of GPU 0)
for round_ in range(5):
    before = smi()
    sample = sampler.sample_once()
    after = smi()
    t = time.time()
    for dev in sample.devices:
        a, b = before[dev.index], after[dev.index]
        info_uuid = nvml.device_uuid(dev.index)
        if a[1] != info_uuid:
            failures.append(f"GPU {dev.index}: nvidia-smi uuid {a[1]} != NVML {info_uuid}")
        for name, (col, attr, scale, tol, rel) in FIELDS.items():
            ours, lo, hi = getattr(dev, attr), num(a[col]), num(b[col])
            if ours is None or lo is None or hi is None:
                print(f"  GPU {dev.index} {name}: ours {ours}, smi {a[col]}/{b[col]} (skipped)")
                continue
            ours *= scale
            lo, hi = min(lo, hi), max(lo, hi)
            off = max(lo - ours, ours - hi, 0.0)
            worst[name] = max(worst[name], off)
            if off > tol + rel * hi:
                failures.append(
                    f"GPU {dev.index} round {round_}: {name} ours {ours:.1f}, "
                    f"nvidia-smi {lo:.1f}..{hi:.1f}"
                )
    d0 = sample.devices[0]
    print(
        f"round {round_}: GPU {d0.index} util {d0.gpu_util}% mem {d0.memory_used} B "
        f"power {d0.power_draw} W temp {d0.temperature} C sm {d0.sm_clock} MHz "
        f"energy {d0.energy} J reasons {d0.throttle_reasons} "
        f"rank gpu mem {sample.ranks[0].gpu_mem_bytes}"
    )
    if d0.energy is not None and d0.power_draw is not None:
        energy.append((t, d0.energy, d0.power_draw))
    time.sleep(1.0)

print("\nworst distance outside the nvidia-smi bracket (before/after):")
for name, value in worst.items():
    print(f"  {name:<20} {value:8.1f}")
if len(energy) >= 2:
    (t0, e0, _), (t1, e1, _) = energy[0], energy[-1]
    mean_w = sum(w for _, _, w in energy) / len(energy)
    rate = (e1 - e0) / (t1 - t0)
    print(f"energy counter: {rate:.1f} W over {t1 - t0:.1f} s; power readings mean {mean_w:.1f} W")
    if not 0.7 * mean_w <= rate <= 1.3 * mean_w:
        failures.append(f"energy rate {rate:.1f} W vs power {mean_w:.1f} W")
else:
    print("energy counter: not available")
if sample.ranks[0].gpu_mem_bytes is None:
    print("!! NVML listed no GPU memory for the load's pid (a pid namespace?): rank gpu_mem is null")

# The sampler's own cost on the NVML path, and its thread writing events.
cpu0 = time.thread_time()
for _ in range(200):
    sampler.sample_once()
per = (time.thread_time() - cpu0) / 200
print(f"sampler CPU per sample, NVML, {len(visible)} GPUs: {per * 1e6:.0f} us")
sampler.start()
time.sleep(2.0)
sampler.stop()
writer.close()
events = read_events(writer.path)
kinds = [e["kind"] for e in events]
print(f"thread: {kinds.count('system')} system events, errors {sampler.errors}")
if kinds[:1] != ["system_info"] or kinds.count("system") < 5 or sampler.errors:
    failures.append(f"sampler thread: {kinds[:3]}..., errors {sampler.errors} {sampler.last_error}")
load.kill()
load.wait()

print("\nNVML check:", "PASS" if not failures else "FAIL")
for failure in failures:
    print("  -", failure)
sys.exit(1 if failures else 0)
PYEOF

# --- 2. one short 1-GPU ResNet50 run with telemetry ---------------------------------------------
smoke_status=0
if command -v larsbench >/dev/null; then
  LB=(larsbench)
else
  LB=("$PY" -m larsbench.cli)
fi
# Throughput mode (issue 7): ResNet50, fp16 AMP, channels_last, batch 256 on 1 GPU, SGD and
# LARC: img/s, the step split and LARC's share of the step, in the summary printed at the end.
echo "== smoke: ${LB[*]} run --profile profiles/seed-throughput.toml (1 GPU, bs256, sgd+larc)"
timeout 300 "${LB[@]}" run --profile profiles/seed-throughput.toml \
  --set launch.nproc_per_node=1 --set 'sweep.train.batch_size=[256]' \
  --set 'sweep.optimizer=[{name="sgd"}, {name="larc", trust_coefficient=0.02}]' \
  --out "$OUT/gpu-smoke" >"$OUT/gpu-smoke.log" 2>&1 || smoke_status=$?
tail -n 25 "$OUT/gpu-smoke.log" || true
timeout 60 "$PY" - "$OUT/gpu-smoke" <<'PYEOF' || smoke_status=$((smoke_status ? smoke_status : 1))
"""The smoke's telemetry: a system file from NVML and the derived figures in result.json."""

import glob
import json
import sys

from larsbench.events import read_events

runs = sorted(glob.glob(f"{sys.argv[1]}/*/result.json"))
assert runs, "no result.json"
for path in runs:
    result = json.load(open(path))
    system = result.get("system") or {}
    keys = ("source", "gpu_util_mean", "gpu_util_p95", "energy_j_per_image", "peak_gpu_mem_bytes")
    print(path, result.get("status"), result.get("images_per_sec"))
    print("  ", {k: system.get(k) for k in keys})
    files = glob.glob(path.replace("result.json", "events/system-*.jsonl"))
    samples = [e for f in files for e in read_events(f) if e["kind"] == "system"]
    assert samples and samples[-1]["source"] == "nvml", "no NVML samples"
    assert any(d.get("gpu_util") for e in samples for d in e["devices"]), "GPU never busy"
    assert system.get("gpu_util_mean") is not None, "no gpu_util_mean in result.json"
print("smoke telemetry: PASS")
PYEOF

# --- 3. LARC's step against SGD's on the GPU (a figure, not a pass/fail) ------------------------
echo "== optimizer step on the GPU: benchmarks/optimizer_step.py --device cuda"
timeout 240 "$PY" benchmarks/optimizer_step.py --device cuda --reps 30 --parts \
  2>&1 | tee "$OUT/optimizer-step.txt" | grep -v '^W' || echo "!! optimizer_step.py failed"
echo "== LARC's no-sync tests on CUDA (eager and fused), under set_sync_debug_mode('error')"
has pytest || "$PY" -m pip install -q pytest || echo "!! could not install pytest"
timeout 240 "$PY" -m pytest -q -p no:cacheprovider tests/test_optim_larc.py -k on_cuda \
  2>&1 | tail -n 5 | tee "$OUT/larc-cuda-tests.txt" || echo "!! LARC CUDA tests failed"

echo "== NVML check: $([ "$nvml_status" = 0 ] && echo PASS || echo "FAIL ($nvml_status)")," \
  "smoke: $([ "$smoke_status" = 0 ] && echo PASS || echo "FAIL ($smoke_status)")"
[ "$nvml_status" = 0 ] && [ "$smoke_status" = 0 ]

#!/usr/bin/env bash
# The GPU machine check: `larsbench doctor` on this node, then benchmarks/data_pipeline.py
# (docs/doctor.md).
#
#   OUT=/tmp/gpu-check benchmarks/gpu_check.sh      # PYTHON=python3 by default; needs torch
#
# It runs exactly this command, from the repository root, and keeps its table and JSON in $OUT
# (then the data pipeline benchmark's table, in $OUT/data_pipeline.txt):
#
#   python3 -m larsbench.cli doctor --profile profiles/seed-throughput.toml \
#       --set launch.nproc_per_node=auto --set data.source=synthetic --set data.loader=torch \
#       --json $OUT/doctor.json
#
# seed-throughput is the 8-GPU fp16 ResNet50 profile; `auto` takes the GPUs this node has and
# synthetic data stands in for the ImageNet folder a bare machine lacks. Synthetic batches go
# through no decoder, so the loader is torch's: the profile's DALI reads image files only, and
# the lent H200 has no DALI (its 199 MB wheel is over the 64 MiB a device call carries).
# Python packages that the machine lacks and cannot fetch (pydantic on the lent H200s) come
# from wheels in .whl/ when that folder exists (docs/doctor.md says how to fill it). Exit
# status: the doctor's.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/larsbench-site .whl/*.whl
  export PYTHONPATH="/tmp/larsbench-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader
status=0
"$PY" -m larsbench.cli doctor --profile profiles/seed-throughput.toml \
  --set launch.nproc_per_node=auto --set data.source=synthetic --set data.loader=torch \
  --json "$OUT/doctor.json" \
  2>&1 | tee "$OUT/doctor.txt" || status=$?
echo "== gpu_check: doctor exit $status; table $OUT/doctor.txt, verdicts $OUT/doctor.json"
# The input paths on this host's cores, and nvJPEG on its GPU (about a minute; its exit status
# does not change the script's, which is the doctor's).
"$PY" benchmarks/data_pipeline.py --images 200 --reps 3 2>&1 | tee "$OUT/data_pipeline.txt" \
  || echo "== gpu_check: data_pipeline.py failed (see $OUT/data_pipeline.txt)"
exit "$status"

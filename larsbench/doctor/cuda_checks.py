"""GPU-only checks: LARC's no-sync tests on CUDA and benchmarks/optimizer_step.py on the GPU."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import larsbench
from larsbench.doctor.verdict import FAIL, OK, WARN, Verdict, by_ratio

REPO = Path(larsbench.__file__).resolve().parents[1]
LARC_TESTS = REPO / "tests" / "test_optim_larc.py"
OPTIMIZER_BENCH = REPO / "benchmarks" / "optimizer_step.py"
LARC_STEP_TARGET = 1.5  # benchmarks/optimizer_step.py's bar: LARC's step <= 1.5x SGD's
_PASSED = re.compile(r"(\d+) passed")
_RATIO = re.compile(r"^(larsbench LARC(?:, fused=True)?) / SGD: ([\d.]+)x", re.M)


def _run(cmd: list[str], timeout: float) -> tuple[int, str]:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout:.0f} s"
    return done.returncode, done.stdout + done.stderr


def judge_larc_nosync(code: int | None, output: str) -> Verdict:
    """pytest -k on_cuda of tests/test_optim_larc.py: LARC's step under sync-debug 'error'."""
    check = "LARC no-sync on CUDA"
    expected = "tests pass: no host sync in LARC's step"
    if code is None:
        return Verdict(
            check,
            output,
            expected,
            WARN,
            "run from a checkout with tests/ and pytest installed to run them",
        )
    passed = _PASSED.search(output)
    if code == 0 and passed:
        return Verdict(check, f"{passed.group(1)} passed", expected, OK)
    tail = output.strip().splitlines()[-1:] or ["no output"]
    return Verdict(
        check,
        f"pytest exit {code}: {tail[0][:160]}",
        expected,
        FAIL,
        "LARC syncs the host on this GPU/torch: run pytest tests/test_optim_larc.py "
        "-k on_cuda -x and report the traceback",
    )


def run_larc_nosync(timeout: float = 240.0) -> Verdict:
    if not LARC_TESTS.exists():
        return judge_larc_nosync(None, f"{LARC_TESTS} not here")
    try:
        import pytest  # noqa: F401
    except ImportError:
        return judge_larc_nosync(None, "pytest not installed")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(LARC_TESTS)]
    return judge_larc_nosync(*_run([*cmd, "-k", "on_cuda"], timeout))


def judge_optimizer_step(code: int | None, output: str) -> Verdict:
    """LARC's step over SGD's, eager and fused, as benchmarks/optimizer_step.py prints them."""
    check = "LARC step vs SGD (GPU)"
    expected = f"<= {LARC_STEP_TARGET:g}x SGD's step"
    if code is None:
        return Verdict(
            check,
            output,
            expected,
            WARN,
            "run from a checkout with benchmarks/ to time LARC's step on the GPU",
        )
    ratios = {name: float(r) for name, r in _RATIO.findall(output)}
    if code != 0 or not ratios:
        tail = output.strip().splitlines()[-1:] or ["no output"]
        return Verdict(
            check,
            f"exit {code}: {tail[0][:160]}",
            expected,
            FAIL,
            "the optimizer benchmark failed: run python benchmarks/optimizer_step.py "
            "--device cuda and read its error",
        )
    worst = max(ratios.values())
    measured = ", ".join(
        f"{name.removeprefix('larsbench ')} {r:.2f}x" for name, r in ratios.items()
    )
    status = by_ratio(LARC_STEP_TARGET / worst, 1.0, 0.5)
    advice = ""
    if status != OK:
        advice = (
            f"LARC's step costs {worst:.2f}x SGD's: see --parts of "
            "benchmarks/optimizer_step.py for the slow pass; try optimizer.fused = true"
        )
    return Verdict(check, measured, expected, status, advice, {"ratios": ratios})


def run_optimizer_step(reps: int, timeout: float = 240.0) -> Verdict:
    if not OPTIMIZER_BENCH.exists():
        return judge_optimizer_step(None, f"{OPTIMIZER_BENCH} not here")
    cmd = [sys.executable, str(OPTIMIZER_BENCH), "--device", "cuda", "--reps", str(reps)]
    return judge_optimizer_step(*_run(cmd, timeout))

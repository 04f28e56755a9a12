"""`larsbench doctor --quick --profile profiles/smoke.toml` on this machine, through torchrun."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import SMOKE, finish, larsbench

pytestmark = pytest.mark.slow


def test_doctor_quick_on_the_smoke_profile_passes_and_writes_its_json(tmp_path: Path) -> None:
    out = tmp_path / "doctor.json"
    code, log = finish(
        larsbench("doctor", "--quick", "--profile", str(SMOKE), "--json", str(out)), timeout=900
    )
    assert code == 0, log
    report = json.loads(out.read_text())
    assert report["ok"] is True and report["quick"] is True
    checks = {v["check"]: v for v in report["verdicts"]}
    for name in (
        "devices",
        "all-reduce bus bandwidth",
        "speed sgd 1 rank",
        "speed sgd 2 ranks",
        "scaling sgd 1 -> 2 ranks",
        "LARC vs SGD 2 ranks",
        "data",
        "data feed",
        "disk for checkpoints",
        "shared memory (/dev/shm)",
        "training path",
    ):
        assert name in checks, f"{name} missing: {sorted(checks)}"
    assert checks["training path"]["status"] == "ok", checks["training path"]
    assert checks["all-reduce bus bandwidth"]["figures"]["world"] == 2
    assert all(v["status"] == "ok" or v["advice"] for v in report["verdicts"])
    assert "doctor: PASS" in log

"""The configure screen's doctor: ctrl+d runs `larsbench doctor` and shows its verdict table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from tui_helpers import app_for, fixture_tree, screen_text, sync, wait_until

from larsbench.doctor.verdict import FAIL, OK, DoctorReport, Verdict
from larsbench.tui.screens import doctor as doctor_screen


def fake_doctor(report: DoctorReport, seen: list[list[str]]):  # type: ignore[no-untyped-def]
    """A doctor_command that writes `report` where --json says, as the real one would."""
    real = doctor_screen.doctor_command

    def command(profile: Path, json_path: Path, quick: bool) -> list[str]:
        seen.append(real(profile, json_path, quick))
        code = (
            "import sys, json, pathlib\n"
            "print('doctor: devices ...', file=sys.stderr)\n"
            f"pathlib.Path({str(json_path)!r}).write_text({json.dumps(report.to_dict())!r})\n"
            "sys.exit(1)\n"
        )
        return [sys.executable, "-c", code]

    return command


@sync
async def test_ctrl_d_shows_the_doctors_verdict_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixture_tree(tmp_path)
    report = DoctorReport("smoke.toml", True, "node0", seconds=42)
    report.add(Verdict("devices", "2 CPU ranks x 1 threads on 2 cores", "<= 2 threads", OK))
    report.add(
        Verdict(
            "disk for checkpoints",
            "runs/smoke: 0.1 GiB free",
            ">= 2.0 GiB",
            FAIL,
            "the checkpoints need 1.0 GiB: free space on that disk or pass --out to a larger one",
        )
    )
    seen: list[list[str]] = []
    monkeypatch.setattr(doctor_screen, "doctor_command", fake_doctor(report, seen))
    app = app_for(tmp_path, None)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until(pilot, lambda: "Runs (" in screen_text(app))
        await pilot.press("ctrl+d")
        await wait_until(pilot, lambda: "doctor: FAIL" in screen_text(app))
        text = screen_text(app)
        assert "disk for checkpoints" in text and "fail" in text
        assert "pass --out to a larger one" in text
        assert "1 failed, 0 warned" in text
        # The real command line it stood in for: the profile picked, --quick, a JSON path.
        [cmd] = seen
        assert cmd[cmd.index("--profile") + 1].endswith(".toml")
        assert "doctor" in cmd and "--quick" in cmd and "--json" in cmd
        await pilot.press("escape")
        await wait_until(pilot, lambda: "doctor: FAIL" not in screen_text(app))

"""The corpus of damaged and hostile input: every case a clear error or a partial view, never
a traceback, and nothing already on disk lost (docs/reliability.md, "Bad input")."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_helpers import ROOT, SMOKE, finish, larsbench, wait_for
from fixtures.make_sweep import make_recorded_sweep
from tui_helpers import SIZE, app_for, fixture_tree, screen_text, sync, wait_until

from larsbench import cli, launch
from larsbench.cli import preflight as cli_preflight
from larsbench.plan.machine import Machine
from larsbench.rundir import SweepPaths, is_run_id, read_json
from larsbench.runner_file import LOCK_FILE
from larsbench.sweep.prepare import prepare_sweep
from larsbench.tui.form import ProfileForm
from larsbench.tui.form_fields import FIELDS, OPTIMIZER
from larsbench.tui.watcher import SweepWatcher

NOBODY = 65534


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`larsbench ARGS` in this process: (exit code, stdout + stderr); an exception that
    escapes main() is the traceback a user would see, so it fails the test."""
    try:
        code = cli.main(args)
    except SystemExit as exit_:  # argparse's own usage errors
        code = int(exit_.code or 0)
    except BaseException:
        pytest.fail("larsbench raised instead of exiting cleanly:\n" + traceback.format_exc())
    out = capsys.readouterr()
    return code, out.out + out.err


@contextlib.contextmanager
def as_nobody() -> Iterator[None]:
    """Root reads and writes any file; checks of permissions need another effective user."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.fixture
def no_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cases that pass validation must still never start training: a launch fails the test
    (exit 1, not 2). The model-name check asks torchvision in a subprocess; the smoke
    profile's resnet18 exists, so it is answered here to keep the corpus fast."""

    def launched(*_a: object, **_k: object) -> None:
        raise AssertionError("a run was launched")

    monkeypatch.setattr(launch, "start", launched)
    monkeypatch.setattr(cli_preflight, "unknown_archs", lambda archs: [])


# --- profiles --------------------------------------------------------------------------------

SMOKE_TEXT = SMOKE.read_text(encoding="utf-8")


def _smoke_with(extra: str) -> str:
    head, _, _ = SMOKE_TEXT.partition("[sweep]")
    return head + extra


PROFILE_TEXTS: dict[str, tuple[bytes, str]] = {
    "not-utf8": (b'name = "caf\xe9"\n', "not UTF-8"),
    "utf16-bom": ('name = "x"\n'.encode("utf-16"), "not UTF-8"),
    "empty": (b"", "empty"),
    "only-whitespace": (b"\n  \n", "empty"),
    "not-toml": (b"name = \n[[[", "not valid TOML"),
    "nul-byte": (b'name = "a\x00b"\n', "not valid TOML"),
    "deep-tables": (("[" + ".".join(["t"] * 40) + "]\nx = 1\n").encode(), "nested more than"),
    "deep-arrays": (("name = 'x'\nv = " + "[" * 3000 + "]" * 3000).encode(), "nested"),
    "no-name": (b"[train]\nepochs = 1\n", "name"),
    "unknown-top-key": (b'name = "x"\nbogus = 1\n', "bogus: unknown key"),
    "section-not-table": (b'name = "x"\nlaunch = 5\n', "launch"),
    "bool-as-int": (b'name = "x"\n[train]\nepochs = true\n', "train.epochs"),
    "name-path": (b'name = "../../escape"\n', "name: must be a folder name"),
    "name-absolute": (b'name = "/etc"\n', "name: must be a folder name"),
    "name-control": (b'name = "a\\u0007b"\n', "name: must be a folder name"),
    "name-dotdot": (b'name = ".."\n', "name: must be a folder name"),
    "sweep-not-list": (b'name = "x"\n[sweep]\n"train.batch_size" = 64\n', "sweep.train.batch_size"),
    "sweep-wrong-type": (
        _smoke_with('[sweep]\n"train.batch_size" = ["big", 64]\n').encode(),
        "train.batch_size",
    ),
    "sweep-list-in-list": (
        _smoke_with('[sweep]\n"train.epochs" = [[1, 2]]\n').encode(),
        "train.epochs",
    ),
    "sweep-unknown-key": (b'name = "x"\n[sweep]\n"train.nope" = [1]\n', "'train.nope' names no"),
    "sweep-unknown-section": (b'name = "x"\n[sweep]\n"gpu.x" = [1]\n', "'gpu.x' names no"),
    "sweep-empty-list": (b'name = "x"\n[sweep]\n"train.epochs" = []\n', "empty list"),
    "sweep-duplicate-values": (
        _smoke_with('[sweep]\n"train.batch_size" = [64, 64]\n').encode(),
        "lists 64 twice",
    ),
    "sweep-duplicate-tables": (
        _smoke_with('[sweep]\noptimizer = [{name = "sgd"}, {name = "sgd"}]\n').encode(),
        "twice",
    ),
    "sweep-same-run-id": (
        _smoke_with('[sweep]\n"model.arch" = ["res/net18", "res_net18"]\n').encode(),
        "the same id: bs64-sgd-archres_net18",
    ),
    "sweep-section-not-table": (
        _smoke_with("[sweep]\noptimizer = [5]\n").encode(),
        "each value must be a table",
    ),
    "run-id-too-long": (
        _smoke_with(f'[sweep]\n"model.arch" = ["{"r" * 300}"]\n').encode(),
        "limit 200",
    ),
}


@pytest.mark.parametrize("case", sorted(PROFILE_TEXTS))
def test_a_damaged_profile_is_exit_2_naming_the_file(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_launch: None
) -> None:
    data, needle = PROFILE_TEXTS[case]
    profile = tmp_path / f"{case}.toml"
    profile.write_bytes(data)
    out = tmp_path / "out"
    code, text = run_cli(["run", "--profile", str(profile), "--out", str(out)], capsys)
    assert code == 2, text
    assert str(profile) in text and needle in text, text
    assert "Traceback" not in text
    assert not out.exists(), "nothing is written for a bad profile"


def test_a_profile_that_is_a_directory_or_missing_or_huge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = tmp_path / "huge.toml"
    huge.write_text('name = "x"\n' + "# padding\n" * 200_000, encoding="utf-8")
    for path, needle in (
        (tmp_path, "is a directory"),
        (tmp_path / "missing.toml", "No such file"),
        (huge, "too large for a profile"),
    ):
        code, text = run_cli(["run", "--profile", str(path)], capsys)
        assert code == 2 and str(path) in text and needle in text, text


def test_an_unreadable_profile_is_exit_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = tmp_path / "secret.toml"
    profile.write_text(SMOKE_TEXT, encoding="utf-8")
    profile.chmod(0)
    with as_nobody():
        code, text = run_cli(["run", "--profile", str(profile)], capsys)
    assert code == 2 and str(profile) in text and "Permission denied" in text, text


def test_the_cli_process_on_a_non_utf8_profile_exits_2_without_a_traceback(
    tmp_path: Path,
) -> None:
    profile = tmp_path / "latin1.toml"
    profile.write_bytes('name = "résumé"\n'.encode("latin-1"))
    done = subprocess.run(
        [sys.executable, "-m", "larsbench.cli", "run", "--profile", str(profile)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert f"{profile}: not UTF-8" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


HOSTILE_SWEPT_VALUES = [
    "../../outside",
    "/etc/passwd",
    "a\nb",
    "a\x1bc",
    "..",
    "con:nul",
    "x\\..\\y",
]


def test_hostile_swept_strings_never_make_a_run_id_that_leaves_out(tmp_path: Path) -> None:
    values = ", ".join(json.dumps(v) for v in HOSTILE_SWEPT_VALUES)
    profile = tmp_path / "hostile.toml"
    profile.write_text(_smoke_with(f'[sweep]\n"model.arch" = [{values}]\n'), encoding="utf-8")
    plan = prepare_sweep(profile, [], Machine(gpus=0, cpus=2))
    out = SweepPaths(tmp_path / "out")
    assert len({r.run_id for r in plan.runs}) == len(HOSTILE_SWEPT_VALUES)
    for run in plan.runs:
        assert is_run_id(run.run_id) and run.run_id.isascii(), run.run_id
        assert out.run(run.run_id).root.resolve().parent == out.root.resolve()


# --- --set -------------------------------------------------------------------------------------

BAD_SETS: dict[str, tuple[str, str]] = {
    "no-equals": ("train.epochs", "expected KEY=VALUE"),
    "no-key": ("=5", "expected KEY=VALUE"),
    "unknown-section": ("gpu.count=1", "section one of launch, model"),
    "unknown-key": ("train.nosuch=1", "unknown key; allowed in train"),
    "section-only": ("train=5", "expected section.key"),
    "too-deep": ("train.epochs.x=1", "expected section.key"),
    "list-for-scalar": ("train.epochs=[1, 2]", "train.epochs"),
    "scalar-for-list": ("train.milestones=5", "train.milestones"),
    "table-for-scalar": ("train.epochs={a = 1}", "train.epochs"),
    "text-for-int": ("train.epochs=abc", "(got 'abc')"),
    "empty-value": ("train.epochs=", "train.epochs"),
    "overflow": ("train.epochs=1e999", "train.epochs"),
    "negative-lr": ("train.base_lr=-1", "greater than 0"),
    "bad-choice": ("train.amp=fp8", "'off', 'fp16' or 'bf16'"),
    "sweep-unknown": ("sweep.train.nosuch=[1]", "names no setting"),
    "sweep-not-table": ("sweep.optimizer=[5]", "each value must be a table"),
    "sweep-list-in-list": ("sweep.train.batch_size=[[64]]", "train.batch_size"),
    "sweep-duplicates": ("sweep.train.batch_size=[64, 64]", "twice"),
    "name-path": ("name=../x", "must be a folder name"),
    "malformed-list": ("launch.nproc_per_node=[2", "launch.nproc_per_node"),
}


@pytest.mark.parametrize("case", sorted(BAD_SETS))
def test_a_bad_set_is_exit_2_naming_the_key(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_launch: None
) -> None:
    item, needle = BAD_SETS[case]
    out = tmp_path / "out"
    code, text = run_cli(["run", "--profile", str(SMOKE), "--out", str(out), "--set", item], capsys)
    assert code == 2, text
    assert needle in text, text
    assert "Traceback" not in text and not out.exists()


# --- --out -------------------------------------------------------------------------------------


def _run_smoke(out: Path, capsys: pytest.CaptureFixture[str], *sets: str) -> tuple[int, str]:
    args = ["run", "--profile", str(SMOKE), "--out", str(out), "--no-telemetry"]
    for item in sets:
        args += ["--set", item]
    return run_cli(args, capsys)


def test_out_that_is_a_file_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_launch: None
) -> None:
    out = tmp_path / "a-file"
    out.write_text("keep me")
    code, text = _run_smoke(out, capsys)
    assert code == 2 and f"--out {out}: is a file" in text, text
    assert out.read_text() == "keep me"


def test_out_that_is_not_writable_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_launch: None
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    with as_nobody():
        code, text = _run_smoke(locked / "sweep", capsys)
    assert code == 2 and f"--out {locked / 'sweep'}" in text, text
    assert "Permission denied" in text


def test_out_holding_another_profiles_sweep_is_refused_and_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_launch: None
) -> None:
    other = make_recorded_sweep(tmp_path)
    before = {p: p.read_bytes() for p in other.rglob("*") if p.is_file()}
    code, text = _run_smoke(other, capsys)
    assert code == 2, text
    assert "holds the sweep of profile 'fixture', not 'smoke'" in text
    assert {p: p.read_bytes() for p in other.rglob("*") if p.is_file()} == before


def test_out_with_a_damaged_sweep_json_is_refused_and_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_launch: None
) -> None:
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "sweep.json").write_bytes(b"\x00\xff garbage")
    code, text = _run_smoke(out, capsys)
    assert code == 2 and f"{out / 'sweep.json'}: not JSON" in text, text
    assert (out / "sweep.json").read_bytes() == b"\x00\xff garbage"
    assert not (out / "profile.toml").exists()


HOLD_LOCK = """
import sys, time
from pathlib import Path
from larsbench.rundir import SweepPaths
from larsbench.runner_file import claim
lock = claim(SweepPaths(Path(sys.argv[1])))
print("held", flush=True)
time.sleep(60)
"""


def test_a_second_run_on_the_same_out_names_the_pid_that_holds_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_launch: None
) -> None:
    out = tmp_path / "sweep"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        code, text = _run_smoke(out, capsys)
        assert code == 2, text
        assert f"another larsbench run (pid {holder.pid}) is running this sweep" in text
        assert not (out / "sweep.json").exists(), "the refused run wrote nothing"
    finally:
        holder.kill()
        holder.wait()
    # The kernel drops the lock with its holder: the folder can be claimed again.
    assert (out / LOCK_FILE).read_text().strip() == str(holder.pid)


# --- watch and report on damaged run folders -----------------------------------------------

DAMAGED = "bs64-sgd"  # the run each case damages; the fixture's other runs stay readable
INTACT = "bs64-larc-tc0.02"


def _write(rel: str, data: bytes | None) -> Callable[[Path], str]:
    """Damage: write DATA at RUN/REL (None: delete it; b"<dir>": make a directory there)."""

    def damage(run: Path) -> str:
        path = run / rel
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        if data == b"<dir>":
            path.mkdir()
        elif data is not None:
            path.write_bytes(data)
        return str(path)

    return damage


def _append_events(data: bytes) -> Callable[[Path], str]:
    def damage(run: Path) -> str:
        path = run / "events" / "rank0.jsonl"
        with open(path, "ab") as f:
            f.write(data)
        return str(path)

    return damage


FUTURE = json.dumps({"v": 99, "t": 1.0, "kind": "epoch", "epoch": "one"}).encode() + b"\n"

# case -> (damage, what the report and the watcher must say about the damaged run: the
# damaged file's name, or "" when the run reads completely from its other files)
RUN_DAMAGE: dict[str, tuple[Callable[[Path], str], bool]] = {
    "status-truncated": (_write("status.json", b'{"state": "compl'), True),
    "status-empty": (_write("status.json", b""), True),
    "status-not-json": (_write("status.json", b"\x89PNG\r\n\x1a\n"), True),
    "status-a-list": (_write("status.json", b'["completed"]'), True),
    "status-a-directory": (_write("status.json", b"<dir>"), True),
    "status-unknown-state": (_write("status.json", b'{"state": "exploded"}'), True),
    "result-missing": (_write("result.json", None), False),
    "result-garbage": (_write("result.json", b"{{{{"), True),
    "result-wrong-types": (_write("result.json", b'{"status": "completed", "top1": "high"}'), True),
    "config-missing": (_write("config.json", None), False),
    "config-garbage": (_write("config.json", b"\xff\xfe"), True),
    "config-a-list": (_write("config.json", b"[1, 2]"), True),
    "events-binary": (_append_events(b"\x00\xff\xfe\x80garbage\n"), True),
    "events-torn-last-line": (_append_events(b'{"v":1,"t":9,"kind":"st'), False),
    "events-future-version": (_append_events(FUTURE), True),
    "events-huge-line": (
        _append_events(b'{"v":1,"kind":"step","x":"' + b"x" * 2**21 + b'"}\n'),
        True,
    ),
    "events-a-directory": (_write("events/rank0.jsonl", b"<dir>"), True),
}


def _damaged_sweep(tmp_path: Path, case: str) -> tuple[Path, str]:
    sweep = make_recorded_sweep(tmp_path)
    damage, _ = RUN_DAMAGE[case]
    if case.startswith(("events-", "config-")):
        # Folded from events and config: the stored result would hide the damage.
        (sweep / DAMAGED / "result.json").unlink()
    return sweep, damage(sweep / DAMAGED)


@pytest.mark.parametrize("case", sorted(RUN_DAMAGE))
def test_report_on_a_damaged_run_writes_every_readable_run_and_names_the_damage(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep, damaged_file = _damaged_sweep(tmp_path, case)
    intact = read_json(sweep / INTACT / "result.json")
    code, text = run_cli(["report", str(sweep)], capsys)
    assert code == 0, text
    summary = json.loads((sweep / "summary.json").read_text())
    rows = {r["run_id"]: r for r in summary["rows"]}
    assert set(rows) == {"bs64-sgd", "bs64-larc-tc0.02", "bs512-sgd", "bs512-larc-tc0.02"}
    assert rows[INTACT]["top1"] == pytest.approx(intact["top1"])
    if RUN_DAMAGE[case][1]:
        assert any(damaged_file in p for p in summary["unreadable"]), summary["unreadable"]
        assert "unreadable:" in text and Path(damaged_file).name in text
    else:
        assert not summary["unreadable"]
    if case == "status-a-directory":
        assert (sweep / DAMAGED / "status.json").is_dir(), "report never replaces what is there"


@pytest.mark.parametrize("case", sorted(RUN_DAMAGE))
def test_watch_on_a_damaged_run_shows_the_rest_and_names_the_damage(
    case: str, tmp_path: Path
) -> None:
    sweep, damaged_file = _damaged_sweep(tmp_path, case)
    watcher = SweepWatcher(sweep, clock=lambda: 0.0)
    watcher.focus(DAMAGED)
    view = watcher.poll()
    assert view is not None and not view.error
    states = {r.run_id: r.state for r in view.runs}
    assert states[INTACT] == "completed" and len(states) == 4
    assert view.run is not None and view.run.run_id == DAMAGED
    if RUN_DAMAGE[case][1]:
        named = [*view.unreadable, *(r.reason for r in view.runs if r.run_id == DAMAGED)]
        assert any(damaged_file in n for n in named), named


def test_report_and_watch_on_a_sweep_with_no_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "empty-sweep"
    sweep.mkdir()
    (sweep / "sweep.json").write_text(json.dumps({"name": "empty", "runs": []}))
    code, text = run_cli(["report", str(sweep)], capsys)
    assert code == 0, text
    assert json.loads((sweep / "summary.json").read_text())["rows"] == []
    view = SweepWatcher(sweep, clock=lambda: 0.0).poll()
    assert view is not None and view.runs == () and view.run is None


def test_report_and_watch_on_a_garbage_sweep_json_use_the_run_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = make_recorded_sweep(tmp_path)
    (sweep / "sweep.json").write_bytes(b"\xde\xad\xbe\xef")
    code, text = run_cli(["report", str(sweep)], capsys)
    assert code == 0 and "sweep.json: not JSON" in text, text
    assert len(json.loads((sweep / "summary.json").read_text())["rows"]) == 4
    view = SweepWatcher(sweep, clock=lambda: 0.0).poll()
    assert view is not None and len(view.runs) == 4
    assert any("sweep.json: not JSON" in p for p in view.unreadable)


def test_a_hostile_run_id_in_sweep_json_is_never_followed_out_of_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "s"
    sweep.mkdir()
    runs = [{"run_id": i} for i in ("../../etc", "/etc", "..", 5, ["x"], "ok")]
    (sweep / "sweep.json").write_text(json.dumps({"name": "s", "runs": runs}))
    assert SweepPaths(sweep).run_ids() == ["ok"]
    code, text = run_cli(["report", str(sweep)], capsys)
    assert code == 0, text
    assert [r["run_id"] for r in json.loads((sweep / "summary.json").read_text())["rows"]] == ["ok"]


def test_a_run_folder_where_a_sweep_folder_is_expected_and_the_reverse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = make_recorded_sweep(tmp_path)
    run = sweep / DAMAGED
    code, text = run_cli(["report", str(run)], capsys)
    assert code == 2 and f"{run}: not a sweep directory" in text, text
    assert f"report its sweep folder {sweep}" in text
    # watch takes either; a run folder is shown as one run, a sweep folder as the sweep.
    view = SweepWatcher(run, clock=lambda: 0.0).poll()
    assert view is not None and not view.is_sweep and [r.run_id for r in view.runs] == [DAMAGED]
    view = SweepWatcher(sweep, clock=lambda: 0.0).poll()
    assert view is not None and view.is_sweep and len(view.runs) == 4
    code, text = run_cli(["watch", str(tmp_path / "nowhere")], capsys)
    assert code == 2 and "no such directory" in text


# --- the terminal app's form -----------------------------------------------------------------

FORM_BAD = ("{x = 1}", "[[1, 2]]", "[1, 2")  # a table, a nested list, a torn list
NUMBER_BAD = ("abc", "1e999", "true")


def _form() -> ProfileForm:
    import tomllib

    return ProfileForm(tomllib.loads(SMOKE_TEXT), Machine(gpus=0, cpus=2))


def _bad_values(key: str) -> tuple[str, ...]:
    spec = next(s for s in FIELDS if s.key == key)
    if spec.kind == "bool":
        return ("maybe", "{x = 1}", "[[1, 2]]")
    if spec.kind == "choice":
        return ("nope", *FORM_BAD[:2])
    if key in ("model.arch", OPTIMIZER):
        return ("true", *FORM_BAD[:2])
    if key == "data.path":
        return ("true", "{x = 1}", "[1, 2]")
    return (*NUMBER_BAD, *FORM_BAD)


FORM_CASES = [(spec.key, bad) for spec in FIELDS for bad in _bad_values(spec.key)]


@pytest.mark.parametrize(("key", "bad"), FORM_CASES)
def test_every_form_field_shows_a_bad_value_inline_and_nothing_launches(key: str, bad: str) -> None:
    result = _form().validate({key: bad})
    assert not result.ok and not result.runs, "a run could be launched"
    assert key in result.errors, (result.errors, result.general)
    assert result.errors[key]


def test_the_form_extra_line_takes_the_bad_set_corpus() -> None:
    for item, _needle in BAD_SETS.values():
        result = _form().validate({}, extra=item)
        assert not result.ok and not result.runs, item
        assert result.errors or result.general, item


def test_the_lock_is_free_again_once_its_holder_is_gone(tmp_path: Path) -> None:
    from larsbench.runner_file import claim

    out = SweepPaths(tmp_path)
    lock = claim(out)
    lock.release()
    again = claim(out)  # no stale-lock clean-up needed
    again.release()
    assert (tmp_path / LOCK_FILE).read_text().strip() == str(os.getpid())


@sync
async def test_the_app_watching_a_damaged_run_names_the_file_in_its_header(
    tmp_path: Path,
) -> None:
    _, _, sweep = fixture_tree(tmp_path)
    run = sweep / DAMAGED
    (run / "status.json").write_bytes(b"\x00garbage")
    app = app_for(tmp_path, run)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.view is not None and app.view.run is not None)
        assert app.current_mode == "live"
        await wait_until(pilot, lambda: "unreadable:" in screen_text(app))
        assert app.view is not None
        assert any(f"{run / 'status.json'}: not JSON" in p for p in app.view.unreadable)
        assert "Plain SGD" in screen_text(app)  # the rest of the run is still shown


@pytest.mark.slow
def test_two_larsbench_runs_on_one_out_the_second_names_the_first_pid(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    args = ["run", "--profile", str(SMOKE), "--out", str(out), "--no-telemetry"]
    first = larsbench(*args, "--set", "train.epochs=50", start_new_session=True)
    try:
        wait_for(lambda: (r := read_json(out / "runner.json")) and r["state"] == "running", 120)
        code, log = finish(larsbench(*args, "--set", "train.epochs=50"), timeout=120)
        assert code == 2, log
        assert f"another larsbench run (pid {first.pid}) is running this sweep" in log
        assert "Traceback" not in log
        assert read_json(out / "runner.json")["pid"] == first.pid  # the first is untouched
    finally:
        os.killpg(first.pid, signal.SIGINT)
        finish(first, timeout=60)


@sync
async def test_the_results_screen_of_a_damaged_sweep_names_the_file(tmp_path: Path) -> None:
    _, _, sweep = fixture_tree(tmp_path)
    (sweep / DAMAGED / "result.json").write_bytes(b"{{{{")
    app = app_for(tmp_path, sweep)
    async with app.run_test(size=(250, 40)) as pilot:
        await wait_until(pilot, lambda: app.view is not None and bool(app.view.results))
        assert app.current_mode == "results"
        await wait_until(pilot, lambda: "unreadable:" in screen_text(app))
        assert f"{sweep / DAMAGED / 'result.json'}: not JSON" in app.view.unreadable_note
        assert "bs64-larc-tc0.02" in screen_text(app)  # the readable runs are listed

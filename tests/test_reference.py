"""Reference results: the [reference] schema, the seed profiles' numbers, the summary columns."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

from larsbench.cli import main
from larsbench.plan.machine import Machine
from larsbench.profile.errors import ConfigError
from larsbench.profile.loading import load_profile
from larsbench.reference import reference_columns, sweep_reference
from larsbench.results import RunResult
from larsbench.summary.advice import recommend, reference_sentence
from larsbench.summary.figure import accuracy_figure
from larsbench.summary.rows import summary_rows
from larsbench.sweep.prepare import prepare_sweep

REPO = Path(__file__).resolve().parent.parent
SEED_MD = REPO.parent / "shared" / "SEED.md"
GPU_NODE = Machine(gpus=8, cpus=64)


def _load_seed_fixture():
    path = REPO / "tests" / "fixtures" / "summary" / "seed_sweep.py"
    spec = importlib.util.spec_from_file_location("reference_seed_sweep", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


seed = _load_seed_fixture()

REFERENCE = """
[reference]
source = "a paper, table 2"
tolerance = 0.5
[reference.top1]
"bs256-sgd" = 76.3
"bs4096-larc-tc0.001" = 74.0
"""


def seed_md_top1() -> dict[str, float]:
    """Run id -> top-1 from SEED.md's two tables (ResNet50 | epochs | lr | batch | top-1 [| tc])."""
    out = {}
    row = re.compile(r"^\| ResNet50 \| 90 \| [\d.]+ \| (\d+) \| ([\d.]+)% \|(?: ([\de.-]+) \|)?$")
    for line in SEED_MD.read_text(encoding="utf-8").splitlines():
        m = row.match(line.strip())
        if m:
            batch, top1, tc = m.groups()
            run_id = f"bs{batch}-sgd" if tc is None else f"bs{batch}-larc-tc{float(tc):g}"
            out[run_id] = float(top1)
    return out


@pytest.mark.skipif(
    not SEED_MD.is_file(), reason="../shared/SEED.md is not beside this checkout (CI copies it)"
)
def test_seed_profiles_carry_the_study_numbers_of_seed_md():
    published = seed_md_top1()
    assert len(published) == 10  # 4 SGD rows, 6 LARC rows
    carried: dict[str, float] = {}
    for name in ("seed-batch-sweep", "seed-larc"):
        path = REPO / "profiles" / f"{name}.toml"
        profile = load_profile(path)
        assert profile.reference.source and "SEED.md" in profile.reference.source
        plan = prepare_sweep(path, [], GPU_NODE)  # every key names a run of the sweep
        assert set(profile.reference.top1) == {r.run_id for r in plan.runs}
        carried.update(profile.reference.top1)
    assert carried == published


def _write(tmp_path: Path, text: str) -> Path:
    src = (REPO / "profiles" / "smoke.toml").read_text(encoding="utf-8")
    path = tmp_path / "p.toml"
    path.write_text(src + text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[reference.top1]\n"bs64-sgd" = 90.0\n', "reference: source is required when top1"),
        ('[reference]\nsource = "x"\n[reference.top1]\n"bs64-sgd" = 190.0\n', "(0..100)"),
        ('[reference]\nsource = "x"\ntolernce = 1.0\n', "reference.tolernce: unknown key"),
        (
            '[reference]\nsource = "x"\n[reference.top1]\n"bs64-sdg" = 90.0\n',
            "reference.top1.bs64-sdg",
        ),
    ],
)
def test_bad_reference_tables_are_errors_naming_the_key(tmp_path, capsys, table, message):
    path = _write(tmp_path, table)
    assert main(["run", "--profile", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err


def test_unknown_run_id_error_lists_the_run_ids(tmp_path):
    path = _write(tmp_path, '[reference]\nsource = "x"\n[reference.top1]\n"bs99-sgd" = 90.0\n')
    with pytest.raises(ConfigError, match=r"reference.top1.bs99-sgd: no run of the sweep has this"):
        prepare_sweep(path, [], Machine(gpus=0, cpus=2))


def test_an_override_that_narrows_the_sweep_keeps_the_reference_valid():
    path = REPO / "profiles" / "seed-batch-sweep.toml"
    plan = prepare_sweep(path, [("sweep.train.batch_size", [256])], GPU_NODE)
    assert [r.run_id for r in plan.runs] == ["bs256-sgd"]
    assert len(plan.profile.reference.top1) == 4


def test_columns_are_measured_minus_published():
    table = load_reference(REFERENCE)
    assert reference_columns("bs256-sgd", 76.422, table) == {
        "reference_top1": 76.3,
        "reference_delta": pytest.approx(0.122),
    }
    assert reference_columns("bs256-sgd", float("nan"), table)["reference_delta"] is None
    assert reference_columns("bs1024-sgd", 76.2, table) == {
        "reference_top1": None,
        "reference_delta": None,
    }
    row = summary_rows(seed.seed_results(), reference=table)[0]
    assert row["run_id"] == "bs256-sgd" and row["reference_delta"] == pytest.approx(0.122)


def load_reference(text: str):
    import tomllib

    from larsbench.profile.schema import ReferenceConfig

    return ReferenceConfig.model_validate(tomllib.loads(text)["reference"])


def test_recommendation_says_whether_the_reproduction_is_within_tolerance():
    table = load_reference(REFERENCE)
    text = reference_sentence(seed.seed_results(), table)
    assert text.startswith("Against the reference (a paper, table 2; tolerance 0.5 points")
    assert "1 of 2 runs reproduce it; outside the tolerance: bs4096-larc-tc0.001 -1.60" in text
    assert "Against the reference" in recommend(seed.seed_results(), reference=table)
    loose = table.model_copy(update={"tolerance": 2.0})
    assert "all 2 runs with a published top-1 reproduce it" in reference_sentence(
        seed.seed_results(), loose
    )
    pending = [RunResult(run_id="bs256-sgd", status="running")]
    assert "no run with a published top-1 has completed yet" in reference_sentence(pending, table)
    assert reference_sentence(seed.seed_results(), None) == ""


def test_the_plot_draws_references_as_hollow_markers_at_the_measured_speed():
    table = load_reference(REFERENCE)
    rows = summary_rows(seed.seed_results(), reference=table)
    hollow = [
        tuple(c.get_offsets()[0])
        for c in accuracy_figure(rows, "t").axes[0].collections
        if len(c.get_facecolors()) == 0
    ]
    speeds = {r["run_id"]: r["images_per_sec"] for r in rows}
    assert sorted(hollow) == sorted(
        [(speeds["bs256-sgd"], 76.3), (speeds["bs4096-larc-tc0.001"], 74.0)]
    )
    plain = summary_rows(seed.seed_results())
    assert not [
        c for c in accuracy_figure(plain, "t").axes[0].collections if not len(c.get_facecolors())
    ]


def test_report_picks_up_a_reference_added_after_the_sweep(tmp_path, capsys):
    sweep = seed.build_seed_sweep(tmp_path / "seed-larc")
    assert main(["report", str(sweep)]) == 0
    before = json.loads((sweep / "summary.json").read_text())
    assert before["reference"] is None
    assert all(r["reference_top1"] is None for r in before["rows"])

    (sweep / "profile.toml").write_text('name = "seed-larc"\n' + REFERENCE, encoding="utf-8")
    assert main(["report", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "Against the reference (a paper, table 2" in out
    rows = {r["run_id"]: r for r in json.loads((sweep / "summary.json").read_text())["rows"]}
    assert rows["bs256-sgd"]["reference_top1"] == 76.3
    assert rows["bs256-sgd"]["reference_delta"] == pytest.approx(0.122)
    assert rows["bs1024-sgd"]["reference_delta"] is None
    with open(sweep / "summary.csv", newline="") as f:
        by_id = {r["run_id"]: r for r in csv.DictReader(f)}
    assert by_id["bs4096-larc-tc0.001"]["reference_top1"] == "74.0"
    assert float(by_id["bs4096-larc-tc0.001"]["reference_delta"]) == pytest.approx(-1.604)
    assert by_id["bs1024-sgd"]["reference_delta"] == ""
    md = (sweep / "summary.md").read_text()
    assert "| ref top-1 | vs ref |" in md and "|    76.30% |  +0.12 |" in md


def test_report_with_a_bad_reference_fails_and_keeps_the_old_summary(tmp_path, capsys):
    sweep = seed.build_seed_sweep(tmp_path / "seed-larc")
    assert main(["report", str(sweep)]) == 0
    old = (sweep / "summary.md").read_bytes()
    bad = REFERENCE.replace('"bs256-sgd"', '"bs257-sgd"')
    (sweep / "profile.toml").write_text('name = "x"\n' + bad, encoding="utf-8")
    assert main(["report", str(sweep)]) == 2
    err = capsys.readouterr().err
    assert "profile.toml: reference.top1.bs257-sgd: no run of the sweep has this id" in err
    assert (sweep / "summary.md").read_bytes() == old
    shutil.rmtree(sweep)
    assert sweep_reference(tmp_path / "none") is None


def test_report_of_a_sweep_narrowed_by_set_accepts_the_profiles_other_ids(tmp_path):
    sweep = seed.build_seed_sweep(tmp_path / "seed-larc", extras=False)
    planned = json.loads((sweep / "sweep.json").read_text())
    planned["runs"] = planned["runs"][:1]  # bs256-sgd alone, as --set left it
    planned["overrides"] = ["sweep.train.batch_size=[256]"]
    (sweep / "sweep.json").write_text(json.dumps(planned))
    (sweep / "profile.toml").write_text('name = "x"\n' + REFERENCE, encoding="utf-8")
    assert main(["report", str(sweep)]) == 0
    (row,) = json.loads((sweep / "summary.json").read_text())["rows"]
    assert row["run_id"] == "bs256-sgd" and row["reference_top1"] == 76.3


def test_a_reference_broken_during_the_sweep_leaves_a_summary_without_it(tmp_path):
    import io

    from rich.console import Console

    from larsbench.headless import HeadlessView
    from larsbench.rundir import SweepPaths

    sweep = seed.build_seed_sweep(tmp_path / "seed-larc")
    (sweep / "profile.toml").write_text('[reference]\ntolerance = "x"\n', encoding="utf-8")
    buf = io.StringIO()
    HeadlessView(Console(file=buf, width=300), quiet=True).sweep_finished([], SweepPaths(sweep))
    assert "warning: summary without the reference table:" in buf.getvalue()
    assert "reference.tolerance" in buf.getvalue()
    assert json.loads((sweep / "summary.json").read_text())["reference"] is None

"""ConfigError's problems: each names the key it belongs to, while str(err) keeps its text."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from larsbench.plan.expand import expand
from larsbench.plan.machine import Machine
from larsbench.profile.errors import ConfigError, ConfigProblem
from larsbench.profile.loading import check_reference_ids, parse_profile
from larsbench.profile.overrides import apply_overrides, parse_override
from larsbench.profile.schema import ReferenceConfig

SMOKE = Path(__file__).resolve().parent.parent / "profiles" / "smoke.toml"
CPU = Machine(gpus=0, cpus=2)


def smoke() -> dict[str, Any]:
    return tomllib.loads(SMOKE.read_text(encoding="utf-8"))


def error_of(raw: dict[str, Any], machine: Machine = CPU) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        expand(parse_profile(raw, "p.toml"), machine, "p.toml")
    return info.value


def keys(err: ConfigError) -> list[str]:
    return [p.key for p in err.problems]


def test_a_bad_value_names_its_key_and_the_text_is_its_line() -> None:
    err = error_of({**smoke(), "train": {**smoke()["train"], "epochs": "ten"}})
    (problem,) = err.problems
    assert problem == ConfigProblem(
        "train.epochs",
        "Input should be a valid integer (got 'ten')",
        "p.toml: train.epochs: Input should be a valid integer (got 'ten')",
    )
    assert str(err) == problem.line


def test_an_unknown_key_names_the_key_and_every_problem_gets_one() -> None:
    raw = {**smoke(), "train": {**smoke()["train"], "epochz": 3, "base_lr": -1}}
    err = error_of(raw)
    assert sorted(keys(err)) == ["train.base_lr", "train.epochz"]
    unknown = next(p for p in err.problems if p.key == "train.epochz")
    assert unknown.message.startswith("unknown key; allowed keys here: epochs, batch_size")
    assert str(err) == "\n".join(p.line for p in err.problems)


def test_a_union_branch_is_not_part_of_the_key() -> None:
    err = error_of({**smoke(), "launch": {"nproc_per_node": "many"}})
    assert set(keys(err)) == {"launch.nproc_per_node"}
    assert "p.toml: launch.nproc_per_node.int: Input should be a valid integer" in str(err)


@pytest.mark.parametrize(
    ("section", "table", "key"),
    [
        ("data", {"source": "imagefolder"}, "data.path"),
        ("data", {"source": "synthetic", "loader": "dali"}, "data.loader"),
        ("launch", {"nproc_per_node": 0}, "launch.nproc_per_node"),
        ("optimizer", {"fused": True, "fold_into_sgd": True}, "optimizer.fused"),
    ],
)
def test_a_sections_own_check_names_the_field_while_the_text_names_the_section(
    section: str, table: dict[str, Any], key: str
) -> None:
    err = error_of({**smoke(), section: table})
    (problem,) = err.problems
    assert problem.key == key
    assert str(err).startswith(f"p.toml: {section}: ")  # the text as before


def test_a_bad_value_in_a_sweep_run_keeps_the_key_and_says_the_run() -> None:
    raw = {**smoke(), "sweep": {"optimizer": [{"name": "adam"}]}}
    err = error_of(raw)
    (problem,) = err.problems
    assert problem.key == "optimizer.name"
    assert problem.message == "Input should be 'sgd' or 'larc' (got 'adam')"
    assert str(err).endswith("\n  (in the sweep run with optimizer={'name': 'adam'})")
    assert problem.line.endswith(" (in the sweep run with optimizer={'name': 'adam'})")


def test_a_check_of_the_resolved_run_names_its_key() -> None:
    err = error_of(apply_overrides(smoke(), [("sweep.train.batch_size", [63])]))
    (problem,) = err.problems
    assert problem.key == "train.batch_size"
    assert problem.message.startswith("63 does not divide by the world size 2")
    assert str(err) == f"p.toml: train.batch_size: {problem.message}"


def test_a_bad_override_names_the_key_it_sets() -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides(smoke(), [("train.nope", 1)])
    (problem,) = info.value.problems
    assert problem.key == "train.nope"
    assert problem.message.startswith("unknown key; allowed in train: epochs, batch_size")
    assert str(info.value) == f"--set train.nope: {problem.message}"
    with pytest.raises(ConfigError) as info:
        apply_overrides(smoke(), [("sweep.train.nope", [1])])
    assert keys(info.value) == ["sweep.train.nope"]


def test_an_override_without_equals_names_what_stands_before_it() -> None:
    with pytest.raises(ConfigError) as info:
        parse_override("train.epochs")
    (problem,) = info.value.problems
    assert problem.key == "train.epochs"
    assert str(info.value) == "--set 'train.epochs': expected KEY=VALUE, e.g. train.epochs=5"


def test_a_reference_for_no_run_names_the_run_id_key() -> None:
    reference = ReferenceConfig(source="paper", top1={"bs8-sgd": 70.0})
    with pytest.raises(ConfigError) as info:
        check_reference_ids(reference, ["bs64-sgd"], "p.toml")
    assert keys(info.value) == ["reference.top1.bs8-sgd"]
    assert str(info.value) == (
        "p.toml: reference.top1.bs8-sgd: no run of the sweep has this id; run ids: bs64-sgd"
    )


def test_an_error_given_only_text_is_one_problem_of_no_key() -> None:
    err = ConfigError("--out runs/x: holds another sweep")
    assert err.problems == (ConfigProblem("", str(err), str(err)),)

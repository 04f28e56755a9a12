"""Profiles: the shipped ones reproduce the seed, bad ones fail naming file and key, --set,
sweep expansion, run ids, step plans and data sizes, and `larsbench run --dry-run`."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from larsbench import cli
from larsbench.plan.expand import expand
from larsbench.plan.machine import Machine
from larsbench.plan.run import RunConfig, scaled_lr
from larsbench.plan.runids import run_id_for
from larsbench.plan.sizes import dataset_sizes
from larsbench.plan.steps import plan_run
from larsbench.profile.errors import ConfigError
from larsbench.profile.loading import load_profile, parse_profile
from larsbench.profile.overrides import apply_overrides, parse_override
from larsbench.profile.schema import DataConfig, Profile

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "profiles"
DOCS = ROOT / "docs" / "profiles.md"
EIGHT_GPUS = Machine(gpus=8, cpus=64)
CPU_ONLY = Machine(gpus=0, cpus=2)
IMAGENET_TRAIN = 1_281_167

MINIMAL = """
name = "t"
[launch]
nproc_per_node = 2
device = "cpu"
[data]
source = "synthetic"
[train]
batch_size = 64
"""


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def runs_of(
    path: Path, machine: Machine = EIGHT_GPUS, overrides: Sequence[str] = ()
) -> list[RunConfig]:
    """What `larsbench run --profile path --set ...` expands to, without launching anything."""
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    raw = apply_overrides(raw, [parse_override(o) for o in overrides])
    return expand(parse_profile(raw, str(path)), machine, str(path))


def config_error(path: Path, machine: Machine = CPU_ONLY, overrides: Sequence[str] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        load_profile(path)
        runs_of(path, machine, overrides)
    return str(info.value)


# --- the shipped profiles ----------------------------------------------------------------------

SHIPPED = sorted(PROFILES.glob("*.toml"))


@pytest.mark.parametrize("machine", [EIGHT_GPUS, CPU_ONLY], ids=["8gpus", "cpu-only"])
@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_profile_loads_and_expands(path: Path, machine: Machine) -> None:
    profile = load_profile(path)
    runs = expand(profile, machine, str(path))
    assert runs
    assert len({r.run_id for r in runs}) == len(runs)
    assert profile.name == path.stem  # the default --out is runs/<name>


def test_smoke_expands_to_two_batches_times_sgd_and_larc() -> None:
    runs = runs_of(PROFILES / "smoke.toml", CPU_ONLY)
    assert [r.run_id for r in runs] == [
        "bs64-sgd",
        "bs64-larc-tc0.02",
        "bs512-sgd",
        "bs512-larc-tc0.02",
    ]
    assert [r.lr for r in runs] == pytest.approx([0.025, 0.025, 0.2, 0.2])
    assert {(r.device, r.backend, r.world_size) for r in runs} == {("cpu", "gloo", 2)}


SEED_SGD = [(256, 0.1), (1024, 0.4), (2048, 0.8), (4096, 1.6)]  # SEED.md, "Batch size alone"
SEED_LARC = [  # SEED.md, "LARC", in the table's order
    (1024, 0.4, 1e-3),
    (2048, 0.8, 1e-3),
    (4096, 1.6, 1e-3),
    (1024, 0.4, 2e-2),
    (2048, 0.8, 2e-2),
    (4096, 1.6, 2e-2),
]


def assert_seed_recipe(run: RunConfig) -> None:
    """SEED.md's setup: ResNet50, ImageNet, 8 GPUs one process each, fp16, 90 epochs, 5 warmup,
    StepLR, SGD momentum 0.9, lr = batch / 256 * 0.1."""
    assert run.model.arch == "resnet50" and not run.model.small_input and run.model.width == 1
    assert run.data.source == "imagefolder" and run.data.image_size == 224
    assert (run.device, run.backend, run.nproc_per_node, run.world_size) == ("cuda", "nccl", 8, 8)
    assert run.per_rank_batch == run.train.batch_size // 8
    t = run.train
    assert (t.epochs, t.warmup_epochs, t.schedule, t.step_size, t.gamma) == (90, 5, "step", 30, 0.1)
    assert (t.momentum, t.weight_decay, t.amp, t.channels_last) == (0.9, 1e-4, "fp16", True)
    assert (t.base_lr, t.reference_batch, t.mode, t.max_steps_per_epoch) == (0.1, 256, "train", 0)
    assert run.lr == pytest.approx(scaled_lr(0.1, t.batch_size, 256))


def test_seed_batch_sweep_is_the_seeds_sgd_table() -> None:
    runs = runs_of(PROFILES / "seed-batch-sweep.toml", EIGHT_GPUS)
    assert [(r.train.batch_size, pytest.approx(r.lr)) for r in runs] == SEED_SGD
    assert [r.run_id for r in runs] == ["bs256-sgd", "bs1024-sgd", "bs2048-sgd", "bs4096-sgd"]
    for run in runs:
        assert_seed_recipe(run)
        assert run.optimizer.name == "sgd"


def test_seed_larc_is_the_seeds_larc_table() -> None:
    runs = runs_of(PROFILES / "seed-larc.toml", EIGHT_GPUS)
    got = [(r.train.batch_size, r.lr, r.optimizer.trust_coefficient) for r in runs]
    assert got == [(b, pytest.approx(lr), pytest.approx(tc)) for b, lr, tc in SEED_LARC]
    assert [r.run_id for r in runs][:1] == ["bs1024-larc-tc0.001"]
    assert [r.run_id for r in runs][-1:] == ["bs4096-larc-tc0.02"]
    for run in runs:
        assert_seed_recipe(run)
        assert (run.optimizer.name, run.optimizer.clip, run.optimizer.eps) == ("larc", True, 1e-8)


def test_the_two_seed_profiles_differ_only_in_optimizer_and_batches() -> None:
    sgd = load_profile(PROFILES / "seed-batch-sweep.toml")
    larc = load_profile(PROFILES / "seed-larc.toml")
    for section in ("launch", "model", "data"):
        assert getattr(sgd, section) == getattr(larc, section), section
    assert sgd.train.model_dump(exclude={"batch_size"}) == larc.train.model_dump(
        exclude={"batch_size"}
    )


# --- bad profiles: the message names the file, the key path and what is allowed ---------------


def test_unknown_key_names_file_key_path_and_allowed_keys(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("batch_size = 64", "batch_size = 64\nbatchsize = 64"))
    msg = config_error(path)
    assert msg.startswith(f"{path}: train.batchsize: unknown key")
    assert "batch_size" in msg and "warmup_epochs" in msg and "schedule" in msg


def test_unknown_top_level_key_lists_the_sections(tmp_path: Path) -> None:
    msg = config_error(write(tmp_path, "optimiser = {name = 'larc'}\n" + MINIMAL))
    assert "optimiser: unknown key" in msg
    assert "optimizer" in msg and "sweep" in msg


def test_wrong_literal_names_the_allowed_values(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("batch_size = 64", 'batch_size = 64\namp = "fp8"'))
    msg = config_error(path)
    assert msg.startswith(f"{path}: train.amp:")
    assert "'off'" in msg and "'fp16'" in msg and "'bf16'" in msg and "(got 'fp8')" in msg


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("batch_size = 64", 'batch_size = "sixty-four"'))
    msg = config_error(path)
    assert msg.startswith(f"{path}: train.batch_size:")
    assert "integer" in msg and "(got 'sixty-four')" in msg


def test_every_bad_key_is_reported_at_once(tmp_path: Path) -> None:
    text = MINIMAL.replace("batch_size = 64", "batch_size = 0\nepochs = -1")
    msg = config_error(write(tmp_path, text))
    assert "train.batch_size:" in msg and "train.epochs:" in msg


def test_out_of_range_value_names_the_bound(tmp_path: Path) -> None:
    msg = config_error(write(tmp_path, MINIMAL.replace("batch_size = 64", "momentum = 1.0")))
    assert "train.momentum: Input should be less than 1 (got 1.0)" in msg


def test_bool_is_not_taken_for_an_int(tmp_path: Path) -> None:
    msg = config_error(write(tmp_path, MINIMAL.replace("batch_size = 64", "epochs = true")))
    assert "train.epochs" in msg


def test_imagefolder_without_path_is_rejected(tmp_path: Path) -> None:
    msg = config_error(write(tmp_path, MINIMAL.replace('"synthetic"', '"imagefolder"')))
    assert "data:" in msg and "path" in msg


def test_empty_sweep_list_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '[sweep]\n"train.batch_size" = []\n')
    msg = config_error(path)
    assert msg.startswith(str(path)) and "sweep: 'train.batch_size' has an empty list" in msg


@pytest.mark.parametrize("key", ["train.batchsize", "training.batch_size", "train.a.b", "lr"])
def test_sweep_key_naming_no_setting(tmp_path: Path, key: str) -> None:
    msg = config_error(write(tmp_path, MINIMAL + f'[sweep]\n"{key}" = [1, 2]\n'))
    assert f"sweep: {key!r} names no setting" in msg
    assert "launch, model, data, train, optimizer" in msg


def test_bad_value_in_a_sweep_names_the_run(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '[sweep]\n"train.amp" = ["off", "fp8"]\n')
    msg = config_error(path)
    assert msg.startswith(f"{path}: train.amp:") and "(got 'fp8')" in msg
    assert "in the sweep run with train.amp='fp8'" in msg


def test_unknown_key_in_a_sweep_table_lists_the_sections_keys(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[sweep]\noptimizer = [{name = 'larc', tc = 0.02}]\n")
    msg = config_error(path)
    assert "optimizer.tc: unknown key" in msg and "trust_coefficient" in msg


def test_sweep_section_value_that_is_not_a_table_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[sweep]\noptimizer = ['larc']\n")
    msg = config_error(path)
    assert "each value must be a table" in msg
    assert msg.startswith(str(path)) and "'larc'" in msg


def test_batch_not_divisible_by_world_size(tmp_path: Path) -> None:
    path = PROFILES / "seed-batch-sweep.toml"
    msg = config_error(path, EIGHT_GPUS, ["launch.nproc_per_node=3"])
    assert msg.startswith(f"{path}: train.batch_size: 256 does not divide by the world size 3")
    assert "run bs256-sgd" in msg


def test_fp16_on_a_cpu_machine(tmp_path: Path) -> None:
    path = PROFILES / "seed-batch-sweep.toml"
    msg = config_error(path, CPU_ONLY, ["launch.device=auto", "launch.nproc_per_node=auto"])
    assert "train.amp: fp16 needs CUDA" in msg and "'bf16', 'off'" in msg
    # the same profile is fine where "auto" finds GPUs
    assert runs_of(path, EIGHT_GPUS, ["launch.device=auto", "launch.nproc_per_node=auto"])


def test_nccl_on_cpu_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace('device = "cpu"', 'device = "cpu"\nbackend = "nccl"'))
    assert "launch.backend: nccl needs CUDA" in config_error(path)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[train\nepochs = 1\n")
    msg = config_error(path)
    assert msg.startswith(f"{path}: not valid TOML")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read the profile"):
        load_profile(path)


# --- --set --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "key", "value"),
    [
        ("train.epochs=5", "train.epochs", 5),
        ("train.base_lr=0.05", "train.base_lr", 0.05),
        ("optimizer.eps=1e-3", "optimizer.eps", 0.001),
        ("train.channels_last=false", "train.channels_last", False),
        ("sweep.train.batch_size=[64, 128]", "sweep.train.batch_size", [64, 128]),
        (
            'sweep.optimizer=[{name="larc", trust_coefficient=0.001}]',
            "sweep.optimizer",
            [{"name": "larc", "trust_coefficient": 0.001}],
        ),
        ('optimizer.name="larc"', "optimizer.name", "larc"),
        ("optimizer.name=larc", "optimizer.name", "larc"),  # not TOML: taken as a string
        ("data.path=/data/imagenet", "data.path", "/data/imagenet"),
        ("launch.rdzv_endpoint=node0:29500", "launch.rdzv_endpoint", "node0:29500"),
        (" train.epochs = 7 ", "train.epochs", 7),
        ("description=a=b", "description", "a=b"),  # only the first = splits
    ],
)
def test_parse_override_reads_values_as_toml(item: str, key: str, value: Any) -> None:
    got = parse_override(item)
    assert got == (key, value)
    assert type(got[1]) is type(value)


@pytest.mark.parametrize("item", ["train.epochs", "=5", " =5", ""])
def test_parse_override_needs_key_equals_value(item: str) -> None:
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_override(item)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("training.epochs=5", "expected section.key with section one of launch, model"),
        ("train.epoch=5", "unknown key; allowed in train: epochs, batch_size"),
        ("train.epochs.x=5", "expected section.key"),
        ("train=5", "expected section.key"),
        ("sweep.train.epoch=[1]", "'train.epoch' names no setting"),
    ],
)
def test_unknown_override_key_is_rejected(item: str, message: str) -> None:
    with pytest.raises(ConfigError, match="^--set " + item.split("=")[0]) as info:
        apply_overrides({"name": "t"}, [parse_override(item)])
    assert message in str(info.value)


def test_overrides_do_not_touch_the_raw_profile() -> None:
    raw = tomllib.loads((PROFILES / "smoke.toml").read_text())
    before = repr(raw)
    out = apply_overrides(raw, [("train.epochs", 1), ("sweep.train.batch_size", [8])])
    assert repr(raw) == before
    assert out["train"]["epochs"] == 1 and out["sweep"]["train.batch_size"] == [8]


def test_set_key_leaves_the_sweep() -> None:
    runs = runs_of(PROFILES / "seed-batch-sweep.toml", overrides=["train.batch_size=1024"])
    assert [(r.run_id, r.train.batch_size) for r in runs] == [("bs1024-sgd", 1024)]
    assert runs[0].lr == pytest.approx(0.4)


def test_set_sweep_replaces_the_list_and_a_scalar_becomes_one_value() -> None:
    path = PROFILES / "seed-larc.toml"
    runs = runs_of(path, overrides=["sweep.train.batch_size=[512, 8192]"])
    assert [r.run_id for r in runs] == [
        "bs512-larc-tc0.001",
        "bs8192-larc-tc0.001",
        "bs512-larc-tc0.02",
        "bs8192-larc-tc0.02",
    ]
    runs = runs_of(path, overrides=["sweep.optimizer={name='larc', trust_coefficient=0.01}"])
    assert [r.run_id for r in runs] == [
        "bs1024-larc-tc0.01",
        "bs2048-larc-tc0.01",
        "bs4096-larc-tc0.01",
    ]


def test_set_applies_to_every_run_and_is_validated() -> None:
    path = PROFILES / "smoke.toml"
    runs = runs_of(path, CPU_ONLY, ["train.epochs=1", "data.workers=2"])
    assert {(r.train.epochs, r.data.workers) for r in runs} == {(1, 2)}
    with pytest.raises(ConfigError, match=r"train\.epochs: Input should be greater than"):
        runs_of(path, CPU_ONLY, ["train.epochs=0"])


def test_set_key_wins_over_a_sweep_table_that_sets_it() -> None:
    runs = runs_of(PROFILES / "smoke.toml", CPU_ONLY, ["optimizer.trust_coefficient=0.001"])
    larc = [r for r in runs if r.optimizer.name == "larc"]
    assert larc and {r.optimizer.trust_coefficient for r in larc} == {0.001}


# --- sweep expansion and run ids ---------------------------------------------------------------

SWEEP_2X2 = MINIMAL + (
    '[sweep]\n"train.batch_size" = [64, 512]\n'
    "optimizer = [{name = 'sgd'}, {name = 'larc', trust_coefficient = 0.02}]\n"
)


def test_sweep_is_the_cartesian_product_in_written_order(tmp_path: Path) -> None:
    first = runs_of(write(tmp_path, SWEEP_2X2), CPU_ONLY)
    assert [r.run_id for r in first] == [
        "bs64-sgd",
        "bs64-larc-tc0.02",
        "bs512-sgd",
        "bs512-larc-tc0.02",
    ]
    swapped = MINIMAL + (
        "[sweep]\noptimizer = [{name = 'sgd'}, {name = 'larc', trust_coefficient = 0.02}]\n"
        '"train.batch_size" = [64, 512]\n'
    )
    second = runs_of(write(tmp_path, swapped, "q.toml"), CPU_ONLY)
    assert [r.run_id for r in second] == [
        "bs64-sgd",
        "bs512-sgd",
        "bs64-larc-tc0.02",
        "bs512-larc-tc0.02",
    ]


def test_section_tables_merge_onto_the_base(tmp_path: Path) -> None:
    text = SWEEP_2X2.replace("[sweep]", "[optimizer]\neps = 1e-6\nstats_every = 7\n[sweep]")
    runs = runs_of(write(tmp_path, text), CPU_ONLY)
    larc = runs[1].optimizer
    assert (larc.name, larc.trust_coefficient, larc.eps, larc.stats_every) == (
        "larc",
        0.02,
        1e-6,
        7,
    )
    assert runs[0].optimizer.eps == 1e-6  # keys a table leaves out keep the base's value
    assert runs[1].swept == {
        "train.batch_size": 64,
        "optimizer": {"name": "larc", "trust_coefficient": 0.02},
    }


def test_other_swept_keys_join_the_id(tmp_path: Path) -> None:
    text = MINIMAL + (
        '[sweep]\n"train.base_lr" = [0.1, 0.2]\n"train.amp" = ["off", "bf16"]\n'
        '"optimizer.clip" = [true]\n"data.image_size" = [32]\n'
    )
    ids = [r.run_id for r in runs_of(write(tmp_path, text), CPU_ONLY)]
    assert ids == [
        "bs64-sgd-lr0.1-ampoff-clipon-imagesize32",
        "bs64-sgd-lr0.1-ampbf16-clipon-imagesize32",
        "bs64-sgd-lr0.2-ampoff-clipon-imagesize32",
        "bs64-sgd-lr0.2-ampbf16-clipon-imagesize32",
    ]


def test_run_ids_are_stable(tmp_path: Path) -> None:
    path = write(tmp_path, SWEEP_2X2)
    ids = [r.run_id for r in runs_of(path, CPU_ONLY)]
    assert [r.run_id for r in runs_of(path, CPU_ONLY)] == ids
    # neither the machine nor keys outside the id change it (completed runs are found by id)
    assert [r.run_id for r in runs_of(path, EIGHT_GPUS, ["train.epochs=3"])] == ids
    base = Profile(name="x")
    assert run_id_for(base.train, base.optimizer, {}) == "bs256-sgd"
    larc = base.optimizer.model_copy(update={"name": "larc", "trust_coefficient": 1e-3})
    assert run_id_for(base.train, larc, {}) == "bs256-larc-tc0.001"


@pytest.mark.parametrize(
    "sweep",
    [
        '"optimizer.eps" = [1e-8, 1.000001e-8]',  # both print as 1e-08
        "optimizer = [{name = 'sgd'}, {name = 'sgd', trust_coefficient = 0.1}]",
    ],
)
def test_duplicate_run_ids_are_rejected(tmp_path: Path, sweep: str) -> None:
    path = write(tmp_path, MINIMAL + "[sweep]\n" + sweep + "\n")
    msg = config_error(path)
    assert msg.startswith(f"{path}: sweep gives several runs the same id: bs64-sgd")


def test_a_value_listed_twice_in_a_sweep_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '[sweep]\n"train.batch_size" = [64, 128, 64]\n')
    with pytest.raises(ConfigError, match=r"p.toml: sweep: 'train.batch_size' lists 64 twice"):
        runs_of(path, CPU_ONLY)


def test_optimizer_tables_differing_in_clip_get_distinct_ids(tmp_path: Path) -> None:
    text = MINIMAL + (
        "[sweep]\noptimizer = [{name = 'larc', clip = true}, {name = 'larc', clip = false}]\n"
    )
    runs = runs_of(write(tmp_path, text), CPU_ONLY)
    assert [r.optimizer.clip for r in runs] == [True, False]


def test_no_sweep_is_one_run(tmp_path: Path) -> None:
    runs = runs_of(write(tmp_path, MINIMAL), CPU_ONLY)
    assert [(r.run_id, r.swept) for r in runs] == [("bs64-sgd", {})]
    assert runs[0].lr == pytest.approx(0.025)


# --- "auto" -------------------------------------------------------------------------------------

AUTO = 'name = "a"\n[train]\nbatch_size = 64\n'


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        (Machine(gpus=8, cpus=64), ("cuda", "nccl", 8, 4)),  # threads: 64 // 8, at most 4
        (Machine(gpus=2, cpus=4), ("cuda", "nccl", 2, 2)),
        (Machine(gpus=0, cpus=2), ("cpu", "gloo", 2, 1)),
        (Machine(gpus=0, cpus=32), ("cpu", "gloo", 4, 8)),  # ranks capped at 4
        (Machine(gpus=0, cpus=1), ("cpu", "gloo", 1, 1)),
    ],
)
def test_auto_resolves_from_the_machine(
    tmp_path: Path, machine: Machine, expected: tuple[str, str, int, int]
) -> None:
    (run,) = runs_of(write(tmp_path, AUTO), machine)
    assert (run.device, run.backend, run.nproc_per_node, run.threads_per_rank) == expected


# --- step plans and data sizes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch", "steps", "warmup"),
    [(256, 5004, 25020), (1024, 1251, 6255), (2048, 625, 3125), (4096, 312, 1560)],
)
def test_plan_run_on_imagenet_at_world_8(batch: int, steps: int, warmup: int) -> None:
    (run,) = runs_of(PROFILES / "seed-batch-sweep.toml", overrides=[f"train.batch_size={batch}"])
    plan = plan_run(run, IMAGENET_TRAIN, 50_000)
    assert (plan.steps_per_epoch, plan.warmup_steps, plan.total_steps) == (
        steps,
        warmup,
        90 * steps,
    )


def test_plan_run_pads_per_rank_drops_the_last_batch_and_caps() -> None:
    one_run = ["train.batch_size=64", "sweep.optimizer=[{name='sgd'}]"]
    (run,) = runs_of(PROFILES / "smoke.toml", CPU_ONLY, [*one_run, "train.warmup_epochs=0.5"])
    # 1437 images over 2 ranks: 719 each (one padded), 32 per rank -> 22 whole batches
    plan = plan_run(run, 1437, 360)
    assert (plan.steps_per_epoch, plan.total_steps, plan.warmup_steps) == (22, 220, 11)
    assert plan_run(run, 63, 10).steps_per_epoch == 1  # padded to 32 per rank
    assert plan_run(run, 62, 10).steps_per_epoch == 0  # 31 per rank: no whole batch
    (capped,) = runs_of(
        PROFILES / "smoke.toml", CPU_ONLY, [*one_run, "train.max_steps_per_epoch=5"]
    )
    assert plan_run(capped, 1437, 360).steps_per_epoch == 5


def test_dataset_sizes_of_digits_and_synthetic() -> None:
    assert dataset_sizes(DataConfig(source="digits")) == (1437, 360)
    assert dataset_sizes(DataConfig(source="digits", val_fraction=0.5)) == (898, 899)
    synthetic = DataConfig(source="synthetic", synthetic_train_images=100, synthetic_val_images=7)
    assert dataset_sizes(synthetic) == (100, 7)


def test_dataset_sizes_counts_an_imagefolder_without_opening_images(tmp_path: Path) -> None:
    files = [
        "train/n01/a.jpg",
        "train/n01/b.JPEG",
        "train/n02/c.png",
        "train/n02/nested/d.webp",
        "train/n02/notes.txt",  # not an image
        "val/n01/e.jpg",
        "val/n02/f.jpeg",
    ]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")  # empty: counting must not decode them
    assert dataset_sizes(DataConfig(source="imagefolder", path=str(tmp_path))) == (4, 2)


def test_dataset_sizes_is_none_when_the_folder_is_not_there(tmp_path: Path) -> None:
    assert dataset_sizes(DataConfig(source="imagefolder", path=str(tmp_path / "nope"))) is None
    (tmp_path / "train").mkdir()
    assert dataset_sizes(DataConfig(source="imagefolder", path=str(tmp_path))) is None  # no val/


# --- the docs keep up with the models -----------------------------------------------------------


def test_docs_describe_every_key_and_every_shipped_profile() -> None:
    from larsbench.profile.schema import SECTIONS

    text = DOCS.read_text(encoding="utf-8")
    for section, model in SECTIONS.items():
        start = text.index(f"### `[{section}]`")
        end = text.find("\n### ", start + 1)
        body = text[start : end if end > 0 else len(text)]
        for key in model.model_fields:
            assert f"| `{key}` |" in body, f"docs/profiles.md: [{section}] lacks {key}"
    for path in SHIPPED:
        assert f"`{path.name}`" in text, f"docs/profiles.md: no row for {path.name}"


# --- larsbench run --dry-run --------------------------------------------------------------------


def test_dry_run_of_seed_batch_sweep_here(capsys: pytest.CaptureFixture[str]) -> None:
    if Machine.here().gpus:
        pytest.skip("this test is about a machine without GPUs")
    path = PROFILES / "seed-batch-sweep.toml"
    code = cli.main(["run", "--profile", str(path), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "seed-batch-sweep: 4 runs" in out
    for run_id in ("bs256-sgd", "bs1024-sgd", "bs2048-sgd", "bs4096-sgd"):
        assert run_id in out
    assert "no GPU is visible here" in out
    assert "data.path '/data/imagenet' has no train/ and val/ here" in out
    assert "error" not in out


def test_dry_run_refuses_a_batch_that_does_not_divide(capsys: pytest.CaptureFixture[str]) -> None:
    path = PROFILES / "seed-batch-sweep.toml"
    code = cli.main(
        ["run", "--profile", str(path), "--dry-run", "--set", "launch.nproc_per_node=3"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "train.batch_size: 256 does not divide by the world size 3" in err
    assert str(path) in err and "with --set" in err


def test_dry_run_refuses_a_set_without_equals(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["run", "--profile", str(PROFILES / "smoke.toml"), "--dry-run", "--set", "x"])
    assert code == 2
    assert "--set 'x': expected KEY=VALUE" in capsys.readouterr().err


def test_dali_needs_files_but_a_synthetic_throughput_run_drops_it() -> None:
    with pytest.raises(ConfigError, match='data: loader "dali" reads image files'):
        parse_profile({"name": "t", "data": {"source": "synthetic", "loader": "dali"}})
    profile = parse_profile(
        {
            "name": "t",
            "launch": {"device": "cpu", "nproc_per_node": 1},
            "data": {"source": "digits", "loader": "dali", "image_size": 8},
            "train": {"mode": "throughput", "batch_size": 8},
        }
    )
    (run,) = expand(profile, Machine(gpus=0, cpus=2))
    assert (run.data.source, run.data.loader) == ("synthetic", "torch")
    real = parse_profile(
        {
            "name": "t",
            "launch": {"device": "cpu", "nproc_per_node": 1},
            "data": {"source": "digits", "loader": "dali", "image_size": 8},
            "train": {"mode": "throughput", "throughput_data": "real", "batch_size": 8},
        }
    )
    (run,) = expand(real, Machine(gpus=0, cpus=2))
    assert (run.data.source, run.data.loader) == ("digits", "dali")
    assert run.train.throughput_epoch_images == 1437


def test_accumulation_keeps_the_effective_batch_and_its_lr_and_shows_in_the_dry_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    smoke = PROFILES / "smoke.toml"
    plain = runs_of(smoke, CPU_ONLY)
    accumulating = runs_of(smoke, CPU_ONLY, ["train.accumulate_steps=2"])
    for a, b in zip(plain, accumulating, strict=True):
        assert (b.train.batch_size, b.per_rank_batch, b.lr) == (
            a.train.batch_size,
            a.per_rank_batch,
            a.lr,
        )  # the linear rule on the effective batch
        assert b.micro_batch == a.per_rank_batch // 2
        assert b.to_dict()["micro_batch"] == b.micro_batch
    code = cli.main(
        ["run", "--profile", str(smoke), "--dry-run", "--set", "train.accumulate_steps=2"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "32 = 2 x 16" in out and "256 = 2 x 128" in out  # bs 64 and 512 over 2 ranks


def test_accumulation_that_does_not_divide_the_per_rank_batch_is_refused() -> None:
    message = config_error(PROFILES / "smoke.toml", CPU_ONLY, ["train.accumulate_steps=3"])
    assert "train.accumulate_steps: 3 does not divide the per-rank batch 32" in message

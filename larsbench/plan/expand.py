"""Sweep expansion: a profile's sweep lists -> their cartesian product of resolved runs."""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from larsbench.plan.machine import Machine, resolve_launch
from larsbench.plan.run import RunConfig, check_run, scaled_lr
from larsbench.plan.runids import RUN_ID_MAX, run_id_for
from larsbench.plan.throughput import throughput_variant
from larsbench.profile.errors import ConfigError, ConfigProblem
from larsbench.profile.loading import validation_problems
from larsbench.profile.schema import SECTIONS, Profile


def _set_dotted(data: dict[str, Any], key: str, value: Any, source: str) -> None:
    parts = key.split(".")
    if len(parts) == 1:
        if not isinstance(value, dict):
            raise ConfigError.at(
                source,
                f"sweep.{key}",
                f"each value must be a table of {key} keys, e.g. {{name = 'sgd'}} (got {value!r})",
            )
        data.setdefault(key, {}).update(value)
    else:
        data.setdefault(parts[0], {})[parts[1]] = value


def _distinct(runs: list[RunConfig]) -> list[RunConfig]:
    """Runs that train exactly the same thing once (e.g. after --set fixed a swept key)."""
    seen: set[str] = set()
    out = []
    for run in runs:
        same = {k: v for k, v in run.to_dict().items() if k not in ("run_id", "swept")}
        key = json.dumps(same, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(run)
    return out


def _varying_table_keys(keys: list[str], profiles: list[Profile]) -> list[str]:
    """`section.key` for the keys inside swept section tables whose values differ by run."""
    out = []
    for key in keys:
        if "." in key:
            continue
        for name in SECTIONS[key].model_fields:
            values = {repr(getattr(getattr(p, key), name)) for p in profiles}
            if len(values) > 1:
                out.append(f"{key}.{name}")
    return out


def _in_the_run(err: ValidationError, source: str, swept: dict[str, Any]) -> ConfigError:
    """A swept run's validation errors, with the sweep values that made the run."""
    where = ", ".join(f"{k}={v!r}" for k, v in swept.items())
    problems = validation_problems(err, source)
    context = f"(in the sweep run with {where})"
    text = "\n".join(p.line for p in problems) + f"\n  {context}"
    return ConfigError(text, [replace(p, line=f"{p.line} {context}") for p in problems])


def expand(profile: Profile, machine: Machine, source: str = "<profile>") -> list[RunConfig]:
    """The sweep's runs: the cartesian product of the sweep lists, in the order written."""
    base = profile.model_dump(exclude={"sweep"})
    keys = list(profile.sweep)
    combos = []
    for combo in itertools.product(*(profile.sweep[k] for k in keys)):
        data = copy.deepcopy(base)
        for key, value in zip(keys, combo, strict=True):
            _set_dotted(data, key, value, source)
        swept = dict(zip(keys, combo, strict=True))
        try:
            combos.append((Profile.model_validate(data), swept))
        except ValidationError as err:
            raise _in_the_run(err, source, swept) from None
    varying = _varying_table_keys(keys, [p for p, _ in combos])
    runs: list[RunConfig] = []
    for p, swept in combos:
        if p.train.mode == "throughput":
            p = throughput_variant(p)
        device, backend, nproc, threads = resolve_launch(p.launch, machine)
        if p.train.batch_per_rank:
            batch = p.train.batch_per_rank * nproc * p.launch.nnodes
            p = p.model_copy(update={"train": p.train.model_copy(update={"batch_size": batch})})
        run = RunConfig(
            run_id=run_id_for(
                p.train,
                p.optimizer,
                swept,
                {k: getattr(getattr(p, k.split(".")[0]), k.split(".")[1]) for k in varying},
            ),
            profile_name=p.name,
            launch=p.launch,
            model=p.model,
            data=p.data,
            train=p.train,
            optimizer=p.optimizer,
            device=device,
            backend=backend,
            nproc_per_node=nproc,
            threads_per_rank=threads,
            lr=scaled_lr(p.train.base_lr, p.train.batch_size, p.train.reference_batch),
            swept=swept,
        )
        check_run(run, source)
        runs.append(run)
    return _checked_ids(_distinct(runs), source)


def _checked_ids(runs: list[RunConfig], source: str) -> list[RunConfig]:
    """The runs, when their ids are short enough and distinct; else ConfigError."""
    long = [r.run_id for r in runs if len(r.run_id) > RUN_ID_MAX]
    if long:
        raise ConfigError.at(
            source,
            "sweep",
            f"run id {long[0][:60]!r}... is {len(long[0])} characters "
            f"(limit {RUN_ID_MAX}); shorten the swept values",
        )
    ids = [r.run_id for r in runs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        line = f"{source}: sweep gives several runs the same id: {', '.join(dupes)}"
        message = f"several runs get the same id: {', '.join(dupes)}"
        raise ConfigError.of(ConfigProblem("sweep", message, line))
    return runs

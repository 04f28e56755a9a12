"""The configure form's model (pure): field texts -> overrides -> the CLI's validator -> preview."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from larsbench.plan.expand import expand
from larsbench.plan.machine import Machine
from larsbench.plan.run import RunConfig
from larsbench.plan.steps import planned_steps
from larsbench.profile.errors import ConfigError
from larsbench.profile.loading import parse_profile
from larsbench.profile.overrides import apply_overrides, parse_override, parse_value
from larsbench.profile.schema import SECTIONS
from larsbench.tui.form_fields import EXTRA, FIELD_KEYS, FIELDS, OPTIMIZER, FieldSpec
from larsbench.tui.tomltext import toml_value

SOURCE = "form"  # the `source` the validator names in its messages


@dataclass(frozen=True)
class PreviewRow:
    """One expanded run as the preview table shows it."""

    run_id: str
    batch_size: int
    world_size: int
    per_rank_batch: int
    lr: float
    optimizer: str
    trust_coefficient: float | None
    epochs: int
    steps_per_epoch: int | None  # a throughput run: of the epoch its timed steps project to
    warmup_steps: int | None
    throughput_steps: int | None = None  # a throughput run: all its steps, warm-up + timed


@dataclass
class FormResult:
    """What validating the form gave: errors per field and in general, or the runs."""

    errors: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)
    runs: list[RunConfig] = field(default_factory=list)
    rows: list[PreviewRow] = field(default_factory=list)
    overrides: list[tuple[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.general and bool(self.runs)

    def set_args(self) -> list[str]:
        """The overrides as `larsbench run --set` arguments."""
        return [f"{key}={toml_value(value)}" for key, value in self.overrides]


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return toml_value(value)
    return str(value)


def split_list(text: str) -> list[str]:
    """Split at commas outside brackets and quotes: "[1, 2], 3" -> ["[1, 2]", "3"]."""
    parts, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur).strip())
    return parts


def _default(key: str) -> Any:
    section, name = key.split(".")
    return SECTIONS[section].model_fields[name].default


class ProfileForm:
    """Holds a raw profile; turns edited field texts into overrides and validates them."""

    def __init__(self, raw: dict[str, Any], machine: Machine) -> None:
        self.raw = copy.deepcopy(raw)
        self.machine = machine
        self.sweep: dict[str, Any] = dict(raw.get("sweep") or {})
        self.initial: dict[str, Any] = {spec.key: self._initial(spec) for spec in FIELDS}

    def kind(self, spec: FieldSpec) -> str:
        """Swept choice or bool fields become text fields holding the list."""
        return "text" if spec.key in self.sweep and spec.kind != "text" else spec.kind

    def _value(self, key: str) -> Any:
        section, name = key.split(".")
        table = self.raw.get(section)
        if isinstance(table, dict) and name in table:
            return table[name]
        return _default(key)

    def _initial(self, spec: FieldSpec) -> Any:
        if spec.key == OPTIMIZER:
            return self._initial_optimizer()
        if spec.key in self.sweep and isinstance(self.sweep[spec.key], list):
            return ", ".join(_fmt(v) for v in self.sweep[spec.key])
        value = self._value(spec.key)
        if spec.kind == "bool":
            return bool(value)
        return _fmt(value)

    def _initial_optimizer(self) -> str:
        tables = self.sweep.get(OPTIMIZER)
        if isinstance(tables, list):
            items = []
            for t in tables:
                if not isinstance(t, dict):
                    return toml_value(tables)
                item = str(t.get("name", self._value("optimizer.name")))
                if "trust_coefficient" in t:
                    item += f":{_fmt(t['trust_coefficient'])}"
                items.append(item)
            return ", ".join(items)
        names = self.sweep.get("optimizer.name")
        if isinstance(names, list):
            return ", ".join(str(n) for n in names)
        return str(self._value("optimizer.name"))

    # --- texts -> overrides ------------------------------------------------------------------

    def _optimizer_overrides(self, text: str) -> list[tuple[str, Any]]:
        tables = []
        for item in split_list(text):
            if not item:
                raise ValueError("empty item: give sgd, larc or larc:TC, comma separated")
            name, _, tc = item.partition(":")
            table: dict[str, Any] = {"name": name.strip()}
            if tc.strip():
                value = parse_value(tc.strip())
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"{item!r}: the trust coefficient after ':' is not a number")
                table["trust_coefficient"] = value
            tables.append(table)
        if len(tables) == 1 and OPTIMIZER not in self.sweep:
            return [(f"optimizer.{k}", v) for k, v in tables[0].items()]
        return [(f"sweep.{OPTIMIZER}", tables)]

    def _overrides_for(self, spec: FieldSpec, value: Any) -> list[tuple[str, Any]]:
        if spec.key == OPTIMIZER:
            return self._optimizer_overrides(str(value))
        if isinstance(value, bool):
            return [(spec.key, value)]
        text = str(value).strip()
        if not text and spec.key != "data.path":
            raise ValueError("empty: give a value")
        if not spec.sweepable:
            return [(spec.key, parse_value(text) if text else "")]
        items = split_list(text)
        if any(not i for i in items):
            raise ValueError("empty item in the list")
        values = [parse_value(i) for i in items]
        if len(values) > 1:
            return [(f"sweep.{spec.key}", values)]
        if spec.key in self.sweep:
            # One value where the profile sweeps: keep it a one-run sweep (same run ids).
            return [(f"sweep.{spec.key}", values)]
        return [(spec.key, values[0])]

    def validate(self, values: dict[str, Any], extra: str = "") -> FormResult:
        """Validate edited values (field key -> text or bool) exactly as `larsbench run` would."""
        result = FormResult()
        overrides: list[tuple[str, Any]] = []
        for spec in FIELDS:
            value = values.get(spec.key, self.initial[spec.key])
            if value == self.initial[spec.key]:
                continue
            try:
                overrides += self._overrides_for(spec, value)
            except ValueError as err:
                result.errors[spec.key] = str(err)
        for item in (i.strip() for i in extra.split(";")):
            if not item:
                continue
            try:
                overrides.append(parse_override(item))
            except ConfigError as err:
                result.errors[EXTRA] = str(err)
        result.overrides = overrides
        if result.errors:
            return result
        try:
            raw = apply_overrides(self.raw, overrides, source=SOURCE)
            result.raw = raw
            profile = parse_profile(raw, SOURCE)
            runs = expand(profile, self.machine, SOURCE)
        except ConfigError as err:
            self._place_errors(err, result)
            return result
        result.runs = runs
        result.rows = [_preview(r) for r in runs]
        return result

    def _place_errors(self, err: ConfigError, result: FormResult) -> None:
        """Each problem on the field of its key; the others as whole lines above the preview."""
        for problem in err.problems:
            target = _field_for(problem.key)
            if target is None:
                result.general.append(problem.line)
            elif target not in result.errors:
                result.errors[target] = problem.message


def _field_for(key: str) -> str | None:
    """The form field that edits `key` (a sweep of it included), else None."""
    key = ".".join(key.removeprefix("sweep.").split(".")[:2])
    if key in FIELD_KEYS:
        return key
    if key in ("optimizer.name", OPTIMIZER):
        return OPTIMIZER
    return None


def _preview(run: RunConfig) -> PreviewRow:
    plan = planned_steps(run, count_folders=False)  # counting an ImageFolder walks the tree
    return PreviewRow(
        run_id=run.run_id,
        batch_size=run.train.batch_size,
        world_size=run.world_size,
        per_rank_batch=run.per_rank_batch,
        lr=run.lr,
        optimizer=run.optimizer.name,
        trust_coefficient=run.optimizer.trust_coefficient if run.optimizer.name == "larc" else None,
        epochs=run.train.epochs,
        steps_per_epoch=plan.steps_per_epoch if plan else None,
        warmup_steps=plan.warmup_steps if plan else None,
        throughput_steps=plan.total_steps if run.train.mode == "throughput" and plan else None,
    )

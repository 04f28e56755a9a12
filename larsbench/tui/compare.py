"""Several runs' curves for the results screen: folded by RunState, overlaid, smoothed, grouped.

The events are read with `larsbench.events.RunTail` and folded with `live.run_state.RunState`, the
same reader and fold as the live screen; this module only reshapes the folded curves (x in
epochs, so that runs with different batch sizes line up) and has no Textual in it.
"""

from __future__ import annotations

import bisect
import json
import math
import statistics
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from larsbench.events import RunTail
from larsbench.format import finite
from larsbench.live.run_state import RunState
from larsbench.live.series import EMPTY_CURVE, Curve
from larsbench.live.trust_history import TrustView
from larsbench.live.views import RunView
from larsbench.rundir import RunPaths, SweepPaths, read_json

# The metrics `m` cycles through on the results screen, with their chart titles.
METRICS: dict[str, str] = {
    "top1": "top-1 % by epoch",
    "loss": "training loss",
    "lr": "learning rate",
    "ips": "img/s",
    "trust": "LARC: median trust factor over layers",
}
SMOOTHING = (0.0, 0.6, 0.9)  # the weights `S` cycles through (TensorBoard's slider)
NO_GROUP = ""

# Config keys that differ between runs without being a choice of the sweep.
_NOT_SWEPT = {"run_id"}
# Short names of the usual swept keys (any other key is shown as its path).
KEY_LABELS = {
    "train.batch_size": "batch",
    "optimizer.name": "optimizer",
    "optimizer.trust_coefficient": "tc",
    "lr": "lr",
    "train.base_lr": "base lr",
    "train.epochs": "epochs",
    "model.arch": "model",
}


@dataclass(frozen=True)
class RunCurves:
    """One run's curves for comparison; every x is in epochs (fractional for step curves)."""

    run_id: str
    optimizer: str = ""
    curves: Mapping[str, Curve] = field(default_factory=dict)

    def curve(self, metric: str) -> Curve:
        return self.curves.get(metric, EMPTY_CURVE)


def _in_epochs(curve: Curve, steps_per_epoch: int) -> Curve:
    if steps_per_epoch <= 0 or not curve.xs:
        return curve
    return Curve(tuple(x / steps_per_epoch for x in curve.xs), curve.ys, curve.version)


def median_trust_curve(trust: TrustView | None) -> Curve:
    """Per trust snapshot column, the median over layers of LARC's applied factor (x: step)."""
    if trust is None:
        return EMPTY_CURVE
    xs, ys = [], []
    for step, column in zip(trust.steps, trust.log_factors, strict=False):
        logs = [v for v in column if v == v]
        if logs:
            xs.append(float(step))
            ys.append(10 ** statistics.median(logs))
    return Curve(tuple(xs), tuple(ys), trust.version)


def run_curves(view: RunView) -> RunCurves:
    """The comparable curves of one folded run."""
    spe = view.steps_per_epoch
    curves = {
        "top1": view.top1_curve,
        "loss": _in_epochs(view.loss_curve, spe),
        "lr": _in_epochs(view.lr_curve, spe),
        "ips": _in_epochs(view.ips_curve, spe),
        "trust": _in_epochs(median_trust_curve(view.trust), spe),
    }
    return RunCurves(view.run_id, view.optimizer, curves)


def smooth(curve: Curve, weight: float) -> Curve:
    """TensorBoard's smoothing: an exponential moving average, debiased at the start."""
    if weight <= 0 or len(curve.ys) < 2:
        return curve
    out, last = [], 0.0
    for n, y in enumerate(curve.ys, start=1):
        last = last * weight + (1 - weight) * y
        out.append(last / (1 - weight**n))
    return Curve(curve.xs, tuple(out), curve.version)


def _interp(curve: Curve, x: float) -> float:
    """The curve's value at x by linear interpolation; NaN outside its range."""
    xs, ys = curve.xs, curve.ys
    if not xs or x < xs[0] or x > xs[-1]:
        return math.nan
    i = bisect.bisect_left(xs, x)
    if xs[i] == x:
        return ys[i]
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def mean_curve(curves: Sequence[Curve]) -> Curve:
    """The mean of several curves on the x grid of the longest one; at each x, the mean of
    the curves that reach it (linear interpolation between their points)."""
    drawn = [c for c in curves if c.xs]
    if not drawn:
        return EMPTY_CURVE
    if len(drawn) == 1:
        return drawn[0]
    grid = max(drawn, key=lambda c: len(c.xs)).xs
    xs, ys = [], []
    for x in grid:
        values = [v for v in (_interp(c, x) for c in drawn) if v == v]
        if values:
            xs.append(x)
            ys.append(sum(values) / len(values))
    return Curve(tuple(xs), tuple(ys), hash(tuple(c.version for c in drawn)))


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, path + "."))
        else:
            out[path] = json.dumps(value, sort_keys=True)
    return out


def group_value(config: Mapping[str, Any], key: str) -> str:
    """A run's value of a config key path, as text; a trust coefficient only counts for LARC."""
    flat = _flatten(config)
    if key == "optimizer.trust_coefficient":
        optimizer = config.get("optimizer")
        if isinstance(optimizer, Mapping) and optimizer.get("name") != "larc":
            return "none"
    raw = flat.get(key)
    if raw is None:
        return "n/a"
    value = json.loads(raw)
    return f"{value:g}" if finite(value) else str(value)


def swept_keys(configs: Iterable[Mapping[str, Any]]) -> list[str]:
    """The config key paths whose values differ between runs, the usual swept keys first."""
    flats = [_flatten(c) for c in configs]
    if len(flats) < 2:
        return []
    keys = sorted({k for f in flats for k in f})
    differ = [
        k for k in keys if k not in _NOT_SWEPT and len({f.get(k, "<absent>") for f in flats}) > 1
    ]
    order = list(KEY_LABELS)
    return sorted(differ, key=lambda k: (order.index(k) if k in order else len(order), k))


def key_label(key: str) -> str:
    return KEY_LABELS.get(key, key)


@dataclass(frozen=True)
class CompareSet:
    """What the loader hands the screen: curves of the chosen runs and every run's config."""

    curves: Mapping[str, RunCurves]
    configs: Mapping[str, Mapping[str, Any]]
    seq: int


class CurveLoader:
    """Folds the chosen runs of a sweep (or a single run folder) and keeps each fold, so that
    a second load reads only the lines written since. Safe to call from one thread at a time
    (a lock serialises overlapping calls)."""

    def __init__(self, root: Path, is_sweep: bool) -> None:
        self.root = Path(root)
        self.is_sweep = is_sweep
        self._folds: dict[str, tuple[RunState, RunTail]] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._seq = 0

    def _paths(self, run_id: str) -> RunPaths:
        return SweepPaths(self.root).run(run_id) if self.is_sweep else RunPaths(self.root)

    def _planned(self) -> dict[str, dict[str, Any]]:
        meta = read_json(SweepPaths(self.root).sweep) if self.is_sweep else None
        runs = meta.get("runs") if isinstance(meta, dict) else None
        out = {}
        for r in runs or []:
            if isinstance(r, dict) and isinstance(r.get("config"), dict):
                out[str(r.get("run_id"))] = r["config"]
        return out

    def _config(self, run_id: str, planned: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
        if run_id not in self._configs:
            stored = read_json(self._paths(run_id).config)
            if isinstance(stored, dict):
                self._configs[run_id] = stored  # written once at launch: kept
            else:
                return planned.get(run_id, {})
        return self._configs[run_id]

    def load(self, run_ids: Sequence[str], all_ids: Sequence[str]) -> CompareSet:
        """Curves of `run_ids` and the configs of `all_ids` (for the swept keys)."""
        with self._lock:
            planned = self._planned() if len(self._configs) < len(all_ids) else {}
            configs = {r: self._config(r, planned) for r in all_ids}
            curves = {}
            for run_id in run_ids:
                if run_id not in self._folds:
                    state = RunState(run_id)
                    state.set_config(configs.get(run_id) or {})
                    self._folds[run_id] = (state, RunTail(self._paths(run_id).root))
                state, tail = self._folds[run_id]
                for item in tail.read_new():
                    state.add(item.source, item.event)
                curves[run_id] = run_curves(state.view())
            self._seq += 1
            return CompareSet(curves, configs, self._seq)


@dataclass(frozen=True)
class Overlay:
    """One line of the comparison chart; `color` indexes the screen's palette."""

    label: str
    curve: Curve
    color: int


def overlay(
    compare: CompareSet,
    selected: Sequence[str],
    order: Sequence[str],
    metric: str,
    smoothing: float = 0.0,
    group_key: str = NO_GROUP,
) -> list[Overlay]:
    """The lines to draw for the selected runs: one per run, coloured by its place in the
    sweep (`order`), or with a group key one per value of that key (the mean of the group's
    runs), coloured by the value's place among all the sweep's values. Smoothing applies to
    each run's curve before any mean."""
    chosen = [r for r in order if r in selected and r in compare.curves]
    if not group_key:
        return [
            Overlay(r, smooth(compare.curves[r].curve(metric), smoothing), order.index(r))
            for r in chosen
            if compare.curves[r].curve(metric).xs
        ]
    values_in_order: list[str] = []
    for r in order:
        v = group_value(compare.configs.get(r, {}), group_key)
        if v not in values_in_order:
            values_in_order.append(v)
    groups: dict[str, list[Curve]] = {}
    for r in chosen:
        curve = compare.curves[r].curve(metric)
        if curve.xs:
            v = group_value(compare.configs.get(r, {}), group_key)
            groups.setdefault(v, []).append(smooth(curve, smoothing))
    lines = []
    for v in values_in_order:
        if v in groups:
            n = len(groups[v])
            label = f"{key_label(group_key)}={v}" + (f" (mean of {n})" if n > 1 else "")
            lines.append(Overlay(label, mean_curve(groups[v]), values_in_order.index(v)))
    return lines


def color_index(
    run_id: str, order: Sequence[str], compare: CompareSet | None, group_key: str
) -> int:
    """The palette index a run's line has in `overlay` (for the table's marker)."""
    if not group_key or compare is None:
        return order.index(run_id) if run_id in order else 0
    values: list[str] = []
    for r in order:
        v = group_value(compare.configs.get(r, {}), group_key)
        if v not in values:
            values.append(v)
    return values.index(group_value(compare.configs.get(run_id, {}), group_key))

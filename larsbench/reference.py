"""A sweep's reference results: the published top-1 per run id from its profile's [reference]."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from larsbench.format import finite
from larsbench.profile.files import read_profile_file
from larsbench.profile.loading import check_reference_ids, validation_error
from larsbench.profile.schema import Profile, ReferenceConfig
from larsbench.rundir import SweepPaths, read_json


def sweep_reference(sweep_dir: Path) -> ReferenceConfig | None:
    """The [reference] table of SWEEP/profile.toml, read now, so one added after the sweep
    ran counts; None when there is none. Bad input raises ConfigError naming file and key."""
    sweep = SweepPaths(Path(sweep_dir))
    path = sweep.profile
    if not path.exists():
        return None
    _text, data = read_profile_file(path)
    table = data.get("reference")
    if table is None:
        return None
    try:  # validated inside a profile, so errors carry the reference.* key path
        reference = Profile.model_validate({"name": "reference", "reference": table}).reference
    except ValidationError as err:
        raise validation_error(err, str(path)) from None
    planned = read_json(sweep.sweep)
    if not (isinstance(planned, dict) and planned.get("overrides")):
        # With --set the sweep may hold fewer runs than the profile names (prepare_sweep
        # checked the ids then); without, every id must be one of the sweep's runs.
        check_reference_ids(reference, sweep.run_ids(), str(path))
    return reference if reference.top1 else None


def reference_columns(run_id: str, top1: Any, reference: ReferenceConfig | None) -> dict[str, Any]:
    """`reference_top1` and `reference_delta` (measured minus published, points) of one row."""
    published = reference.top1.get(run_id) if reference is not None else None
    measured = finite(top1)
    delta = round(top1 - published, 3) if published is not None and measured else None
    return {"reference_top1": published, "reference_delta": delta}

"""The configure form's field widgets: a label, a control and an error line per form field."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.containers import Horizontal, Vertical
from textual.widgets import Checkbox, Input, Label, Select, Static

from larsbench.tui.form_fields import FIELDS, FieldSpec

if TYPE_CHECKING:
    from larsbench.tui.form import ProfileForm


def field_id(key: str) -> str:
    """The control's widget id of a form field: train.batch_size -> f-train-batch-size."""
    return "f-" + key.replace(".", "-").replace("_", "-")


def field_widgets(form: ProfileForm) -> list[Vertical]:
    """One box per form field; its error line has the id `e-` + the control's id."""
    out = []
    for spec in FIELDS:
        out.append(
            Vertical(
                Horizontal(
                    Label(spec.label, classes="field-label"),
                    _control(spec, form),
                    classes="field-row",
                ),
                Static(id=f"e-{field_id(spec.key)}", classes="field-error"),
                classes="field",
            )
        )
    return out


def _control(spec: FieldSpec, form: ProfileForm) -> Any:
    value = form.initial[spec.key]
    kind = form.kind(spec)
    wid = field_id(spec.key)
    if kind == "bool":
        return Checkbox(value=bool(value), id=wid)
    if kind == "choice" and value in spec.choices:
        return Select(
            [(c, c) for c in spec.choices],
            value=value,
            allow_blank=False,
            id=wid,
            compact=True,
        )
    return Input(str(value), placeholder=spec.hint, id=wid, compact=True, tooltip=spec.hint)

"""The configure form's widgets: its body, and a label, a control and an error line per field."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.containers import Grid, Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Button, Checkbox, DataTable, Input, Label, Select, Static

from larsbench.tui.form_fields import FIELDS, FieldSpec

if TYPE_CHECKING:
    from larsbench.tui.form import ProfileForm


def field_id(key: str) -> str:
    """The control's widget id of a form field: train.batch_size -> f-train-batch-size."""
    return "f-" + key.replace(".", "-").replace("_", "-")


def form_body() -> list[Widget]:
    """The form's body, top to bottom: title, the field grid (filled per profile), the free
    --set line and the output folder, the buttons, the errors, the run preview, the feed line."""
    return [
        Static(id="form-title"),
        Grid(id="fields"),
        Horizontal(
            Label("more --set", classes="field-label"),
            Input(
                placeholder="train.momentum=0.95; data.image_size=32", id="f-extra", compact=True
            ),
            classes="field-row wide-row",
        ),
        Static(id="e-extra", classes="field-error"),
        Horizontal(
            Label("output folder", classes="field-label"),
            Input(id="out-dir", compact=True),
            classes="field-row wide-row",
        ),
        Horizontal(
            Button("Launch (ctrl+r)", id="launch", variant="success", compact=True),
            Button("Save as profile (ctrl+s)", id="save", compact=True),
            id="form-buttons",
        ),
        Static(id="general-errors"),
        Static(id="preview-title"),
        DataTable(id="preview", cursor_type="none", zebra_stripes=True),
        Static(id="feed"),
    ]


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

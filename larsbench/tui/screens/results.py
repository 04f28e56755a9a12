"""The results screen: one row per run (summary columns), sortable; scatter; recommendation;
the curves of the runs selected with space, overlaid (larsbench.tui.compare)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from larsbench.format import finite
from larsbench.live.sweepview import SweepView
from larsbench.summary.rows import SORT_KEYS, default_sort, summary_rows
from larsbench.summary.table import DID_NOT_FINISH, table_cells, table_columns
from larsbench.tui.widgets.compare_chart import CompareChart
from larsbench.tui.widgets.plots import Point, ScatterPlot
from larsbench.tui.widgets.text import set_text

if TYPE_CHECKING:
    from larsbench.tui.host import ScreenHost

MARK = "● "  # before a selected run's id, in its line's colour

# The sort keys `o` cycles through, in this order (any summary column sorts on a header click).
SORT_CYCLE = ("top1", "images_per_sec", "train_seconds", "batch_size", "sweep")
SORT_NAMES = {
    "top1": "top-1",
    "images_per_sec": "img/s",
    "train_seconds": "train time",
    "batch_size": "batch",
    "sweep": "sweep order",
}


def results_header(view: SweepView | None, sort: str, reverse: bool) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(" larsbench ", style="bold reverse")
    if view is None:
        return t
    t.append(f"  results: {view.name}", style="bold")
    states: dict[str, int] = {}
    for r in view.runs:
        states[r.state] = states.get(r.state, 0) + 1
    t.append("  " + ", ".join(f"{n} {s}" for s, n in states.items()))
    if view.live:
        t.append("  (sweep running)", style="green")
    order = SORT_NAMES.get(sort, sort)
    t.append(f"  sorted by {order}{' reversed' if reverse else ''} (o / O)", style="dim")
    if view.unreadable:
        t.append(f"  {view.unreadable_note}", style="bold yellow")
    return t


def scatter_points(view: SweepView) -> list[Point]:
    """The runs with a measured top-1 and speed, labelled by run id; unfinished ones as x."""
    points = []
    for r in view.results:
        if finite(r.top1) and finite(r.images_per_sec) and r.images_per_sec > 0:
            done = r.status == "completed"
            points.append(
                Point(
                    r.run_id if done else f"{r.run_id} ({r.status})",
                    float(r.images_per_sec),
                    float(r.top1),
                    r.run_id in view.frontier,
                    ("^" if r.optimizer == "larc" else "o") if done else "x",
                )
            )
    return points


def speed_bars(view: SweepView) -> list[tuple[str, float]]:
    """(run id, img/s) of the runs with a measured speed, fastest first."""
    measured = [r for r in view.results if finite(r.images_per_sec) and r.images_per_sec > 0]
    measured.sort(key=lambda r: -r.images_per_sec)
    return [(r.run_id, float(r.images_per_sec)) for r in measured]


# Columns dropped first when the table is wider than the screen (80 columns must show
# run, batch, lr, optimizer, tc, top-1, img/s and the frontier).
DROP_ORDER = (
    "time_to_best_seconds",
    "top5",
    "best_top1",
    "input_bound",
    "power_w_mean",
    "gpu_mem_max_gib",
    "energy_j_per_image",
    "gpu_util_mean",
    "images_per_sec_per_gpu",
    "reference_top1",
    "reference_delta",
    "epochs",
    "model",
    "train_seconds",
    "lr",
    "trust_coefficient",
    "status",
)


def fit_columns(
    columns: list[tuple[str, str, str]],
    headers: list[str],
    cells: list[list[str]],
    width: int,
    sort: str = "",
) -> list[int]:
    """Indexes of the columns to show so that the table fits `width` cells."""
    # DataTable pads each cell by one on both sides; the sort column's header gets " ▼".
    widths = [
        max([len(h) + 2 * (columns[i][0] == sort), *(len(c[i]) for c in cells)]) + 2
        for i, h in enumerate(headers)
    ]
    keep = list(range(len(columns)))
    for key in DROP_ORDER:
        if sum(widths[i] for i in keep) <= width:
            break
        keep = [i for i in keep if columns[i][0] != key]
    return keep


class ResultsScreen(Screen[None]):
    """Compare runs: the summary's rows and frontier, and its recommendation."""

    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [
        (0, "-narrow"),
        (120, "-wide"),
    ]
    # Arrow keys move the table's cursor (the run Enter opens), not the scrolling body.
    AUTO_FOCUS = "#results-table"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_select", "Select"),
        Binding("m", "cycle_metric(1)", "Metric"),
        Binding("M", "cycle_metric(-1)", "Prev metric", show=False),
        Binding("z", "toggle_full_chart", "Full chart"),
        Binding("o", "cycle_sort(1)", "Sort"),
        Binding("O", "reverse_sort", "Reverse", show=False),
        Binding("enter", "open_run", "Open run", priority=True),
        Binding("s", "cycle_smoothing", "Smooth", show=False),
        Binding("y", "toggle_log_y", "Log y", show=False),
        Binding("g", "cycle_group", "Group by", show=False),
        Binding("a", "select_all", "Select all/none", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="results")
        self._view: SweepView | None = None
        self.sort = "top1"
        self.reverse = False
        self._sort_chosen = False  # until the user sorts: the summary's default order
        self._row_ids: list[str] = []
        self._columns: list[tuple[str, str, str]] = []
        self._table_key: tuple[Any, ...] | None = None
        self.selected: list[str] = []  # runs whose curves are compared, in sweep order

    @property
    def lapp(self) -> ScreenHost:
        """The app, through what a screen may use of it (larsbench.tui.host)."""
        return cast("ScreenHost", self.app)

    def compose(self) -> ComposeResult:
        yield Static(results_header(None, self.sort, self.reverse), id="results-header")
        with VerticalScroll(id="results-body"):
            yield DataTable(id="results-table", cursor_type="row", zebra_stripes=True)
            yield CompareChart(id="compare-box", classes="panel")
            with Horizontal(id="results-lower"):
                yield ScatterPlot(id="scatter")
                with VerticalScroll(id="recommendation-box", classes="panel"):
                    yield Static(id="recommendation")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#recommendation-box").border_title = "Recommendation"
        self.query_one("#compare-box").display = False
        if self.lapp.view is not None:
            self.show_view(self.lapp.view)

    def on_screen_resume(self) -> None:
        if self.lapp.view is not None and self.lapp.view is not self._view:
            self.show_view(self.lapp.view)

    def on_resize(self) -> None:
        self._fill_table()

    def show_view(self, view: SweepView) -> None:
        self._view = view
        if not self._sort_chosen:
            self.sort = default_sort(list(view.results))
        set_text(
            self.query_one("#results-header", Static), results_header(view, self.sort, self.reverse)
        )
        self._fill_table()
        plot = self.query_one(ScatterPlot)
        if view.results and all(r.mode == "throughput" for r in view.results):
            plot.show_speeds(speed_bars(view), "img/s per run (throughput mode: no accuracy)")
        else:
            title = "top-1 % vs img/s   ● sgd  ▲ larc  × not completed  ─ frontier"
            plot.show(scatter_points(view), title)
        rec = view.recommendation.removeprefix("Recommendation: ")
        rec = rec or "No recommendation yet: no run has finished."
        box = self.query_one("#recommendation", Static)
        set_text(box, Text(rec), width=box.content_region.width)
        self.chart.show(view, tuple(self.selected))

    @property
    def chart(self) -> CompareChart:
        return self.query_one(CompareChart)

    def _fill_table(self) -> None:
        view = self._view
        if view is None:
            return
        key = (
            view.results_seq,
            view.root,
            self.sort,
            self.reverse,
            self.app.size.width,
            tuple(self.selected),
            self.chart.compare is not None,
            self.chart.group_key,
        )
        if key == self._table_key:
            return
        self._table_key = key
        rows = summary_rows(
            list(view.results),
            sort=self.sort,
            frontier=set(view.frontier),
            reference=view.reference,
        )
        if self.reverse:
            rows = rows[::-1]
        table = self.query_one("#results-table", DataTable)
        selected = self._row_ids[table.cursor_row] if self._row_ids and table.row_count else None
        table.clear(columns=True)
        headers, cells, right = table_cells(rows)
        columns = table_columns(rows)
        full_keys = [c[0] for c in columns]
        if "run_id" in full_keys:  # the selected runs' marker counts in the widths
            i = full_keys.index("run_id")
            for row, values in zip(rows, cells, strict=True):
                if str(row["run_id"]) in self.selected:
                    values[i] = MARK + values[i]
        keep = fit_columns(columns, headers, cells, self.app.size.width - 2, self.sort)
        self._columns = [columns[i] for i in keep]
        headers = [headers[i] for i in keep]
        right = [right[i] for i in keep]
        cells = [[row[i] for i in keep] for row in cells]
        col_keys = [c[0] for c in self._columns]
        id_col = col_keys.index("run_id") if "run_id" in col_keys else None
        for (col_key, _, _), header in zip(self._columns, headers, strict=True):
            marker = (" ▼" if not self.reverse else " ▲") if col_key == self.sort else ""
            table.add_column(header + marker, key=col_key)
        self._row_ids = [str(r["run_id"]) for r in rows]
        for row, values in zip(rows, cells, strict=True):
            style = ""
            if row.get("status") in DID_NOT_FINISH:
                style = "red"
            elif row.get("status") != "completed":
                style = "dim"
            elif row.get("pareto"):
                style = "bold"
            texts = [
                Text(v, style=style, justify="right" if r else "left")
                for v, r in zip(values, right, strict=True)
            ]
            run_id = str(row["run_id"])
            if run_id in self.selected and id_col is not None:  # the line's colour
                texts[id_col].stylize(f"bold {self.chart.color(run_id)}", 0, len(MARK))
            table.add_row(*texts, key=run_id)
        if selected in self._row_ids:
            table.move_cursor(row=self._row_ids.index(selected))

    # --- comparing curves -------------------------------------------------------------------

    def on_compare_chart_colors_changed(self, message: CompareChart.ColorsChanged) -> None:
        self._table_key = None  # the markers take the lines' colours
        self._fill_table()

    def _cursor_run(self) -> str | None:
        table = self.query_one("#results-table", DataTable)
        if self._row_ids and 0 <= table.cursor_row < len(self._row_ids):
            return self._row_ids[table.cursor_row]
        return None

    def _set_selected(self, run_ids: list[str]) -> None:
        order = [r.run_id for r in self._view.runs] if self._view else run_ids
        self.selected = [r for r in order if r in run_ids]
        if not self.selected:
            self.remove_class("-full-chart")
        self._fill_table()
        if self._view is not None:
            self.chart.show(self._view, tuple(self.selected))

    def action_toggle_select(self) -> None:
        run_id = self._cursor_run()
        if run_id is None:
            return
        chosen = set(self.selected) ^ {run_id}
        self._set_selected(list(chosen))

    def action_select_all(self) -> None:
        everyone = list(self._row_ids)
        self._set_selected([] if set(self.selected) == set(everyone) else everyone)

    def action_cycle_metric(self, delta: int) -> None:
        self.chart.cycle_metric(delta)

    def action_cycle_smoothing(self) -> None:
        self.chart.cycle_smoothing()

    def action_toggle_log_y(self) -> None:
        self.chart.toggle_log_y()

    def action_cycle_group(self) -> None:
        if not self.chart.cycle_group():
            self.notify("Select runs first (space): grouping uses their configs.")

    def action_toggle_full_chart(self) -> None:
        if not self.selected:
            run_id = self._cursor_run()
            if run_id is None:
                return
            self._set_selected([run_id])
        self.toggle_class("-full-chart")

    # --- actions ----------------------------------------------------------------------------

    def _set_sort(self, key: str, reverse: bool = False) -> None:
        self.sort, self.reverse = key, reverse
        self._sort_chosen = True
        if self._view is not None:
            self.show_view(self._view)

    def action_cycle_sort(self, delta: int) -> None:
        i = SORT_CYCLE.index(self.sort) if self.sort in SORT_CYCLE else -1
        self._set_sort(SORT_CYCLE[(i + delta) % len(SORT_CYCLE)])

    def action_reverse_sort(self) -> None:
        self._set_sort(self.sort, not self.reverse)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key == "run_id":
            key = "sweep"
        if key in SORT_KEYS:
            self._set_sort(key, not self.reverse if key == self.sort else False)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self._open(str(event.row_key.value))

    def action_open_run(self) -> None:
        run_id = self._cursor_run()
        if run_id is not None:
            self._open(run_id)

    def _open(self, run_id: str) -> None:
        self.lapp.focus_run(run_id)
        self.app.switch_mode("live")

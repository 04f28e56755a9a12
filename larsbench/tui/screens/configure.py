"""The configure (start) screen: pick a profile or recent sweep, edit, validate, preview, launch."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Footer,
    Input,
    OptionList,
    Select,
    Static,
)
from textual.widgets.option_list import Option

from larsbench.profile.errors import ConfigError
from larsbench.profile.files import read_profile_file
from larsbench.tui import runner_control
from larsbench.tui.discover import ProfileEntry, SweepEntry, find_profiles, find_sweeps
from larsbench.tui.form_fields import EXTRA, FIELDS
from larsbench.tui.screens.configure_fields import field_id, field_widgets, form_body
from larsbench.tui.screens.configure_preview import PREVIEW_COLUMNS, fill_preview
from larsbench.tui.screens.dialogs import ConfirmDialog, NameDialog
from larsbench.tui.tomltext import dump_profile

if TYPE_CHECKING:
    from larsbench.tui.form import FormResult, ProfileForm
    from larsbench.tui.host import ScreenHost

VALIDATE_DELAY = 0.15  # seconds of typing pause before the form is validated again


class ConfigureScreen(Screen[None]):
    """Profiles and recent sweeps on the left; the form, its errors and the run preview."""

    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [
        (0, "-narrow"),
        (120, "-wide"),
    ]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "launch", "Launch", priority=True),
        Binding("ctrl+s", "save_profile", "Save as profile", priority=True),
        Binding("w", "watch_selected", "Watch sweep"),
        Binding("ctrl+d", "doctor", "Doctor", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__(id="configure")
        self.form: ProfileForm | None = None
        self.profile_path: Path | None = None
        self.result: FormResult | None = None
        self._timer: Timer | None = None
        self._entries: dict[str, ProfileEntry | SweepEntry] = {}
        self._ids: dict[str, str] = {field_id(f.key): f.key for f in FIELDS}
        self._feed_keys: list[tuple[object, ...]] | None = None
        self._form_opened = False
        self._picked_early: str | None = None  # a picker choice made before the form was there

    @property
    def lapp(self) -> ScreenHost:
        return cast("ScreenHost", self.app)

    # --- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(Text(" larsbench ", style="bold reverse"), id="configure-header")
        with Horizontal(id="configure-main"):
            with Vertical(id="picker-box", classes="panel"):
                yield OptionList(id="picker")
            yield VerticalScroll(id="form-box")  # its body mounts after the first frame
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#picker-box").border_title = "Profiles & sweeps"
        self.refresh_picker()
        picker = self.query_one("#picker", OptionList)
        picker.focus()
        # Highlighted from the start, so keys pressed before the form is there move from the
        # profile the form will open (the choice is kept: on_option_list_option_selected).
        if (first := self._first_profile()) is not None:
            picker.highlighted = picker.get_option_index(f"profile:{first.path}")
        # The form (its body, a hundred field widgets or more, the profile models) comes
        # after Textual's first frame: the screen shows at once, the form a moment later
        # (benchmarks/startup.py). The app calls open_form on that frame (events.Ready).
        if self.lapp.first_frame_shown:
            self.open_form()

    def open_form(self) -> None:
        """Mount the form's body and open the first profile, once."""
        if not self._form_opened:
            self._form_opened = True
            self.call_later(self._open_form)

    async def _open_form(self) -> None:
        await self.query_one("#form-box", VerticalScroll).mount_all(form_body())
        self.query_one("#preview", DataTable).add_columns(*PREVIEW_COLUMNS)
        self.query_one("#feed", Static).display = False
        if self._picked_early is None or not self._open_option(self._picked_early):
            self._open_first_profile()

    def _first_profile(self) -> ProfileEntry | None:
        """The profile the form opens with: smoke when there is one (it runs anywhere in
        minutes), else the first readable one."""
        readable = [
            e for e in self._entries.values() if isinstance(e, ProfileEntry) and not e.error
        ]
        return next((e for e in readable if e.name == "smoke"), readable[0] if readable else None)

    def _open_first_profile(self) -> None:
        if (first := self._first_profile()) is not None:
            self.load_profile(first.path)
        else:
            self.query_one("#form-title", Static).update(
                Text("No profiles found in " + ", ".join(map(str, self.lapp.profiles_dirs)))
            )

    def refresh_picker(self) -> None:
        picker = self.query_one("#picker", OptionList)
        picker.clear_options()
        self._entries.clear()
        options: list[Option] = [Option(Text("Profiles", style="bold"), disabled=True)]
        for p in find_profiles(self.lapp.profiles_dirs):
            oid = f"profile:{p.path}"
            self._entries[oid] = p
            label = Text(f"  {p.name}", no_wrap=True, overflow="ellipsis")
            if p.error:
                label.append("  (unreadable)", style="red")
            options.append(Option(label, id=oid))
        sweeps = find_sweeps(self.lapp.runs_dir)
        options.append(Option(Text("Recent sweeps", style="bold"), disabled=True))
        if not sweeps:
            options.append(
                Option(Text(f"  none in {self.lapp.runs_dir.name}/", "dim"), disabled=True)
            )
        for s in sweeps:
            oid = f"sweep:{s.path}"
            self._entries[oid] = s
            label = Text(f"  {s.path.name} ", no_wrap=True, overflow="ellipsis")
            label.append(f"({s.label})", style="green" if s.state == "running" else "dim")
            options.append(Option(label, id=oid))
        picker.add_options(options)

    # --- loading a profile into the form -------------------------------------------------------

    def load_profile(self, path: Path) -> None:
        title = self.query_one("#form-title", Static)
        try:
            _text, raw = read_profile_file(path)
        except ConfigError as err:
            title.update(Text(str(err), style="bold red"))
            return
        self.profile_path = path
        from larsbench.tui.form import ProfileForm  # the profile models: after the first frame

        self.form = ProfileForm(raw, self.lapp.machine)
        name = str(raw.get("name") or path.stem)
        t = Text()
        t.append(f"{name}", style="bold")
        t.append(f"  {path.parent.name}/{path.name}", style="dim")
        if raw.get("description"):
            t.append(f"\n{raw['description']}", style="italic")
        title.update(t)
        grid = self.query_one("#fields", Grid)
        grid.remove_children()
        grid.mount_all(field_widgets(self.form))
        # Selects finish composing after this frame; repaint once they have.
        self.call_after_refresh(self.refresh, layout=True)
        self.query_one("#f-extra", Input).value = ""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(self.lapp.clock()))
        self.query_one("#out-dir", Input).value = str(
            self._short(self.lapp.runs_dir / f"{name}-{stamp}")
        )
        self.validate_now()

    @staticmethod
    def _short(path: Path) -> Path:
        try:
            return path.resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            return path

    # --- validation -----------------------------------------------------------------------------

    def _values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for wid, key in self._ids.items():
            try:
                widget = self.query_one(f"#{wid}")
            except Exception:
                continue
            if isinstance(widget, (Input, Checkbox, Select)):
                values[key] = widget.value
        return values

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id in self._ids or event.input.id == "f-extra":
            self._schedule()

    def on_select_changed(self, event: Select.Changed) -> None:
        self._schedule()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(VALIDATE_DELAY, self.validate_now)

    def validate_now(self) -> FormResult | None:
        """Run the CLI's validator over the form and show errors and the preview."""
        if self.form is None:
            return None
        extra = self.query_one("#f-extra", Input).value
        result = self.form.validate(self._values(), extra)
        self.result = result
        for wid, key in [*self._ids.items(), ("f-extra", EXTRA)]:
            try:
                err = self.query_one(f"#e-{wid}", Static)
                control = self.query_one(f"#{wid}")
            except Exception:
                continue
            message = result.errors.get(key, "")
            err.update(Text(message, style="bold red"))
            err.display = bool(message)
            control.set_class(bool(message), "-error")
        general = self.query_one("#general-errors", Static)
        general.update(Text("\n".join(result.general), style="bold red"))
        general.display = bool(result.general)
        fill_preview(
            self.query_one("#preview-title", Static), self.query_one("#preview", DataTable), result
        )
        self._check_feed(result)
        return result

    def _check_feed(self, result: FormResult) -> None:
        """The feed check (larsbench/feed.py) of the ImageFolder runs, in a thread: a few
        seconds of timed decoding in a subprocess; again only when the loader setup changes."""
        from larsbench.feed import feed_key

        runs = [r for r in result.runs if r.data.source == "imagefolder"] if result.ok else []
        keys = sorted({feed_key(r) for r in runs}, key=repr)
        if keys == self._feed_keys:
            return
        self._feed_keys = keys
        feed = self.query_one("#feed", Static)
        feed.display = bool(runs)
        if runs:
            feed.update(Text("feed check: timing the decode of a sample of the training files..."))
            self.run_worker(
                lambda: self._feed_verdicts(runs), thread=True, exclusive=True, group="feed"
            )

    def _feed_verdicts(self, runs: list[Any]) -> None:
        from larsbench.feed import feed_checks

        lines = Text()
        for _ids, check in feed_checks(runs, None, None):
            bad = isinstance(check, str) or not check.ok
            sentence = check if isinstance(check, str) else check.sentence
            lines.append("feed: ", style="bold yellow" if bad else "bold green")
            lines.append(sentence + "\n")
        self.app.call_from_thread(self.query_one("#feed", Static).update, lines)

    # --- picker -------------------------------------------------------------------------------

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if not self.query("#fields"):  # the form is not there yet (the first ~0.1 s):
            self._picked_early = event.option.id or ""  # _open_form opens it then
            return
        self._open_option(event.option.id or "")

    def _open_option(self, option_id: str) -> bool:
        """Load the profile of a picker option (a profile, or a recent sweep's profile.toml);
        False for an option that holds none."""
        entry = self._entries.get(option_id)
        if isinstance(entry, ProfileEntry):
            self.load_profile(entry.path)
        elif isinstance(entry, SweepEntry):
            self.load_profile(entry.path / "profile.toml")
        return isinstance(entry, ProfileEntry | SweepEntry)

    def _highlighted(self) -> ProfileEntry | SweepEntry | None:
        picker = self.query_one("#picker", OptionList)
        if picker.highlighted is None:
            return None
        option = picker.get_option_at_index(picker.highlighted)
        return self._entries.get(option.id or "")

    def action_watch_selected(self) -> None:
        entry = self._highlighted()
        if isinstance(entry, SweepEntry):
            self.lapp.attach(entry.path)
        else:
            self.notify("Highlight a recent sweep to watch it.", severity="warning")

    # --- launch and save ------------------------------------------------------------------------

    def action_doctor(self) -> None:
        """`larsbench doctor --quick` for the profile file (as saved), in a dialog."""
        from larsbench.tui.screens.doctor import DoctorScreen

        if self.profile_path is None:
            self.notify("Pick a profile first.", severity="warning")
            return
        self.app.push_screen(DoctorScreen(self.profile_path))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "launch":
            self.action_launch()
        elif event.button.id == "save":
            self.action_save_profile()

    def action_launch(self) -> None:
        result = self.validate_now()
        if result is None or not result.ok or self.profile_path is None:
            self.notify("Fix the errors first.", severity="error")
            return
        out_text = self.query_one("#out-dir", Input).value.strip()
        if not out_text:
            self.notify("Give an output folder.", severity="error")
            return
        out = Path(out_text)
        profile = self.profile_path
        set_args = result.set_args()

        def go(yes: bool | None = True) -> None:
            if not yes:
                return
            try:
                process = runner_control.launch_sweep(profile, out, set_args)
            except OSError as err:
                self.notify(f"Could not start larsbench run: {err}", severity="error")
                return
            self.lapp.attach(out, process=process)

        if (out / "sweep.json").exists():
            self.app.push_screen(
                ConfirmDialog(
                    f"{out} holds a sweep already. Run it again? Completed runs are skipped.",
                    "Run again",
                ),
                go,
            )
        else:
            go()

    def action_save_profile(self) -> None:
        result = self.validate_now()
        if result is None or not result.ok:
            self.notify("Fix the errors first.", severity="error")
            return
        current = str(result.raw.get("name") or "profile")

        def save(name: str | None) -> None:
            if not name:
                return
            folder = self.lapp.profiles_dirs[0]
            path = folder / f"{name}.toml"
            raw = {**result.raw, "name": name}

            def write(yes: bool | None = True) -> None:
                if not yes:
                    return
                folder.mkdir(parents=True, exist_ok=True)
                header = f"{name}: saved from the larsbench app"
                if self.profile_path is not None:
                    header += f" (edited from {self.profile_path.name})"
                path.write_text(dump_profile(raw, header), encoding="utf-8")
                self.notify(f"Saved {self._short(path)}")
                self.refresh_picker()

            if path.exists():
                self.app.push_screen(ConfirmDialog(f"Replace {path}?", "Replace"), write)
            else:
                write()

        self.app.push_screen(
            NameDialog("Save the form as profile (name):", f"{current}-edit"), save
        )

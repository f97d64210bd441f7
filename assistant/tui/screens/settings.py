"""Settings: model, top_k and mode (saved to config.toml), and the session's filters."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Select, Static

from ...retrieve import Filters
from ..messages import SettingsSaved
from ..widgets import display_path

__all__ = ["SettingsScreen", "parse_file_types", "parse_path_glob"]


MODES = [
    ("hybrid: meaning and keywords", "hybrid"),
    ("dense: meaning only", "dense"),
    ("keyword: exact words only", "keyword"),
]


def parse_file_types(text: str) -> tuple[str, ...]:
    """"md, .PDF *.txt" -> ("md", "pdf", "txt")."""
    out = []
    for part in re.split(r"[\s,;]+", text.strip()):
        part = part.strip().lower().removeprefix("*").lstrip(".")
        if part and part not in out:
            out.append(part)
    return tuple(out)


def parse_path_glob(text: str) -> str | None:
    """A glob matched against the full path; a relative one ("docs/*") matches anywhere ("*/docs/*")."""
    glob = text.strip()
    if not glob:
        return None
    if glob.startswith("~"):
        glob = str(Path(glob).expanduser())
    if not glob.startswith(("/", "*")):
        glob = "*/" + glob
    return glob


class SettingsScreen(Screen):
    """The model, top_k and mode (saved to config.toml) and the session's filters."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", tooltip="Save the settings and apply the filters"),
        Binding("escape", "close", "Back", tooltip="Back to the chat without saving"),
    ]

    def __init__(self, values: dict[str, Any], filters: Filters, target: Path, notes: list[str]) -> None:
        super().__init__()
        self.values = values  # generation.model, retrieval.top_k, retrieval.mode as in use
        self.filters = filters
        self.target = target  # the config file written to
        self.notes = notes
        self.saving = False

    def compose(self) -> ComposeResult:
        v = self.values
        mode = v["retrieval.mode"] if v["retrieval.mode"] in {m for _, m in MODES} else "hybrid"
        with VerticalScroll(id="settings-body"):
            where = Text()
            where.append("Model and retrieval: saved to ", style="bold")
            where.append(display_path(self.target), style="bold")
            if not self.target.exists():
                where.append("  (a new file)")
            yield Static(where, classes="section", id="settings-where")
            yield Label("Model: a GGUF file, or builtin", classes="field-label")
            yield Input(value=str(v["generation.model"]), id="set-model", placeholder="builtin")
            with Horizontal(classes="field-row"):
                with Vertical(classes="field"):
                    yield Label("Passages per answer (top_k)", classes="field-label")
                    yield Input(value=str(v["retrieval.top_k"]), id="set-top-k")
                with Vertical(classes="field"):
                    yield Label("Search mode", classes="field-label")
                    yield Select(MODES, value=mode, allow_blank=False, id="set-mode")
            yield Static(Text("Filters: this session only, not saved", style="bold"), classes="section")
            with Horizontal(classes="field-row"):
                with Vertical(classes="field"):
                    yield Label("Path glob (e.g. */manuals/*)", classes="field-label")
                    yield Input(value=self.filters.path_glob or "", id="set-glob", placeholder="any path")
                with Vertical(classes="field"):
                    yield Label("File types (e.g. md, pdf)", classes="field-label")
                    yield Input(value=" ".join(self.filters.file_types), id="set-types", placeholder="any type")
            yield Static("", id="settings-error")
            yield Static(self._note(), id="settings-note")
        yield Footer(compact=True)

    def _note(self) -> Text:
        save = self.app.key_for("save", self)
        t = Text(
            f"{save} or enter saves. top_k and the filters apply to the next question; a new model or "
            "search mode is used after a restart (the loaded model stays in memory until then)."
        )
        for note in self.notes:
            t.append(f"\n{note}", style="bold")
        return t

    def on_mount(self) -> None:
        self.query_one("#set-model", Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def show_error(self, message: str) -> None:
        box = self.query_one("#settings-error", Static)
        box.update(Text(message))
        box.set_class(bool(message), "-error")

    def updates(self) -> dict[str, Any]:
        """The saved settings that differ from the ones in use; raw text where it is not a number."""
        model = self.query_one("#set-model", Input).value.strip() or "builtin"
        if model != "builtin" and not model.startswith("~") and not Path(model).is_absolute():
            model = os.path.abspath(model)  # relative to here, not to wherever the next start runs
        raw_k = self.query_one("#set-top-k", Input).value.strip()
        top_k: Any = int(raw_k) if re.fullmatch(r"[+-]?\d+", raw_k) else raw_k  # the config names what is wrong
        mode = self.query_one("#set-mode", Select).value
        new = {"generation.model": model, "retrieval.top_k": top_k, "retrieval.mode": mode}
        return {k: v for k, v in new.items() if v != self.values[k]}

    def action_save(self) -> None:
        if self.saving:
            return
        updates = self.updates()
        model = updates.get("generation.model")
        if model and model != "builtin" and self.app.generator_name() == "llamacpp":
            if not Path(model).expanduser().is_file():
                self.show_error(f"generation.model: no such file: {model}")
                self.query_one("#set-model", Input).focus()
                return
        filters = Filters(
            parse_path_glob(self.query_one("#set-glob", Input).value),
            parse_file_types(self.query_one("#set-types", Input).value),
        )
        self.show_error("")
        self.saving = True
        self._save_worker(self.app.library, self.target, updates, filters)

    @work(thread=True, exclusive=True, group="settings", exit_on_error=False)
    def _save_worker(self, library, target: Path, updates: dict[str, Any], filters: Filters) -> None:
        from ...config import ConfigError, update_config_file

        app = self.app
        config = None
        created = not target.exists()
        if updates:
            try:
                config = update_config_file(target, updates)
            except ConfigError as e:
                self.call_later(self._failed, str(e))
                return
            except Exception as e:
                self.call_later(self._failed, f"{type(e).__name__}: {e}")
                return
        matching: int | None = None
        if filters.active() and library is not None:
            try:
                matching = len(filters.allowed_paths(library.store))
            except Exception:
                matching = None
        app.post_message(SettingsSaved(target, updates, config, filters, matching, created and config is not None))

    def _failed(self, message: str) -> None:
        """Shown inline; nothing was written and the filters are not applied."""
        self.saving = False
        self.show_error(message)
        field = {"generation.model": "#set-model", "retrieval.top_k": "#set-top-k", "retrieval.mode": "#set-mode"}
        for k, selector in field.items():
            if k in message:
                self.query_one(selector).focus()
                break

    def action_close(self) -> None:
        self.app.pop_screen()

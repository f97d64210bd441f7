"""The Textual app: owns the Library, runs ingest and model loading in workers, routes errors to the UI."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterable

from rich.segment import Segment
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.color import Color
from textual.filter import LineFilter
from textual.markup import escape
from textual.screen import Screen

from ..config import Config, LibraryConfig, load_config
from ..conversation import ConversationInfo
from ..ingest import IngestEvent, IngestReport
from ..library import Library, LibraryStatus, check_collection_name, update_in_progress
from ..plugins import PluginRegistry
from ..retrieve import Filters
from ..terminal import has_controls, without_controls
from ..types import Source
from .screens import (
    ConversationsScreen,
    HelpScreen,
    LibraryScreen,
    MainScreen,
    PathScreen,
    PromptScreen,
    SettingsScreen,
    ViewerScreen,
)
from .errors import USER_ERRORS, error_text
from .messages import (
    ConversationDeleted,
    CopyText,
    NewCollection,
    OpenSource,
    SettingsSaved,
    ShowError,
    StatusChanged,
    SwitchCollection,
)
from .widgets import SourcesTable, SystemNote, display_path, filters_text, ingest_summary, lines_of, plural

__all__ = ["AssistantApp", "USER_ERRORS", "error_text"]

class _IngestAborted(Exception):
    pass


class InertControls(LineFilter):
    """Removes control characters from every drawn line: a document's text or a file's name can hold
    escape sequences (a window title, a screen clear) that Rich and Textual pass to the terminal as they are."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [
            Segment(without_controls(s.text), s.style, s.control) if not s.control and has_controls(s.text) else s
            for s in segments
        ]


class AssistantApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "Assistant"
    SUB_TITLE = "your documents, offline"

    BINDINGS = [
        Binding("ctrl+r", "ingest", "Ingest", tooltip="Ingest (re-sync) the configured folders"),
        # not in the footer (80 columns): the empty state, help and the palette name it
        Binding("ctrl+o", "ingest_path", "Add path", show=False, tooltip="Ingest a file or folder you type"),
        Binding("ctrl+l", "library", "Library", tooltip="What is indexed; remove files"),
        Binding("f2", "conversations", "Chats", tooltip="Conversations: open one to read or continue it, or delete it"),
        Binding("f3", "settings", "Settings", tooltip="Model, top_k, search mode; filters for this session"),
        Binding("f1", "help", "Help"),
    ]

    OUTSIDE_CHECK_S = 2.0  # how often to look for writes by other processes (one SELECT and a file read)

    _inert_controls = InertControls()

    def get_line_filters(self):
        return [*super().get_line_filters(), self._inert_controls]

    def __init__(self, library: Library | None = None, *, show_timings: bool = True, collection: str | None = None) -> None:
        super().__init__()
        self.library = library
        self.start_collection = collection  # when the app creates the Library: --collection NAME
        self.show_timings = show_timings
        self.startup_error: str | None = None
        self.status_info: LibraryStatus | None = None
        self._seen_generation: tuple[str, str | None] | None = None  # (collection, chunks_generation) last shown
        self._quit_after_ingest = False
        self.ingesting = False
        self.last_report: IngestReport | None = None
        self._abort_ingest = threading.Event()
        self._main: MainScreen | None = None
        self._ui_thread = threading.get_ident()
        # settings for this session (the settings screen)
        self.filters = Filters()
        self.session_top_k: int | None = None  # a top_k saved this session: used at once
        self.saved_config: Config | None = None  # the config as last written by the settings screen
        self.config_target: Path | None = None  # where settings are written
        # model loading (warm-up)
        self.models_ready = False
        self.model_error: str | None = None

    # --- set-up -------------------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        self._main = MainScreen()
        return self._main

    @property
    def main(self) -> MainScreen:
        assert self._main is not None
        return self._main

    def on_load(self) -> None:
        self._ui_thread = threading.get_ident()
        if self.library is None:
            try:
                config = load_config()
                if self.start_collection:
                    config.library.collection = check_collection_name(self.start_collection)
                registry = PluginRegistry(config.plugins, warn=self._plugin_warning)
                self.library = Library(config, registry=registry)
            except USER_ERRORS as e:
                self.startup_error = str(e)

    def _plugin_warning(self, message: str) -> None:
        """Plugin problems go to a notification, not to stderr under the UI."""
        message = message.removeprefix("assistant: ")
        if threading.get_ident() == self._ui_thread:
            self.notify(message, title="Plugin", severity="warning", timeout=8)
        else:
            self.call_later(self.notify, message, title="Plugin", severity="warning", timeout=8)

    def on_mount(self) -> None:
        self.set_interval(self.OUTSIDE_CHECK_S, self.check_outside_changes, name="outside changes")

    def on_unmount(self) -> None:
        self._abort_ingest.set()

    # --- model warm-up ----------------------------------------------------------------------

    def start_warmup(self) -> None:
        """Load the embedding model and the LLM in the background, so the first question does not stall."""
        if self.library is None:
            return
        self.models_ready = False
        self.model_error = None
        if self._main is not None and self._main.ready:
            self._main.set_loading("loading models…")
        self._warmup_worker(self.library)

    @work(thread=True, exclusive=True, group="warmup", exit_on_error=False)
    def _warmup_worker(self, library: Library) -> None:
        errors: list[str] = []
        for what, load in (
            ("the embedding model", library.warm_up_search),
            ("the language model", lambda: library.generator.info()),
        ):
            try:
                load()
            except Exception as e:  # never a traceback in the UI
                errors.append(f"cannot load {what}: {error_text(e)}")
        self.call_later(self._warmup_done, errors)  # the thread never waits for the UI

    async def _warmup_done(self, errors: list[str]) -> None:
        self.models_ready = True
        self.model_error = "; ".join(errors) or None
        if self._main is None or not self._main.ready:
            return
        self._main.set_loading("")
        for message in errors:
            self.show_error(message)
            await self._main.chat.mount(
                SystemNote(message[0].upper() + message[1:] + f". Fix it in settings ({self.key_for('settings')}) "
                           "or config.toml, then restart.", error=True)
            )
        if errors:
            self._main.chat.scroll_end(animate=False)

    # --- helpers for screens --------------------------------------------------------------

    def key_for(self, action: str, screen: Screen | None = None) -> str:
        """The display of the first key bound to ``action`` (on the app or ``screen``)."""
        for source in ((screen,) if screen is not None else ()) + (self,):
            for b in type(source).BINDINGS:
                if isinstance(b, Binding) and b.action == action:
                    return self.get_key_display(Binding(b.key.split(",")[0], b.action))
        return action

    def show_error(self, message: str, *, notify: bool = True) -> None:
        if notify:
            self.notify(message, title="Error", severity="error", timeout=8)
        if self._main is not None and self._main.ready:
            self._main.show_error(message)

    def refresh_status(self) -> LibraryStatus | None:
        if self.library is None:
            if self._main is not None and self._main.ready:
                self._main.show_problem(self.startup_error or "the library is not available")
            return None
        try:
            st = self.library.status()
        except Exception as e:
            self.show_error(error_text(e))
            return None
        self.status_info = st
        self._seen_generation = (st.collection, st.generation)
        if self._main is not None and self._main.ready:
            self._main.show_status(st, st.updating if not self.ingesting else None)
        return st

    def check_outside_changes(self) -> None:
        """Another process (``assistant ingest``) may write the library: its chunks_generation moves
        with every write, and its write lock names it while it runs. Cheap: run every few seconds."""
        if self.library is None or self.ingesting:
            return
        shown = self.status_info
        try:
            generation = self.library.store.meta("chunks_generation")
        except Exception:
            return
        updating = update_in_progress(self.library.config.data_dir)
        if (shown is None or (self.library.collection, generation) != self._seen_generation
                or updating != shown.updating):
            if shown is not None and shown.updating and not updating and self._main is not None and self._main.ready:
                self._main.clear_error()  # "being updated by another process" is over
            self.refresh_status()

    def sample_folder(self) -> str | None:
        """The configured folder, as status() lists it, if it is the bundled sample corpus."""
        if self.library is None or self.library.config.library.folders != LibraryConfig().folders:
            return None
        folders = self.library.config.folders()
        readme = folders[0] / "README.md" if folders else None
        try:
            if readme is not None and readme.read_text(encoding="utf-8").startswith("# Sample corpus"):
                return str(folders[0])
        except OSError:
            pass
        return None

    def generator_name(self) -> str:
        return self.library.config.generation.generator if self.library is not None else ""

    def open_source(self, source: Source, collection: str | None = None) -> None:
        """Read ``source`` in its document, in ``collection`` (that of its answer; None: the one in use)."""
        chunks = []
        if self.library is not None:
            try:
                library = self.library
                if collection and collection != library.collection:
                    library = library.for_collection(collection)
                chunks = library.store.chunks_of(source.hit.path)
            except Exception as e:
                self.show_error(error_text(e))
        self.push_screen(ViewerScreen(source, chunks))

    # --- actions --------------------------------------------------------------------------

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.help_sections()))

    def help_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        def key(k: str) -> str:
            return self.get_key_display(Binding(k, ""))

        def rows(bindings) -> list[tuple[str, str]]:
            out = []
            for b in bindings:
                if not isinstance(b, Binding) or not b.description:
                    continue
                keys = " / ".join(key(k) for k in b.key.split(","))
                out.append((keys, b.tooltip or b.description))
            return out

        return [
            ("Everywhere", rows(self.BINDINGS) + [
                (key("ctrl+p"), "Command palette: every action by name"),
                (key("ctrl+q"), "Quit"),
            ]),
            ("Chat", rows(MainScreen.BINDINGS) + [
                ("enter", "Ask the question typed in the box"),
                ("type anywhere", "Letters typed outside a text field go to the question box"),
                ("tab / shift+tab", "Move between the question box and the sources table"),
                ("enter (in sources)", "Read the selected source in its document"),
                ("1-9 (in sources)", "Read source [n] in its document"),
                ("click [n]", "Read source [n] of that answer (also in the palette: Open source [n])"),
            ]),
            ("Document viewer", rows(ViewerScreen.BINDINGS) + [("up / down", "Scroll")]),
            ("Library", rows(LibraryScreen.BINDINGS) + [("enter (in collections)", "Switch to the selected collection")]),
            ("Conversations", rows(ConversationsScreen.BINDINGS)),
            ("Settings", rows(SettingsScreen.BINDINGS) + [("enter", "Save (in any field)")]),
        ]

    def action_library(self) -> None:
        if isinstance(self.screen, LibraryScreen):
            return
        self.push_screen(LibraryScreen())

    def action_conversations(self) -> None:
        if isinstance(self.screen, ConversationsScreen):
            return
        self.push_screen(ConversationsScreen())

    # --- collections ------------------------------------------------------------------------

    def switch_collection(self, name: str) -> bool:
        """Ask, search and ingest in the collection ``name`` from now on (created if new).

        The chat stays as it is; the loaded models are kept.
        """
        if self.library is None:
            self.show_error(self.startup_error or "the library is not available")
            return False
        if name == self.library.collection:
            self.notify(f"Already using the collection {name}.", markup=False)
            return False
        busy = ("an ingest is running" if self.ingesting
                else "an answer is being written" if self._main is not None and self._main.answering
                else "the models are still loading" if not self.models_ready else "")
        if busy:
            self.notify(f"Cannot switch collections now: {busy}. Try again when it is done.",
                        severity="warning", markup=False)
            return False
        try:
            library = self.library.for_collection(name)
            st = library.status()  # opens it: an unusable store is said now, and the old one is kept
        except Exception as e:
            self.show_error(error_text(e))
            return False
        self.library = library
        self.refresh_status()
        what = f"{plural(st.files, 'file')}, {plural(st.chunks, 'chunk')}"
        if self._main is not None and self._main.ready:
            chat = " The next question starts a new chat." if self._main.conversation_id else ""
            self._main.chat.mount(SystemNote(f"Collection {name} ({what}): questions and ingests use it from now on.{chat}"))
            self._main.chat.scroll_end(animate=False)
        self.notify(f"Now using the collection {name} ({what}).", title="Collection", markup=False)
        if isinstance(self.screen, LibraryScreen):
            self.screen.action_reload()
        return True

    def action_new_collection(self) -> None:
        def chosen(name: str | None) -> None:
            if name:
                self.switch_collection(name)

        self.push_screen(
            PromptScreen("New collection", "a name, e.g. work (letters, digits, . _ -)",
                         "enter: create it and switch to it · esc: cancel", check=check_collection_name),
            chosen,
        )

    def open_conversation(self, info: ConversationInfo) -> None:
        """Show a stored conversation in the chat, in its own collection (switched to first)."""
        if self.library is not None and info.collection != self.library.collection:
            if not self.switch_collection(info.collection):
                self.notify(f"“{info.title}” belongs to the collection {info.collection}, which cannot be "
                            "opened now; it stays closed.", severity="warning", markup=False)
                return
        while len(self.screen_stack) > 1:
            self.pop_screen()  # not awaited: the stack changes now, so the next key goes to the chat
        self.main.open_conversation(info)

    # --- what screens ask (typed messages) -----------------------------------------------------

    def on_show_error(self, message: ShowError) -> None:
        self.show_error(message.message, notify=message.notify)

    def on_open_source(self, message: OpenSource) -> None:
        self.open_source(message.source, message.collection)

    def on_switch_collection(self, message: SwitchCollection) -> None:
        self.switch_collection(message.name)

    def on_new_collection(self, message: NewCollection) -> None:
        self.action_new_collection()

    async def on_conversation_deleted(self, message: ConversationDeleted) -> None:
        if self._main is not None and self._main.conversation_id == message.info.id:
            await self._main.action_new_chat()  # it was open in the chat: the chat starts afresh
        self.notify(f"Deleted “{message.info.title}”.")

    def on_settings_saved(self, m: SettingsSaved) -> None:
        self.settings_saved(m.target, m.updates, m.config, m.filters, m.matching, m.created)

    def on_status_changed(self, message: StatusChanged) -> None:
        self.refresh_status()

    def on_copy_text(self, message: CopyText) -> None:
        """OSC 52 is all a terminal offers, and nothing says whether it obeyed: so the text
        also goes to a file, and the note says both."""
        self.copy_to_clipboard(message.text)
        saved = ""
        if self.library is not None:
            try:
                target = self.library.config.data_dir / "copied.txt"
                target.write_text(message.text, encoding="utf-8")
                saved = f" Also saved to {display_path(target)}."
            except OSError:
                pass
        self.notify(f"Sent {message.what} to the terminal's clipboard. If nothing was copied, the terminal "
                    f"ignores clipboard requests (OSC 52): enable it (tmux: set -g set-clipboard on).{saved}",
                    title="Copy", timeout=10, markup=False)

    def action_copy_answer(self) -> None:
        self.main.action_copy_answer()

    # --- settings ---------------------------------------------------------------------------

    def settings_file(self) -> Path:
        """Where the settings screen writes: the config file in use, else ./config.toml."""
        if self.config_target is not None:
            return self.config_target
        if self.library is not None and self.library.config.path is not None:
            return self.library.config.path
        return Path.cwd() / "config.toml"

    def action_settings(self) -> None:
        if isinstance(self.screen, SettingsScreen):
            return
        if self.library is None:
            self.show_error(f"settings need a working config: {self.startup_error or 'the library is not available'}")
            return
        running = self.library.config
        current = self.saved_config or running
        values = {
            "generation.model": current.generation.model,
            "retrieval.top_k": current.retrieval.top_k,
            "retrieval.mode": current.retrieval.mode,
        }
        notes = []
        if current.generation.model != running.generation.model:
            notes.append(f"Saved; used after a restart: model {current.generation.model} (running: {running.generation.model}).")
        if current.retrieval.mode != running.retrieval.mode:
            notes.append(f"Saved; used after a restart: search mode {current.retrieval.mode} (running: {running.retrieval.mode}).")
        self.push_screen(SettingsScreen(values, self.filters, self.settings_file(), notes))

    def settings_saved(
        self,
        target: Path,
        updates: dict[str, Any],
        config: Config | None,
        filters: Filters,
        matching: int | None,
        created: bool = False,
    ) -> None:
        """The settings screen wrote ``updates`` (if any) to ``target``; apply what applies now."""
        if config is not None:
            self.saved_config = config
            self.config_target = target
        if "retrieval.top_k" in updates:
            self.session_top_k = int(updates["retrieval.top_k"])
        self.filters = filters
        if isinstance(self.screen, SettingsScreen):
            self.pop_screen()
        if self._main is not None and self._main.ready:
            self._main.show_filters(filters)
        messages = []
        if updates:
            saved = ", ".join(f"{k} = {v}" for k, v in updates.items())
            if created:
                messages.append(f"Saved to a new config file, {target} (read when the assistant starts in "
                                f"{display_path(target.parent)}): {saved}.")
            else:
                messages.append(f"Saved to {display_path(target)}: {saved}.")
            later = [k for k in ("generation.model", "retrieval.mode") if k in updates]
            if later:
                messages.append(f"The new {' and '.join(k.split('.')[1] for k in later)} is used after a restart.")
        severity = "information"
        if filters.active():
            what = filters_text(filters)
            if matching == 0:
                messages.append(f"Filters ({what}): no indexed file matches, so nothing will be found.")
                severity = "warning"
            elif matching is not None:
                messages.append(f"Filters ({what}): {matching} indexed file{'s' if matching != 1 else ''} match.")
            else:
                messages.append(f"Filters: {what}.")
        elif not updates:
            messages.append("No changes to save; no filters.")
        self.notify(" ".join(messages), title="Settings", severity=severity, timeout=10)

    def action_ingest_path(self) -> None:
        def chosen(path: str | None) -> None:
            if path:
                self.start_ingest([Path(path).expanduser()])

        self.push_screen(PathScreen(), chosen)

    def action_ingest(self) -> None:
        self.start_ingest(None)

    def action_cancel_ingest(self) -> None:
        if self.ingesting:
            self._abort_ingest.set()
            self.main.ingest_panel.query_one("#ingest-label").update(self._stopping_text())

    def _stopping_text(self) -> str:
        try:
            files = self.library.status().files if self.library is not None else 0
        except Exception:
            files = 0
        return (f"Stopping ingest, keeping the {plural(files, 'file')} already indexed "
                "(the group being embedded is dropped)…")

    async def action_quit(self) -> None:
        """With an ingest running, stop it first, saying so: what was written stays."""
        if self.ingesting and not self._quit_after_ingest:
            self._quit_after_ingest = True
            self.action_cancel_ingest()
            again = self.get_key_display(Binding("ctrl+q", "quit"))
            self.notify(f"{self._stopping_text()} Then the assistant quits ({again} again: at once).",
                        title="Quitting", markup=False)
            return
        await super().action_quit()

    # --- ingest ---------------------------------------------------------------------------

    def start_ingest(self, paths: list[Path] | None, *, retry_failed: bool = False) -> None:
        if self.library is None:
            self.show_error(self.startup_error or "the library is not available")
            return
        if self.ingesting:
            self.notify("An ingest is already running.", severity="warning")
            return
        if paths:
            what = ", ".join(display_path(p) for p in paths)
        else:
            what = ", ".join(display_path(p) for p in self.library.config.folders()) or "the configured folders"
        self.ingesting = True
        self._abort_ingest.clear()
        self.main.clear_error()
        self.main.ingest_panel.start(what)
        self.main.set_activity("ingesting")
        self._ingest_worker(self.library, paths, what, retry_failed)

    @work(thread=True, exclusive=True, group="ingest", exit_on_error=False)
    def _ingest_worker(self, library: Library, paths: list[Path] | None, what: str, retry_failed: bool = False) -> None:
        last = 0.0

        def on_event(ev: IngestEvent) -> None:
            nonlocal last
            if self._abort_ingest.is_set():
                raise _IngestAborted()
            now = time.monotonic()
            if ev.kind == "file" and now - last < 0.1 and ev.files_done < ev.files_total:
                return  # at most ten updates a second
            last = now
            self.call_later(self._ingest_event, ev)

        try:
            report = library.ingest(paths, on_event=on_event, retry_failed=retry_failed)
        except _IngestAborted:
            kept = library.status().files
            self.call_later(self._ingest_done, what, None, f"ingest stopped; the {plural(kept, 'file')} already indexed are kept")
            return
        except Exception as e:  # never a traceback in the UI
            self.call_later(self._ingest_done, what, None, error_text(e))
            return
        self.call_later(self._ingest_done, what, report, None)

    def _ingest_event(self, ev: IngestEvent) -> None:
        self.main.ingest_panel.event(ev)

    async def _ingest_done(self, what: str, report: IngestReport | None, error: str | None) -> None:
        self.ingesting = False
        if self._quit_after_ingest:
            self.exit()
            return
        panel = self.main.ingest_panel
        panel.stop()
        self.main.set_activity("")
        if report is None:
            message = f"ingest of {what}: {error}"
            self.show_error(message)
            await self.main.chat.mount(SystemNote(message[0].upper() + message[1:], error=True))
        else:
            self.last_report = report
            await self.main.chat.mount(SystemNote(ingest_summary(what, report, self.show_timings)))
            n_failed = len(report.files_failed)
            self.notify(
                f"{report.files_ingested} indexed, {report.files_unchanged} unchanged, {n_failed} failed.",
                title="Ingest finished",
                severity="warning" if n_failed else "information",
            )
        self.main.chat.scroll_end(animate=False)
        self.refresh_status()
        if isinstance(self.screen, LibraryScreen):
            self.screen.action_reload()

    # --- command palette ------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield SystemCommand("Ingest configured folders", "Index (or re-sync) the folders listed in the config", self.action_ingest)
        yield SystemCommand("Ingest a file or folder…", "Type a path to index", self.action_ingest_path)
        yield SystemCommand("Retry failed files", "Ingest the configured folders, reading again the files that "
                            "failed before even if they have not changed", lambda: self.start_ingest(None, retry_failed=True))
        if self.ingesting:
            yield SystemCommand("Cancel ingest", "Stop the running ingest after the current file", self.action_cancel_ingest)
        yield SystemCommand("New chat", "Start a new conversation (the current one is kept)", self._new_chat)
        yield SystemCommand("Conversations", "Open, continue or delete a stored conversation", self.action_conversations)
        yield SystemCommand("Settings", "Model, top_k, search mode; filters for this session", self.action_settings)
        if self._main is not None and self._main.last_answer() is not None:
            yield SystemCommand("Copy answer", "Copy the last answer and its sources to the clipboard", self.action_copy_answer)
        if self._main is not None and self._main.answering:
            yield SystemCommand("Stop generation", "Stop the answer being written", self._main.action_stop)
        yield SystemCommand("Library", "Files indexed, failures; remove files", self.action_library)
        yield from self._collection_commands()
        if isinstance(screen, MainScreen) and screen.ready:
            for source in screen.query_one(SourcesTable).sources:
                h = source.hit
                where = f"{display_path(h.path)}, lines {lines_of(h.start_line, h.end_line)}" + (f", page {h.page}" if h.page else "")
                yield SystemCommand(f"Open source [{source.n}]", f"Read {escape(where)} in its document",
                                    lambda s=source: self._open_listed_source(s))
        yield SystemCommand("Help", "Keys and what they do", self.action_help)
        yield from super().get_system_commands(screen)

    def _collection_commands(self) -> Iterable[SystemCommand]:
        if self.library is None:
            return
        try:
            collections = self.library.collections()
        except Exception:
            collections = []
        for c in collections:
            if c.name != self.library.collection:
                counts = f"{c.files} files, {c.chunks} chunks" if c.files is not None else "unreadable"
                yield SystemCommand(f"Switch collection: {c.name}", f"Ask and ingest in {c.name} ({counts})",
                                    lambda name=c.name: self.switch_collection(name))
        yield SystemCommand("New collection…", "Start a new, empty collection and switch to it", self.action_new_collection)

    def _open_listed_source(self, source: Source) -> None:
        self.main.query_one(SourcesTable).select_number(source.n)
        self.open_source(source)

    async def _new_chat(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()
        await self.main.action_new_chat()

"""Screens: chat (main), document viewer, library, help, and two small modals.

Screens only call the Library (through ``self.app.library``); anything that can
block (asking, ingesting, removing) runs in a thread worker and comes back
through ``call_from_thread``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Label, Static
from textual.worker import get_current_worker

from ..store import ChunkRow
from ..types import Answer, Retrieved, Source
from .widgets import (
    AnswerView,
    ChatLog,
    IngestPanel,
    QuestionView,
    SourcesTable,
    StatusLine,
    Welcome,
    display_path,
    lines_of,
)

if TYPE_CHECKING:  # pragma: no cover
    from .app import AssistantApp

__all__ = ["MainScreen", "ViewerScreen", "LibraryScreen", "HelpScreen", "PathScreen", "ConfirmScreen"]


# --- main: chat + sources ---------------------------------------------------------------


class MainScreen(Screen):
    """Chat log, sources of the current answer, ingest progress, the question box."""

    app: "AssistantApp"

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS = [
        Binding("escape", "stop", "Stop", tooltip="Stop the answer being generated"),
        Binding("ctrl+n", "new_chat", "New chat", tooltip="Clear the conversation"),
        Binding("pageup", "scroll_chat(-1)", "Scroll up", show=False, tooltip="Scroll the chat up"),
        Binding("pagedown", "scroll_chat(1)", "Scroll down", show=False, tooltip="Scroll the chat down"),
    ]

    def __init__(self) -> None:
        super().__init__(id="main")
        self.answering = False
        self.ready = False  # composed and mounted: safe to update
        self._current: AnswerView | None = None  # the answer being written
        self._stop = threading.Event()

    def compose(self) -> ComposeResult:
        with Vertical(id="body"):
            with ChatLog(id="chat"):
                yield Welcome(id="welcome")
            with Vertical(id="sources-pane", classes="-hidden"):
                yield Label("Sources  (enter: read in context)", id="sources-title")
                yield SourcesTable(id="sources")
        yield IngestPanel(id="ingest")
        yield Input(placeholder="Ask a question about your documents…", id="question")
        yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.ready = True
        self.query_one("#question", Input).focus()
        self.app.refresh_status()

    def on_screen_resume(self) -> None:
        if self.app.library is not None:
            self.app.refresh_status()

    # --- state shown ---------------------------------------------------------------

    def show_status(self, status: dict) -> None:
        app = self.app
        self.query_one(Welcome).show_state(status, app.key_for("ingest"), app.key_for("ingest_path"))
        files, chunks = status["files"], status["chunks"]
        model = status.get("model") or ""
        model = Path(model).name if ("/" in model or "\\" in model) else model
        parts = [f"{files} file{'s' if files != 1 else ''}", f"{chunks} chunks", f"{status.get('generator')} ({model})"]
        if status.get("failures"):
            parts.append(f"{len(status['failures'])} failed files ({app.key_for('library')})")
        self.query_one(StatusLine).set_counts(" · ".join(parts))

    def show_error(self, message: str) -> None:
        self.query_one(StatusLine).set_error(message)

    def show_problem(self, message: str) -> None:
        """The library could not be opened at all (e.g. a bad config file)."""
        self.query_one(Welcome).show_problem(message)
        self.show_error(message)

    def clear_error(self) -> None:
        self.query_one(StatusLine).set_error("")

    def set_activity(self, text: str) -> None:
        self.query_one(StatusLine).set_activity(text)

    @property
    def ingest_panel(self) -> IngestPanel:
        return self.query_one(IngestPanel)

    @property
    def chat(self) -> ChatLog:
        return self.query_one(ChatLog)

    # --- actions ----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return True if self.answering else None  # shown dimmed when there is nothing to stop
        return True

    def action_scroll_chat(self, direction: int) -> None:
        chat = self.chat
        chat.scroll_page_down() if direction > 0 else chat.scroll_page_up()

    def action_stop(self) -> None:
        if self.answering and not self._stop.is_set():
            self._stop.set()
            self.set_activity("stopping…")

    async def action_new_chat(self) -> None:
        self.action_stop()
        self.workers.cancel_group(self, "ask")
        await self.chat.clear_turns()
        self.query_one(SourcesTable).show([])
        self.query_one("#sources-pane").add_class("-hidden")
        self.clear_error()
        self.query_one("#question", Input).focus()

    def on_unmount(self) -> None:
        self._stop.set()

    # --- asking -----------------------------------------------------------------------

    @on(Input.Submitted, "#question")
    async def _submitted(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if not question:
            return
        if self.answering:
            self.app.notify("Still answering: press esc to stop it first.", severity="warning")
            return
        event.input.clear()
        await self.ask(question)

    async def ask(self, question: str) -> AnswerView:
        view = AnswerView(question)
        await self.chat.mount_all([QuestionView(question), view])
        self.chat.scroll_end(animate=False)
        library = self.app.library
        if library is None:
            await view.failed(self.app.startup_error or "the library is not available")
            self.app.show_error(self.app.startup_error or "the library is not available")
            return view
        self.clear_error()
        self._stop.clear()
        self._current = view
        self.answering = True
        self.refresh_bindings()
        self.set_activity(f"answering… ({self.app.key_for('stop', self)} to stop)")
        self._ask_worker(library, question, view)
        return view

    @work(thread=True, exclusive=True, group="ask", exit_on_error=False)
    def _ask_worker(self, library, question: str, view: AnswerView) -> None:
        app = self.app
        worker = get_current_worker()
        from .app import USER_ERRORS

        outcome: tuple[str, object] = ("error", "the answer ended without a result")
        stream = None
        try:
            stream = library.ask_stream(question)
            for item in stream:
                if self._stop.is_set() or worker.is_cancelled:
                    outcome = ("stopped", None)
                    break
                if isinstance(item, Answer):
                    outcome = ("answer", item)
                elif isinstance(item, Retrieved):
                    app.from_thread(self.show_sources, item.sources)
                elif not app.from_thread(view.write, item):
                    outcome = ("stopped", None)
                    break
        except USER_ERRORS as e:
            outcome = ("error", str(e))
        except Exception as e:  # never a traceback in the UI
            outcome = ("error", f"{type(e).__name__}: {e}")
        finally:
            if stream is not None:
                try:
                    stream.close()  # closes the generator, which stops the model
                except Exception:
                    pass
        app.from_thread(self._ask_finished, view, *outcome)

    async def _ask_finished(self, view: AnswerView, kind: str, payload) -> None:
        try:
            if view.is_attached:  # else the chat was cleared meanwhile
                await self._show_outcome(view, kind, payload)
        finally:
            if view is self._current:
                self._current = None
                self.answering = False
                self.refresh_bindings()
                self.set_activity("")

    async def _show_outcome(self, view: AnswerView, kind: str, payload) -> None:
        if kind == "answer":
            assert isinstance(payload, Answer)
            await view.finish(payload, self.app.show_timings)
            self.show_sources(payload.sources)
        elif kind == "stopped":
            await view.stopped()
        else:
            message = str(payload)
            hint = ""
            status = self.app.status_info
            if status is not None and status.get("chunks") == 0:
                hint = f"Press {self.app.key_for('ingest')} to ingest the configured folders first."
            await view.failed(message, hint)
            self.app.show_error(message, notify=False)
        self.chat.scroll_end(animate=False)

    def show_sources(self, sources: list[Source]) -> None:
        table = self.query_one(SourcesTable)
        table.show(sources)
        self.query_one("#sources-pane").set_class(not sources, "-hidden")

    @on(DataTable.RowSelected, "#sources")
    def _source_selected(self, event: DataTable.RowSelected) -> None:
        source = self.query_one(SourcesTable).source_for_key(event.row_key.value)
        if source is not None:
            self.app.open_source(source)


# --- document viewer -----------------------------------------------------------------------


class ChunkBlock(Static):
    def __init__(self, chunk: ChunkRow, hit: bool, label: str = "") -> None:
        head = Text()
        head.append(f"lines {lines_of(chunk.start_line, chunk.end_line)}", style="bold")
        if chunk.page:
            head.append(f" · page {chunk.page}")
        if chunk.heading:
            head.append(f" · {chunk.heading}", style="italic")
        if label:
            head.append(f"  {label}", style="bold reverse")
        super().__init__(Text.assemble(head, "\n", chunk.text), classes="chunk -hit" if hit else "chunk")
        self.chunk = chunk


class ViewerScreen(Screen):
    """The chunks of one file, in order, with the selected passage highlighted."""

    BINDINGS = [
        Binding("escape,q", "close", "Back", tooltip="Back to the chat"),
        Binding("n", "jump(1)", "Next passage", tooltip="Move to the next passage of the file"),
        Binding("p", "jump(-1)", "Prev passage", tooltip="Move to the previous passage of the file"),
        Binding("h", "jump(0)", "To source", tooltip="Back to the cited passage"),
    ]

    def __init__(self, source: Source, chunks: list[ChunkRow]) -> None:
        super().__init__()
        self.source = source
        self.chunks = chunks
        self.hit_index = self._find_hit()
        self.current = self.hit_index if self.hit_index is not None else 0

    def _find_hit(self) -> int | None:
        h = self.source.hit
        for i, c in enumerate(self.chunks):
            if c.id == h.chunk_id:
                return i
        for i, c in enumerate(self.chunks):  # re-ingested since: match the location
            if c.start_line == h.start_line and c.page == h.page:
                return i
        return None

    def compose(self) -> ComposeResult:
        h = self.source.hit
        title = Text()
        title.append(Path(h.path).name, style="bold")
        title.append(f"  {display_path(h.path)}", style="dim")
        where = f"[{self.source.n}] lines {lines_of(h.start_line, h.end_line)}" + (f", page {h.page}" if h.page else "")
        title.append(f"\n{where} · {len(self.chunks)} passages in this file")
        yield Static(title, id="viewer-title")
        with VerticalScroll(id="viewer-body"):
            if not self.chunks:
                yield Static(
                    Text("This file is no longer in the library; the passage as retrieved:", style="italic"),
                    classes="note",
                )
                yield ChunkBlock(
                    ChunkRow(h.chunk_id, h.path, 0, h.text, h.text, "", h.page, h.start_line or 0, h.end_line or 0, h.heading),
                    True,
                    f"[{self.source.n}]",
                )
            for i, c in enumerate(self.chunks):
                yield ChunkBlock(c, i == self.hit_index, f"[{self.source.n}]" if i == self.hit_index else "")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#viewer-body").focus()
        self.call_after_refresh(self._scroll_to, self.current, False)

    def _scroll_to(self, index: int, animate: bool = True) -> None:
        blocks = list(self.query(ChunkBlock))
        if not blocks:
            return
        index = max(0, min(index, len(blocks) - 1))
        self.current = index
        for i, b in enumerate(blocks):
            b.set_class(i == index, "-current")
        self.query_one("#viewer-body", VerticalScroll).scroll_to_widget(blocks[index], animate=animate, top=True)

    def action_jump(self, step: int) -> None:
        if step == 0:
            self._scroll_to(self.hit_index or 0)
        else:
            self._scroll_to(self.current + step)

    def action_close(self) -> None:
        self.app.pop_screen()


# --- library -------------------------------------------------------------------------------


class LibraryScreen(Screen):
    """What is indexed: numbers, files, failures; remove a file or its folder."""

    app: "AssistantApp"

    BINDINGS = [
        Binding("escape,q", "close", "Back", tooltip="Back to the chat"),
        Binding("d,delete", "remove(False)", "Remove file", tooltip="Remove the selected file from the library"),
        Binding("D", "remove(True)", "Remove folder", tooltip="Remove every indexed file in the selected file's folder"),
        Binding("r", "reload", "Refresh", tooltip="Reload the numbers and lists"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(id="lib-summary")
        yield Label("Files", classes="section")
        yield DataTable(id="files", cursor_type="row")
        yield Label("Failures", classes="section", id="failures-title")
        yield DataTable(id="failures", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        files = self.query_one("#files", DataTable)
        files.add_column("file", key="path")
        files.add_column("chunks", key="chunks")
        files.add_column("reader", key="reader")
        files.add_column("ingested", key="when")
        fails = self.query_one("#failures", DataTable)
        fails.add_column("file", key="path")
        fails.add_column("reason", key="reason")
        self.action_reload()
        files.focus()

    def on_screen_resume(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        app = self.app
        library = app.library
        summary = self.query_one("#lib-summary", Static)
        if library is None:
            summary.update(Text(f"Error: {app.startup_error or 'the library is not available'}", style="red"))
            return
        from .app import USER_ERRORS

        try:
            st = library.status()
            rows = library.store.file_rows()
        except USER_ERRORS as e:
            summary.update(Text(f"Error: {e}", style="red"))
            return
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("indexed", f"{st['files']} files, {st['chunks']} chunks, {len(st['failures'])} failed")
        grid.add_row("folders", ", ".join(display_path(f) for f in st["folders"]) or "(none configured)")
        grid.add_row("data", display_path(st["data_dir"]))
        grid.add_row("models", f"embedding {st['embed_model']} · generator {st['generator']} ({st['model']})")
        grid.add_row("config", display_path(st["config"]) if st["config"] else "(built-in defaults)")
        summary.update(grid)

        table = self.query_one("#files", DataTable)
        keep = table.cursor_row
        table.clear()
        for r in rows:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.ingested_at))
            table.add_row(display_path(r.path), str(r.n_chunks), r.reader, when, key=r.path)
        if rows:
            table.move_cursor(row=min(max(keep, 0), len(rows) - 1))
        fails = self.query_one("#failures", DataTable)
        fails.clear()
        for f in st["failures"]:
            fails.add_row(display_path(f["path"]), f["reason"], key=f["path"])
        fails.display = bool(st["failures"])
        self.query_one("#failures-title", Label).update(
            f"Failures ({len(st['failures'])})" if st["failures"] else "Failures: none"
        )

    def selected_path(self) -> str | None:
        table = self.query_one("#files", DataTable)
        if table.row_count == 0:
            return None
        key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return key.value

    def action_remove(self, folder: bool) -> None:
        path = self.selected_path()
        if path is None:
            self.app.notify("Nothing to remove: no file selected.", severity="warning")
            return
        target = str(Path(path).parent) if folder else path
        what = f"the folder {display_path(target)} (every indexed file under it)" if folder else display_path(target)

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._remove_worker(target)

        self.app.push_screen(
            ConfirmScreen(f"Remove {what} from the library?\nThe files on disk are not touched."), confirmed
        )

    @work(thread=True, exclusive=True, group="remove", exit_on_error=False)
    def _remove_worker(self, target: str) -> None:
        app = self.app
        from .app import USER_ERRORS

        try:
            files, chunks = app.library.remove(Path(target))
        except USER_ERRORS as e:
            app.from_thread(app.show_error, str(e))
            return
        except Exception as e:
            app.from_thread(app.show_error, f"{type(e).__name__}: {e}")
            return
        app.from_thread(self._removed, target, files, chunks)

    def _removed(self, target: str, files: int, chunks: int) -> None:
        self.app.notify(f"Removed {display_path(target)}: {files} file{'s' if files != 1 else ''}, {chunks} chunks.")
        self.action_reload()
        self.app.refresh_status()

    def action_close(self) -> None:
        self.app.pop_screen()


# --- help and modals -------------------------------------------------------------------------


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,f1,question_mark", "close", "Close")]

    def __init__(self, sections: list[tuple[str, list[tuple[str, str]]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for title, rows in self.sections:
            table.add_row(Text(title, style="bold underline"), "")
            for keys, text in rows:
                table.add_row(keys, text)
            table.add_row("", "")
        with Vertical(id="help-box"):
            yield Label("Keys", id="help-title")
            with VerticalScroll(id="help-body"):
                yield Static(table)
            yield Label("esc to close · ^p: every command by name", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()

    def action_close(self) -> None:
        self.dismiss(None)


class PathScreen(ModalScreen[str | None]):
    """Type a file or folder to ingest."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="path-box", classes="modal-box"):
            yield Label("Ingest a file or folder", classes="modal-title")
            yield Input(placeholder="e.g. ~/Documents/manuals", id="path-input")
            yield Label("enter to ingest · esc to cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        self.dismiss(value or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Static(Text(self.question), classes="modal-title")
            with Horizontal(classes="hint-row"):
                yield Label("y / enter: remove   n / esc: cancel", classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

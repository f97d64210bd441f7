"""Screens: chat (main), document viewer, library, conversations, settings, help, small modals.

Screens only call the Library (through ``self.app.library``); anything that can
block (asking, ingesting, removing) runs in a thread worker and comes back
through ``call_from_thread``.
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Label, Markdown, Select, Static
from textual.worker import get_current_worker

from ..conversation import ConversationInfo, Turn
from ..library import CollectionInfo
from ..retrieve import Filters
from ..store import ChunkRow
from ..types import Answer, Retrieved, Source
from .widgets import (
    AnswerView,
    ChatLog,
    IngestPanel,
    QuestionView,
    SourcesTable,
    StatusLine,
    SystemNote,
    Welcome,
    answer_clipboard_text,
    citation_number,
    display_path,
    filters_text,
    lines_of,
    plural,
    stored_answer,
)

if TYPE_CHECKING:  # pragma: no cover
    from .app import AssistantApp

__all__ = [
    "MainScreen",
    "ViewerScreen",
    "LibraryScreen",
    "ConversationsScreen",
    "SettingsScreen",
    "HelpScreen",
    "PromptScreen",
    "PathScreen",
    "ConfirmScreen",
]


# --- main: chat + sources ---------------------------------------------------------------


class MainScreen(Screen):
    """Chat log, sources of the current answer, ingest progress, the question box.

    The chat is one conversation: ``conversation_id`` is created with the first answer,
    each answer is stored as a turn, and the earlier turns go with the next question.
    """

    app: "AssistantApp"

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS = [
        # not in the footer: while answering, the status line says which key stops
        Binding("escape", "stop", "Stop", show=False, tooltip="Stop the answer being generated"),
        Binding("ctrl+n", "new_chat", "New chat", tooltip="Start a new conversation (the current one is kept)"),
        Binding("ctrl+y", "copy_answer", "Copy", show=False, tooltip="Copy the last answer and its sources"),
        Binding("pageup", "scroll_chat(-1)", "Scroll up", show=False, tooltip="Scroll the chat up"),
        Binding("pagedown", "scroll_chat(1)", "Scroll down", show=False, tooltip="Scroll the chat down"),
    ]

    def __init__(self) -> None:
        super().__init__(id="main")
        self.answering = False
        self.ready = False  # composed and mounted: safe to update
        self._current: AnswerView | None = None  # the answer being written
        self._stop = threading.Event()
        self.conversation_id: str | None = None  # created with the first answer
        self._epoch = 0  # bumped when the chat is cleared or replaced: late results are dropped

    def compose(self) -> ComposeResult:
        with Vertical(id="body"):
            with ChatLog(id="chat"):
                yield Welcome(id="welcome")
            with Vertical(id="sources-pane", classes="-hidden"):
                yield Label("Sources  (enter or 1-9: read in context)", id="sources-title")
                yield SourcesTable(id="sources")
        yield IngestPanel(id="ingest")
        yield Input(placeholder="Ask a question about your documents…", id="question")
        yield StatusLine(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.ready = True
        self.query_one("#question", Input).focus()
        self.app.refresh_status()
        self.show_filters(self.app.filters)
        self.app.start_warmup()

    def on_screen_resume(self) -> None:
        if self.app.library is not None:
            self.app.refresh_status()

    # --- state shown ---------------------------------------------------------------

    def show_status(self, status: dict) -> None:
        app = self.app
        self.query_one(Welcome).show_state(status, app.key_for("ingest"), app.key_for("ingest_path"), app.sample_folder())
        files, chunks = status["files"], status["chunks"]
        model = status.get("model") or ""
        model = Path(model).name if ("/" in model or "\\" in model) else model
        parts = [plural(files, 'file'), plural(chunks, 'chunk'),
                 f"{status.get('generator')} ({model})"]
        if status.get("collection", "default") != "default":
            parts.insert(0, f"collection {status['collection']}")
        if status.get("failures"):
            parts.append(f"{len(status['failures'])} failed ({app.key_for('library')})")
        self.query_one(StatusLine).set_counts(" · ".join(parts))

    def show_error(self, message: str) -> None:
        self.query_one(StatusLine).set_error(message)

    def show_problem(self, message: str) -> None:
        """The library could not be opened at all (e.g. a bad config file)."""
        self.query_one(Welcome).show_problem(message)
        self.show_error(message)

    def clear_error(self) -> None:
        self.query_one(StatusLine).set_error("")

    def show_filters(self, filters: Filters | None) -> None:
        self.query_one(StatusLine).set_filters(filters_text(filters))

    def set_loading(self, text: str) -> None:
        self.query_one(StatusLine).set_loading(text)

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
        """A new conversation; the one shown stays stored (see the conversations screen)."""
        self.action_stop()
        self.workers.cancel_group(self, "ask")
        self.conversation_id = None
        self._epoch += 1
        await self.chat.clear_turns()
        self.show_sources([])
        self.clear_error()
        self.query_one("#question", Input).focus()

    async def show_conversation(self, info: ConversationInfo, turns: list[Turn]) -> None:
        """Replace the chat with a stored conversation; the next question continues it."""
        await self.action_new_chat()
        self.conversation_id = info.id
        pairs = [(QuestionView(t.question, t.query), AnswerView(t.question), t) for t in turns]
        await self.chat.mount_all([w for q, a, _ in pairs for w in (q, a)])
        last: Answer | None = None
        for _, view, t in pairs:
            last = stored_answer(t.question, t.query, t.answer, t.sources)
            await view.finish(last, self.app.show_timings)
        n = len(turns)
        note = Text()
        note.append(f"Conversation “{info.title}”", style="bold")
        note.append(f": {plural(n, 'turn')}. A question you ask now continues it.")
        await self.chat.mount(SystemNote(note))
        if last is not None:
            self.show_sources(last.sources, not_found=not last.grounded)
        self.chat.scroll_end(animate=False)
        self.query_one("#question", Input).focus()

    def last_answer(self) -> Answer | None:
        for view in reversed(self.chat.turns()):
            if view.answer is not None:
                return view.answer
        return None

    def action_copy_answer(self) -> None:
        answer = self.last_answer()
        if answer is None:
            self.app.notify("There is no answer to copy yet.", severity="warning")
            return
        self.app.copy_to_clipboard(answer_clipboard_text(answer))
        n = len(answer.sources)
        self.app.notify(
            f"The answer and its {plural(n, 'source')} are on the clipboard.", title="Copied"
        )

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
        asked = QuestionView(question)
        await self.chat.mount_all([asked, view])
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
        app = self.app
        filters = app.filters if app.filters.active() else None
        self._ask_worker(library, question, asked, view, self.conversation_id, self._epoch, filters, app.session_top_k)
        return view

    @work(thread=True, exclusive=True, group="ask", exit_on_error=False)
    def _ask_worker(
        self,
        library,
        question: str,
        asked: QuestionView,
        view: AnswerView,
        conversation: str | None,
        epoch: int,
        filters: Filters | None,
        top_k: int | None,
    ) -> None:
        app = self.app
        worker = get_current_worker()
        from .app import error_text

        outcome: tuple[str, object] = ("error", "the answer ended without a result")
        stream = None
        try:
            history = library.conversations.history(conversation) if conversation else []
            stream = library.ask_stream(question, history=history, filters=filters, top_k=top_k)
            for item in stream:
                if self._stop.is_set() or worker.is_cancelled:
                    outcome = ("stopped", None)
                    break
                if isinstance(item, Answer):
                    outcome = ("answer", item)
                elif isinstance(item, Retrieved):
                    app.from_thread(self._retrieved, asked, view, item)
                elif not app.from_thread(view.write, item):
                    outcome = ("stopped", None)
                    break
        except Exception as e:  # never a traceback in the UI
            outcome = ("error", error_text(e))
        finally:
            if stream is not None:
                try:
                    stream.close()  # closes the generator, which stops the model
                except Exception:
                    pass
        saved: str | None = None
        if outcome[0] == "answer":
            try:  # the turn is kept even if the chat was cleared while the answer finished
                if conversation is None:
                    conversation = library.conversations.create()
                library.conversations.add_turn(conversation, outcome[1])
                saved = conversation
            except Exception as e:
                app.from_thread(app.show_error, f"the answer could not be saved to the conversation: {e}")
        app.from_thread(self._ask_finished, view, epoch, saved, *outcome)

    def _retrieved(self, asked: QuestionView, view: AnswerView, item: Retrieved) -> None:
        if asked.is_attached:
            asked.set_query(item.query)
            view.sources = list(item.sources)
            self.show_sources(item.sources)

    async def _ask_finished(self, view: AnswerView, epoch: int, conversation: str | None, kind: str, payload) -> None:
        try:
            if epoch == self._epoch and conversation is not None:
                self.conversation_id = conversation
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
            hint = ""
            if not payload.grounded:
                if self.app.filters.active():
                    hint = (f"The filters are on ({filters_text(self.app.filters)}): "
                            f"{self.app.key_for('settings')} changes them.")
                else:
                    hint = "Try other words, or ingest the documents that hold the answer."
            await view.finish(payload, self.app.show_timings, hint)
            self.show_sources(payload.sources, not_found=not payload.grounded)
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

    def show_sources(self, sources: list[Source], *, not_found: bool = False) -> None:
        table = self.query_one(SourcesTable)
        table.show(sources)
        self.query_one("#sources-title", Label).update(
            "Closest passages, not relevant enough  (enter: read)" if not_found
            else "Sources  (enter or 1-9: read in context)"
        )
        self.query_one("#sources-pane").set_class(not sources, "-hidden")

    @on(DataTable.RowSelected, "#sources")
    def _source_selected(self, event: DataTable.RowSelected) -> None:
        source = self.query_one(SourcesTable).source_for_key(event.row_key.value)
        if source is not None:
            self.app.open_source(source)

    @on(Markdown.LinkClicked)
    def _link_clicked(self, event: Markdown.LinkClicked) -> None:
        event.stop()
        n = citation_number(event.href)
        if n is None:  # a link the answer itself contains: what Markdown does by default
            self.app.open_url(event.href)
            return
        try:
            view = event.markdown.query_ancestor(AnswerView)
        except NoMatches:
            return
        self.open_citation(view, n)

    def open_citation(self, view: AnswerView, n: int) -> None:
        """Source [n] of the answer ``view``: selected in the sources table and read in the viewer."""
        source = next((s for s in view.sources if s.n == n), None)
        if source is None:
            self.app.notify(f"[{n}] is not one of the passages of this answer.", severity="warning", markup=False)
            return
        table = self.query_one(SourcesTable)
        if table.sources != view.sources:  # an earlier answer: the table shows its sources now
            self.show_sources(view.sources, not_found=view.answer is not None and not view.answer.grounded)
        table.select_number(n)
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
        yield Footer(compact=True)

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
        Binding("r", "reload", "Refresh", show=False, tooltip="Reload the numbers and lists"),
        Binding("c", "collections", "Collections", tooltip="Go to the collections: enter switches to the selected one"),
        Binding("n", "new_collection", "New collection", show=False, tooltip="Start a new, empty collection and switch to it"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.collections: list[CollectionInfo] = []

    def compose(self) -> ComposeResult:
        yield Static(id="lib-summary")
        yield Label("Collections", classes="section", id="collections-title")
        yield DataTable(id="collections", cursor_type="row")
        yield Label("Files", classes="section")
        yield DataTable(id="files", cursor_type="row")
        yield Label("Failures", classes="section", id="failures-title")
        yield DataTable(id="failures", cursor_type="row")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        collections = self.query_one("#collections", DataTable)
        collections.add_column("", key="active", width=1)
        collections.add_column("collection", key="name")
        collections.add_column("files", key="files")
        collections.add_column("chunks", key="chunks")
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
            collections = library.collections()
        except USER_ERRORS as e:
            summary.update(Text(f"Error: {e}", style="red"))
            return
        self._show_collections(collections, library.collection)
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("indexed", f"{plural(st['files'], 'file')}, {plural(st['chunks'], 'chunk')}, {len(st['failures'])} failed")
        grid.add_row("folders", ", ".join(display_path(f) for f in st["folders"]) or "(none configured)")
        grid.add_row("data", display_path(st["data_dir"]))
        grid.add_row("models", f"embedding {st['embed_model']} · generator {st['generator']} ({st['model']})")
        grid.add_row("config", display_path(st["config"]) if st["config"] else "(built-in defaults)")
        summary.update(grid)

        table = self.query_one("#files", DataTable)
        keep = table.cursor_row
        table.clear()
        for r in rows:
            when = _when(r.ingested_at)
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

    def _show_collections(self, collections: list[CollectionInfo], active: str) -> None:
        table = self.query_one("#collections", DataTable)
        first = not self.collections
        keep = table.cursor_row
        self.collections = collections
        table.clear()
        for c in collections:
            files, chunks = ("?" if v is None else str(v) for v in (c.files, c.chunks))  # None: unreadable
            table.add_row("●" if c.name == active else "", c.name, files, chunks, key=c.name)
        names = [c.name for c in collections]
        row = names.index(active) if first and active in names else keep
        if collections:
            table.move_cursor(row=min(max(row, 0), len(collections) - 1))
        n = len(collections)
        self.query_one("#collections-title", Label).update(
            f"Collections ({n})  ● in use · {self.app.key_for('collections', self)}, enter: switch · "
            f"{self.app.key_for('new_collection', self)}: new"
        )

    def action_collections(self) -> None:
        self.query_one("#collections", DataTable).focus()

    @on(DataTable.RowSelected, "#collections")
    def _collection_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.app.switch_collection(event.row_key.value)

    def action_new_collection(self) -> None:
        self.app.action_new_collection()

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
        from .app import error_text

        try:
            files, chunks = app.library.remove(Path(target))
        except Exception as e:
            app.from_thread(app.show_error, error_text(e))
            return
        app.from_thread(self._removed, target, files, chunks)

    def _removed(self, target: str, files: int, chunks: int) -> None:
        self.app.notify(f"Removed {display_path(target)}: {plural(files, 'file')}, {plural(chunks, 'chunk')}.")
        self.action_reload()
        self.app.refresh_status()

    def action_close(self) -> None:
        self.app.pop_screen()


# --- conversations ---------------------------------------------------------------------------


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


class ConversationsScreen(Screen):
    """Stored conversations, newest first: open one to read or continue it, or delete it."""

    app: "AssistantApp"

    BINDINGS = [
        Binding("escape,q", "close", "Back", tooltip="Back to the chat"),
        Binding("enter", "open", "Open", tooltip="Open the selected conversation to read or continue it"),
        Binding("d,delete", "delete", "Delete", tooltip="Delete the selected conversation (after confirming)"),
        Binding("r", "reload", "Refresh", show=False, tooltip="Reload the list"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.conversations: list[ConversationInfo] = []
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Static("Conversations", id="conv-summary")
        yield DataTable(id="conversations", cursor_type="row")
        yield Static("", id="conv-empty")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#conversations", DataTable)
        table.add_column("", key="open", width=1)
        table.add_column("title", key="title", width=max(20, self.app.size.width - 34))
        table.add_column("turns", key="turns", width=5)
        table.add_column("updated", key="updated", width=16)
        table.focus()
        self.action_reload()

    def action_reload(self) -> None:
        if self.app.library is None:
            self._show_error(self.app.startup_error or "the library is not available")
            return
        self._list_worker(self.app.library)

    @work(thread=True, exclusive=True, group="conversations", exit_on_error=False)
    def _list_worker(self, library) -> None:
        try:
            items = library.conversations.list()
        except Exception as e:
            self.app.from_thread(self._show_error, str(e))
            return
        self.app.from_thread(self._fill, items)

    def _show_error(self, message: str) -> None:
        self.query_one("#conv-summary", Static).update(Text(f"Error: {message}", style="red"))

    def _fill(self, items: list[ConversationInfo]) -> None:
        self.conversations = items
        table = self.query_one("#conversations", DataTable)
        keep = table.cursor_row
        table.clear()
        current = self.app.main.conversation_id
        for c in items:
            title = Text(c.title, no_wrap=True, overflow="ellipsis")
            table.add_row("●" if c.id == current else "", title, str(c.turns), _when(c.updated), key=c.id)
        if items:
            table.move_cursor(row=min(max(keep, 0), len(items) - 1))
        n = len(items)
        summary = Text()
        summary.append("Conversations", style="bold")
        summary.append(
            f"  {n} stored, newest first · ● open in the chat" if n else "  none stored yet",
            style="dim",
        )
        self.query_one("#conv-summary", Static).update(summary)
        empty = self.query_one("#conv-empty", Static)
        empty.display = not items
        empty.update(
            "Every question you ask and its answer are kept here, so you can read a conversation "
            "again or continue it later, also after a restart."
        )
        self.loaded = True
        self.refresh_bindings()

    def selected(self) -> ConversationInfo | None:
        table = self.query_one("#conversations", DataTable)
        if table.row_count == 0 or not self.conversations:
            return None
        key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return next((c for c in self.conversations if c.id == key.value), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("open", "delete"):
            return True if self.conversations else None
        return True

    @on(DataTable.RowSelected, "#conversations")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        info = self.selected()
        if info is not None:
            self._open_worker(self.app.library, info)

    @work(thread=True, exclusive=True, group="conversations", exit_on_error=False)
    def _open_worker(self, library, info: ConversationInfo) -> None:
        try:
            turns = library.conversations.turns(info.id)
        except Exception as e:
            self.app.from_thread(self.app.show_error, str(e))
            return
        self.app.from_thread(self.app.open_conversation, info, turns)

    def action_delete(self) -> None:
        info = self.selected()
        if info is None:
            return

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._delete_worker(self.app.library, info)

        turns = plural(info.turns, 'turn')
        self.app.push_screen(
            ConfirmScreen(f"Delete the conversation “{info.title}” ({turns})?\nThis cannot be undone.", verb="delete"),
            confirmed,
        )

    @work(thread=True, exclusive=True, group="conversations", exit_on_error=False)
    def _delete_worker(self, library, info: ConversationInfo) -> None:
        try:
            library.conversations.delete(info.id)
            items = library.conversations.list()
        except Exception as e:
            self.app.from_thread(self.app.show_error, str(e))
            return
        self.app.from_thread(self._deleted, info, items)

    async def _deleted(self, info: ConversationInfo, items: list[ConversationInfo]) -> None:
        main = self.app.main
        if main.conversation_id == info.id:  # it was open in the chat: the chat starts afresh
            await main.action_new_chat()
        self._fill(items)
        self.app.notify(f"Deleted “{info.title}”.")

    def action_close(self) -> None:
        self.app.pop_screen()


# --- settings ---------------------------------------------------------------------------------

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

    app: "AssistantApp"

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
        from ..config import ConfigError, update_config_file

        app = self.app
        config = None
        created = not target.exists()
        if updates:
            try:
                config = update_config_file(target, updates)
            except ConfigError as e:
                app.from_thread(self._failed, str(e))
                return
            except Exception as e:
                app.from_thread(self._failed, f"{type(e).__name__}: {e}")
                return
        matching: int | None = None
        if filters.active() and library is not None:
            try:
                matching = len(filters.allowed_paths(library.store))
            except Exception:
                matching = None
        app.from_thread(app.settings_saved, target, updates, config, filters, matching, created and config is not None)

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
                table.add_row(Text(keys), Text(text))  # not markup: "[n]" is text
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


class PromptScreen(ModalScreen[str | None]):
    """Type one line: returns it (stripped), or None when cancelled or empty."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, placeholder: str = "", hint: str = "enter to confirm · esc to cancel") -> None:
        super().__init__()
        self.title_text = title
        self.placeholder = placeholder
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Label(self.title_text, classes="modal-title")
            yield Input(placeholder=self.placeholder, id="prompt-input")
            yield Label(self.hint, classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        self.dismiss(value or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PathScreen(PromptScreen):
    """Type a file or folder to ingest."""

    def __init__(self) -> None:
        super().__init__("Ingest a file or folder", "e.g. ~/Documents/manuals", "enter to ingest · esc to cancel")


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, *, verb: str = "remove") -> None:
        super().__init__()
        self.question = question
        self.verb = verb

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Static(Text(self.question), classes="modal-title")
            with Horizontal(classes="hint-row"):
                yield Label(f"y / enter: {self.verb}   n / esc: cancel", classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

"""The chat: questions, streamed answers, their sources, ingest progress, the question box."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.await_remove import AwaitRemove
from textual.binding import Binding
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, Markdown
from textual.worker import get_current_worker

from ...conversation import ConversationInfo, Turn
from ...library import LibraryStatus
from ...retrieve import Filters
from ...types import Answer, Draft, Retrieved, Source
from ..errors import error_text
from ..messages import CopyText, OpenSource, ShowError
from ..widgets import (
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
    filters_text,
    plural,
    stored_answer,
)

__all__ = ["MainScreen", "AskProgress", "AskFinished", "ConversationRead"]


@dataclass
class AskProgress(Message):
    """From the ask worker: ``Retrieved``, ``Draft`` or a text piece of the answer to ``view``."""

    asked: QuestionView
    view: AnswerView
    item: Retrieved | Draft | str


@dataclass
class AskFinished(Message):
    """From the ask worker: how the question ended ("answer", "stopped" or "error", with the
    Answer or the error text), and the conversation it was saved to."""

    view: AnswerView
    epoch: int
    conversation: str | None
    collection: str
    kind: str
    payload: object


@dataclass
class ConversationRead(Message):
    """From the reading worker: the turns of the conversation being opened (or why they could not
    be read), to draw above ``note``."""

    info: ConversationInfo
    note: SystemNote
    epoch: int
    turns: list[Turn]
    error: str | None = None


class MainScreen(Screen):
    """Chat log, sources of the current answer, ingest progress, the question box.

    The chat is one conversation: ``conversation_id`` is created with the first answer,
    each answer is stored as a turn, and the earlier turns go with the next question.
    """

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
        self.conversation_collection: str | None = None  # the collection it belongs to
        self._epoch = 0  # bumped when the chat is cleared or replaced: late results are dropped

    def compose(self) -> ComposeResult:
        with Vertical(id="body"):
            with ChatLog(id="chat"):
                yield Welcome(id="welcome")
            with Vertical(id="sources-pane", classes="-hidden"):
                yield Label("Sources  (enter or 1-9: read in context)", id="sources-title")
                yield SourcesTable(id="sources")
        yield IngestPanel(id="ingest")
        # no select-on-focus: a key typed elsewhere focuses it and must not be selected and overwritten
        yield Input(placeholder="Ask a question about your documents…", id="question", select_on_focus=False)
        yield StatusLine(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.ready = True
        self.query_one("#question", Input).focus()
        self.app.refresh_status()
        self.show_filters(self.app.filters)
        self.app.start_warmup()

    def on_resize(self, event: events.Resize) -> None:
        # the footer docks the palette key on the right, over the other keys when they do not fit
        # (40 columns: "^p palettet"); F1 and the help still name ^p
        self.query_one(Footer).show_command_palette = event.size.width >= 60

    def on_screen_resume(self) -> None:
        if self.app.library is not None:
            self.app.refresh_status()

    # --- state shown ---------------------------------------------------------------

    def show_status(self, status: LibraryStatus, updating: str | None = None) -> None:
        """``updating``: another process is writing the library (its pid), so counts may be moving."""
        app = self.app
        self.query_one(Welcome).show_state(status, app.key_for("ingest"), app.key_for("ingest_path"), app.sample_folder(),
                                           updating=updating)
        model = status.model or ""
        model = Path(model).name if ("/" in model or "\\" in model) else model
        parts = [plural(status.files, 'file'), plural(status.chunks, 'chunk'), f"{status.generator} ({model})"]
        if status.collection != "default":
            parts.insert(0, f"collection {status.collection}")
        if updating:
            parts.insert(0, "being updated by another process")
        if status.failures:
            parts.append(f"{len(status.failures)} failed ({app.key_for('library')})")
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
        await self._reset_chat()

    def _reset_chat(self) -> AwaitRemove:
        """Stop the answer being written and clear the chat; done at once (the old turns go in the
        chat's own time: await the result to wait for that)."""
        self.action_stop()
        self.workers.cancel_group(self, "ask")
        self.conversation_id = None
        self.conversation_collection = None
        self._epoch += 1
        if self._current is not None:  # its results will be dropped with its view
            self._answer_done(self._current)
        removed = self.chat.clear_turns()
        self.show_sources([])
        self.clear_error()
        self.query_one("#question", Input).focus()
        return removed

    def open_conversation(self, info: ConversationInfo) -> None:
        """Continue a stored conversation (the caller has switched to its collection).

        Done at once, in the caller's turn, not in a message handled later: a question typed right
        after, already on its way to the question box, then continues this conversation and is not
        cleared away with the old chat. The turns are read in a worker and drawn above anything
        asked meanwhile.
        """
        library = self.app.library
        if library is None:
            return
        self._reset_chat()
        self.conversation_id = info.id
        self.conversation_collection = info.collection
        note = SystemNote(Text(f"Opening the conversation “{info.title}”…", style="dim"))
        self.chat.mount(note)  # in the chat now; anything asked from now on goes below it
        self._read_worker(library, info, note, self._epoch)

    @work(thread=True, group="conversation", exit_on_error=False)
    def _read_worker(self, library, info: ConversationInfo, note: SystemNote, epoch: int) -> None:
        try:
            turns = library.conversations.turns(info.id)
        except Exception as e:  # never a traceback in the UI
            self.post_message(ConversationRead(info, note, epoch, [], error_text(e)))
            return
        self.post_message(ConversationRead(info, note, epoch, turns))

    @on(ConversationRead)
    async def _conversation_read(self, message: ConversationRead) -> None:
        info, note = message.info, message.note
        if message.epoch != self._epoch or not note.is_attached:
            return  # another chat was started or opened meanwhile
        if message.error is not None:
            note.update(Text(f"The conversation “{info.title}” could not be read: {message.error}"))
            note.add_class("-error")
            return
        pairs = [(QuestionView(t.question, t.query), AnswerView(t.question, info.collection), t)
                 for t in message.turns]
        if pairs:
            await self.chat.mount_all([w for q, a, _ in pairs for w in (q, a)], before=note)
        last: Answer | None = None
        for _, view, t in pairs:
            last = stored_answer(t.question, t.query, t.answer, t.sources, t.how)
            await view.finish(last, self.app.show_timings)
        text = Text()
        text.append(f"Conversation “{info.title}”", style="bold")
        where = f" in the collection {info.collection}" if info.collection != "default" else ""
        text.append(f": {plural(len(pairs), 'turn')}{where}. A question you ask now continues it.")
        note.update(text)
        if last is not None and self._current is None and len(self.chat.turns()) == len(pairs):
            self.show_sources(last.sources, not_found=not last.grounded)  # nothing asked meanwhile
        self.chat.scroll_end(animate=False)

    def on_key(self, event: events.Key) -> None:
        """A printable key typed outside a text field goes to the question box, never nowhere."""
        if event.key in self.active_bindings:  # a key with a meaning where the focus is (digits in the sources)
            return
        if event.is_printable and event.character and not isinstance(self.focused, Input):
            box = self.query_one("#question", Input)
            box.focus()
            box.insert_text_at_cursor(event.character)
            event.stop()
            event.prevent_default()

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
        self.app.post_message(CopyText(answer_clipboard_text(answer), f"the answer and its {plural(len(answer.sources), 'source')}"))

    def on_unmount(self) -> None:
        self._stop.set()

    # --- asking -----------------------------------------------------------------------

    @on(Input.Submitted, "#question")
    async def _submitted(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if not question:
            return
        if self.answering:
            if self._stop.is_set():  # esc was pressed: say so, rather than ask for it again
                self.app.notify("Still stopping the previous answer: ask again in a moment.", severity="warning")
            else:
                self.app.notify(f"Still answering: press {self.app.key_for('stop', self)} to stop it first.",
                                severity="warning")
            return
        event.input.clear()
        await self.ask(question)

    async def ask(self, question: str) -> AnswerView:
        library = self.app.library
        view = AnswerView(question, library.collection if library is not None else "")
        asked = QuestionView(question)
        await self.chat.mount_all([asked, view])
        self.chat.scroll_end(animate=False)
        if library is None:
            await view.failed(self.app.startup_error or "the library is not available")
            self.app.post_message(ShowError(self.app.startup_error or "the library is not available"))
            return view
        if self.conversation_id is not None and self.conversation_collection not in (None, library.collection):
            # a chat belongs to one collection: after a switch, the next question starts a new one
            self.conversation_id = None
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
        # Everything goes back as messages to this screen, which lives as long as the app: the
        # thread never waits for the UI, and the results are handled in the screen's queue, in
        # order with what the user does there (see AskProgress).
        worker = get_current_worker()
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
                else:
                    self.post_message(AskProgress(asked, view, item))
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
                    conversation = library.conversations.create(collection=library.collection)
                library.conversations.add_turn(conversation, outcome[1])
                saved = conversation
            except Exception as e:
                self.app.post_message(ShowError(f"the answer could not be saved to the conversation: {e}"))
        self.post_message(AskFinished(view, epoch, saved, library.collection, *outcome))

    # The chat screen's own queue never waits for an answer to render: it updates its state and
    # hands the rendering to the answer's view, whose queue does it in order (and drops it if the
    # view was cleared away). So keys, resizes and repaints go on whatever a Markdown update does.

    @on(AskProgress)
    def _ask_progress(self, message: AskProgress) -> None:
        view, item = message.view, message.item
        if not view.is_attached:
            return  # the chat was cleared meanwhile
        if isinstance(item, Retrieved):
            message.asked.set_query(item.query)
            view.sources = list(item.sources)
            view.set_reading(len(item.sources))
            self.show_sources(item.sources)
        elif isinstance(item, Draft):
            view.call_later(view.show_draft, item)
        else:
            view.call_later(view.write, item)

    @on(AskFinished)
    def _ask_finished(self, message: AskFinished) -> None:
        view, kind, payload = message.view, message.kind, message.payload
        if message.epoch == self._epoch and message.conversation is not None:
            self.conversation_id = message.conversation
            self.conversation_collection = message.collection
        if not view.is_attached:  # the chat was cleared meanwhile
            self._answer_done(view)
            return
        if kind == "answer":
            assert isinstance(payload, Answer)
            hint = ""
            if not payload.grounded:
                if self.app.filters.active():
                    hint = (f"The filters are on ({filters_text(self.app.filters)}): "
                            f"{self.app.key_for('settings')} changes them.")
                else:
                    hint = "Try other words, or ingest the documents that hold the answer."
            view.call_later(view.finish, payload, self.app.show_timings, hint)
            self.show_sources(payload.sources, not_found=not payload.grounded)
        elif kind == "stopped":
            view.call_later(view.stopped)
        else:
            error, hint = self._error_text(str(payload))
            view.call_later(view.failed, error, hint)
            self.app.post_message(ShowError(error, notify=False))
        view.call_later(self._answer_done, view)  # after the view has drawn it

    def _error_text(self, message: str) -> tuple[str, str]:
        """An ask's error as shown, and a hint: while another process writes the library, say so
        (an empty store then means "not yet", not "nothing")."""
        status = self.app.refresh_status()
        if status is not None and status.updating and not self.app.ingesting:
            return (f"the library is being updated by another process ({status.updating}); "
                    "ask again when it is done"), ""
        if status is not None and status.chunks == 0 and "nothing is indexed" in message:
            return "nothing is indexed yet", (
                f"Press {self.app.key_for('ingest')} to ingest the configured folders, "
                f"or {self.app.key_for('ingest_path')} to ingest a file or folder you type.")
        return message, ""

    def _answer_done(self, view: AnswerView) -> None:
        if view is self._current:
            self._current = None
            self.answering = False
            self.refresh_bindings()
            self.set_activity("")
        if view.is_attached:
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
            self.post_message(OpenSource(source, view_collection(self, source)))

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
        self.post_message(OpenSource(source, view.collection))


def view_collection(screen: MainScreen, source: Source) -> str | None:
    """The collection of the answer whose sources the table shows (None: the one in use)."""
    for view in reversed(screen.chat.turns()):
        if source in view.sources:
            return view.collection or None
    return None

"""Stored conversations: open one to read or continue it, or delete it."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ...conversation import ConversationInfo
from ..messages import ConversationDeleted, ShowError
from ..widgets import fmt_when, plural
from .confirm import ConfirmScreen

__all__ = ["ConversationsScreen"]


class ConversationsScreen(Screen):
    """Stored conversations, newest first: open one to read or continue it, or delete it."""

    BINDINGS = [
        Binding("escape,q", "close", "Back", tooltip="Back to the chat"),
        # priority: run in the turn of the enter key itself, before the next key is dispatched (the
        # table's own enter posts a message handled later, after keys typed meanwhile)
        Binding("enter", "open", "Open", priority=True, show=False,
                tooltip="Open the selected conversation to read or continue it"),
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
        table.add_column("title", key="title", width=max(12, self.app.size.width - 46))
        table.add_column("collection", key="collection", width=10)
        table.add_column("turns", key="turns", width=5)
        table.add_column("updated", key="updated", width=16)
        table.focus()
        self.action_reload()

    def action_reload(self) -> None:
        """Read the list now (a small query on the chats' own database, which only this app
        writes): enter pressed right after f2 then opens the row the user saw selected."""
        if self.app.library is None:
            self._show_error(self.app.startup_error or "the library is not available")
            return
        try:
            items = self.app.library.conversations.list()
        except Exception as e:
            self._show_error(str(e))
            return
        self._fill(items)

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
            collection = Text(c.collection, no_wrap=True, overflow="ellipsis")
            table.add_row("●" if c.id == current else "", title, collection, str(c.turns), fmt_when(c.updated), key=c.id)
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
        if info is None or self.app.screen is not self:  # enter is also a row selection: once only
            return
        # A call, not a message: this screen closes and the chat takes the conversation now, in
        # this turn, so what the user types next goes to the question box and continues it (a
        # message would be handled later, after keys that this list takes for "d" delete).
        self.app.open_conversation(info)

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
            self.app.post_message(ShowError(str(e)))
            return
        self.app.post_message(ConversationDeleted(info))
        self.call_later(self._deleted, info, items)

    def _deleted(self, info: ConversationInfo, items: list[ConversationInfo]) -> None:
        self._fill(items)
        self.app.notify(f"Deleted “{info.title}”.")

    def action_close(self) -> None:
        self.app.pop_screen()

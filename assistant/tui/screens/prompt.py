"""A one-line prompt (e.g. a new collection's name)."""

from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

__all__ = ["PromptScreen"]


class PromptScreen(ModalScreen[str | None]):
    """Type one line: returns it (stripped), or None when cancelled or empty."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, placeholder: str = "", hint: str = "enter to confirm · esc to cancel",
                 check: Callable[[str], object] | None = None) -> None:
        """``check(value)`` raises an error whose message is shown under the field, which stays open."""
        super().__init__()
        self.check = check
        self.title_text = title
        self.placeholder = placeholder
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Label(self.title_text, classes="modal-title")
            yield Input(placeholder=self.placeholder, id="prompt-input")
            yield Static("", id="prompt-error")
            yield Label(self.hint, classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if value and self.check is not None:
            try:
                self.check(value)
            except Exception as e:
                error = self.query_one("#prompt-error", Static)
                error.update(Text(str(e)))
                error.add_class("-error")
                return
        self.dismiss(value or None)

    def action_cancel(self) -> None:
        self.dismiss(None)

"""The document viewer: a file's passages in order, the cited one highlighted."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from ...store import ChunkRow
from ...types import Source
from ..widgets import display_path, lines_of

__all__ = ["ViewerScreen", "ChunkBlock"]


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

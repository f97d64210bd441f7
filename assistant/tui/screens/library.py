"""The library: what is indexed, failures, collections; remove files."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Static

from ...library import CollectionInfo
from ..errors import USER_ERRORS, error_text
from ..messages import NewCollection, ShowError, StatusChanged, SwitchCollection
from ..widgets import display_path, fmt_when, plural
from .confirm import ConfirmScreen

__all__ = ["LibraryScreen"]


class LibraryScreen(Screen):
    """What is indexed: numbers, files, failures; remove a file or its folder."""

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
        grid.add_row("indexed", f"{plural(st.files, 'file')}, {plural(st.chunks, 'chunk')}, {len(st.failures)} failed")
        grid.add_row("folders", ", ".join(display_path(f) for f in st.folders) or "(none configured)")
        grid.add_row("data", display_path(st.data_dir))
        grid.add_row("models", f"embedding {st.embedding_line()} · generator {st.generator} ({st.model})")
        grid.add_row("config", display_path(st.config) if st.config else "(built-in defaults)")
        summary.update(grid)

        table = self.query_one("#files", DataTable)
        keep = table.cursor_row
        table.clear()
        for r in rows:
            when = fmt_when(r.ingested_at)
            table.add_row(display_path(r.path), str(r.n_chunks), r.reader, when, key=r.path)
        if rows:
            table.move_cursor(row=min(max(keep, 0), len(rows) - 1))
        fails = self.query_one("#failures", DataTable)
        fails.clear()
        for f in st.failures:
            fails.add_row(display_path(f["path"]), f["reason"], key=f["path"])
        fails.display = bool(st.failures)
        self.query_one("#failures-title", Label).update(
            f"Failures ({len(st.failures)})" if st.failures else "Failures: none"
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
            self.post_message(SwitchCollection(event.row_key.value))

    def action_new_collection(self) -> None:
        self.post_message(NewCollection())

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
        try:
            files, chunks = app.library.remove(Path(target))
        except Exception as e:
            app.post_message(ShowError(error_text(e)))
            return
        app.post_message(StatusChanged())
        self.call_later(self._removed, target, files, chunks)

    def _removed(self, target: str, files: int, chunks: int) -> None:
        self.app.notify(f"Removed {display_path(target)}: {plural(files, 'file')}, {plural(chunks, 'chunk')}.")
        self.action_reload()

    def action_close(self) -> None:
        self.app.pop_screen()

"""Widgets for the main screen: the chat log, answers, the sources table, ingest progress."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Iterable

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.await_remove import AwaitRemove
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Label, Markdown, ProgressBar, Static
from textual.widgets.data_table import ColumnKey

from ..answer import NOT_FOUND
from ..ingest import IngestEvent, IngestReport
from ..retrieve import Filters
from ..types import NOT_FOUND_HOW, QUOTED, VERIFIED, Answer, Draft, Hit, Source

__all__ = [
    "citation_parser",
    "citation_number",
    "display_path",
    "answer_clipboard_text",
    "filters_text",
    "sources_from_dicts",
    "stored_answer",
    "AnswerView",
    "ChatLog",
    "IngestPanel",
    "QuestionView",
    "SourcesTable",
    "StatusLine",
    "SystemNote",
    "Welcome",
]


# --- formatting helpers (pure) ---------------------------------------------------


def plural(n: int, word: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def display_path(path: str | Path) -> str:
    """A path as the user thinks of it: relative to the working folder, else ``~/...``, else absolute."""
    p = Path(path)
    try:
        rel = p.relative_to(Path.cwd())
        return str(rel) if str(rel) != "." else "."
    except ValueError:
        pass
    home = Path(os.path.expanduser("~"))
    try:
        return str(Path("~") / p.relative_to(home))
    except ValueError:
        return str(p)


def lines_of(start: int | None, end: int | None) -> str:
    if not start:
        return "-"
    return f"{start}" if not end or end == start else f"{start}-{end}"


def fmt_when(ts: float) -> str:
    """A timestamp as local "YYYY-MM-DD HH:MM"."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def how_text(answer: Answer) -> str:
    """How the answer was made, in the words the UI uses: a check mark only for a verified one."""
    cited = ", ".join(f"[{s.n}]" for s in answer.sources if s.cited)
    if answer.how == VERIFIED:
        return "✓ verified" + (f" against {cited}" if cited else "")
    if answer.how == NOT_FOUND_HOW or not answer.grounded:
        return "not found in your documents"
    return f"quoted from {cited}" if cited else "quoted from your documents"


def answer_meta(answer: Answer, show_timings: bool) -> str:
    parts: list[str] = [how_text(answer)]
    if answer.sources:
        parts.append(plural(len(answer.sources), 'source'))
    if answer.model:
        parts.append(answer.model)
    if show_timings and answer.timings:
        first = answer.timings.get("first_token_s")
        total = answer.timings.get("total_s")
        if first is not None and total is not None:
            parts.append(f"first token {first:.1f} s, total {total:.1f} s")
    return " · ".join(parts)


def filters_text(filters: Filters | None) -> str:
    """The active filters in a few words ("" when none)."""
    if filters is None or not filters.active():
        return ""
    parts = []
    if filters.path_glob:
        parts.append(filters.path_glob)
    if filters.file_types:
        parts.append(" ".join(f".{t}" for t in filters.file_types))
    return "only " + ", ".join(parts)


def sources_from_dicts(items: Iterable[dict]) -> list[Source]:
    """Sources as stored with a conversation turn (``Source.as_dict``) back into Sources.

    The chunk id is not stored; the viewer finds the passage by its location instead.
    """
    out = []
    for i, d in enumerate(items, 1):
        hit = Hit(
            chunk_id=str(d.get("chunk_id") or ""),
            path=str(d.get("path") or ""),
            text=str(d.get("text") or ""),
            score=float(d.get("score") or 0.0),
            page=d.get("page"),
            start_line=d.get("start_line"),
            end_line=d.get("end_line"),
            scores={str(k): float(v) for k, v in (d.get("scores") or {}).items()},
            also_in=tuple(str(p) for p in d.get("also_in") or ()),
        )
        out.append(Source(int(d.get("n") or i), hit, bool(d.get("cited"))))
    return out


def answer_clipboard_text(answer: Answer) -> str:
    """The answer and the list of its sources, as plain text for the clipboard."""
    lines = [answer.text.strip()]
    if answer.sources:
        lines += ["", "Sources:"]
        for s in answer.sources:
            h = s.hit
            where = []
            if h.page:
                where.append(f"page {h.page}")
            if h.start_line:
                where.append(f"lines {lines_of(h.start_line, h.end_line)}")
            lines.append(f"[{s.n}] {h.path}" + (f", {', '.join(where)}" if where else "") + (" (cited)" if s.cited else ""))
    return "\n".join(lines) + "\n"


# --- citation links --------------------------------------------------------------

# The markers check_citations keeps: [2] or [1, 3].
_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
CITATION_SCHEME = "source:"


def citation_number(href: str) -> int | None:
    """The n of a citation link (``source:n``), else None."""
    if href.startswith(CITATION_SCHEME) and href[len(CITATION_SCHEME):].isdigit():
        return int(href[len(CITATION_SCHEME):])
    return None


def _citation_tokens(text: str) -> list[Token]:
    out: list[Token] = []

    def plain(t: str) -> None:
        if t:
            out.append(Token("text", "", 0, content=t))

    def link(label: str, n: str) -> None:
        out.append(Token("link_open", "a", 1, attrs={"href": f"{CITATION_SCHEME}{n}"}))
        out.append(Token("text", "", 0, content=label))
        out.append(Token("link_close", "a", -1))

    pos = 0
    for m in _CITATION.finditer(text):
        plain(text[pos:m.start()])
        numbers = re.split(r"\s*,\s*", m.group(1))
        if len(numbers) == 1:
            link(m.group(0), numbers[0])
        else:  # [1, 3]: each number its own link
            plain("[")
            for i, n in enumerate(numbers):
                plain(", " if i else "")
                link(n, n)
            plain("]")
        pos = m.end()
    plain(text[pos:])
    return out


def _link_citations(state: StateCore) -> None:
    """A markdown-it core rule: citation markers in plain text become ``source:n`` links.

    It works on parsed tokens, so code spans, code blocks and real links are left as
    they are, and a marker streamed in two pieces is linked once it is complete.
    """
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children, in_link = [], 0
        for token in block.children:
            in_link += {"link_open": 1, "link_close": -1}.get(token.type, 0)
            if token.type == "text" and not in_link and _CITATION.search(token.content):
                children.extend(_citation_tokens(token.content))
            else:
                children.append(token)
        block.children = children


def citation_parser() -> MarkdownIt:
    """Textual's Markdown parser plus citation links (the answer text itself is not changed)."""
    parser = MarkdownIt("gfm-like")
    parser.core.ruler.push("citation_links", _link_citations)
    return parser


# --- status line ----------------------------------------------------------------


class StatusLine(Static):
    """One line under the input: library counts and what is running, or the last error."""

    def __init__(self, **kw) -> None:
        super().__init__("", **kw)
        self._counts = ""
        self._filters = ""
        self._loading = ""
        self._activity = ""
        self._error = ""

    def set_counts(self, text: str) -> None:
        self._counts = text
        self._render_line()

    def set_filters(self, text: str) -> None:
        self._filters = text
        self._render_line()

    def set_loading(self, text: str) -> None:
        self._loading = text
        self._render_line()

    def set_activity(self, text: str) -> None:
        self._activity = text
        self._render_line()

    def set_error(self, text: str) -> None:
        self._error = text
        self.set_class(bool(text), "-error")
        self._render_line()

    @property
    def error(self) -> str:
        return self._error

    def _render_line(self) -> None:
        if self._error:
            self.update(Text(f"Error: {self._error}"))
            return
        line = Text(self._counts)
        if self._filters:
            line.append(" · ")
            line.append(self._filters, style="italic")
        for text in (self._loading, self._activity):
            if text:
                line.append("  ·  ")
                line.append(text, style="bold")
        self.update(line)


# --- chat log --------------------------------------------------------------------


class Welcome(Static):
    """The first block of the chat log: the empty state, or a short hint."""

    def show_state(self, status, ingest_key: str, path_key: str, sample: str | None = None,
                   updating: str | None = None) -> None:
        """``status``: a LibraryStatus. ``sample``: the configured folder that is the bundled sample
        corpus, if it is one. ``updating``: another process is writing the library."""
        self.set_class(status.chunks == 0, "-empty")
        collection = status.collection or "default"
        t = Text()
        if status.chunks == 0 and updating:
            t.append("The library is being updated by another process", style="bold")
            t.append(f" ({updating}). What it indexes shows up here as it is written.")
        elif status.chunks == 0:
            t.append("Your library is empty.\n\n" if collection == "default" else f"The collection “{collection}” is empty.\n\n",
                     style="bold")
            folders = [str(f) for f in status.folders or []]
            missing = [f for f in folders if not Path(f).exists()]
            where = f" ([library] folders in {display_path(status.config)})" if status.config else ""
            if folders:
                s = "s" if len(folders) > 1 else ""
                if not missing:
                    t.append("Press ")
                    t.append(ingest_key, style="bold reverse")
                    t.append(f" to ingest the configured folder{s}{where}:\n")
                else:
                    t.append(f"The configured folder{s}{where}:\n")
                for f in folders:
                    t.append(f"  • {display_path(f)}")
                    if f in missing:
                        t.append("  (not found)", style="bold")
                    elif f == sample:
                        t.append("  the sample documents that come with the assistant", style="italic")
                    t.append("\n")
                if missing:
                    file = display_path(status.config) if status.config else "a config.toml"
                    t.append(f"{ingest_key} needs {'it' if len(folders) == 1 else 'them all'} to exist: "
                             f"set [library] folders in {file}, or press ")
                else:
                    t.append("or press ")
            else:
                t.append(f"No folders are configured{where}. Press ")
            t.append(path_key, style="bold reverse")
            t.append(" to ingest a file or folder you type. Then ask a question below.")
        else:
            files, chunks = status.files, status.chunks
            t.append("Ask a question about your documents ", style="bold")
            where = f"collection {collection}: " if collection != "default" else ""
            t.append(f"({where}{plural(files, 'file')}, {plural(chunks, 'chunk')}).\n")
            t.append("Answers cite passages as [n]: click one, or pick it in the sources table (tab, enter), "
                     "to read it in context.")
        self.update(t)

    def show_problem(self, message: str) -> None:
        self.set_class(True, "-empty", "-problem")
        t = Text()
        t.append("The library cannot be opened.\n\n", style="bold")
        t.append(message + "\n\n")
        t.append("Fix the problem (see config.toml, or ASSISTANT_CONFIG / ASSISTANT_DATA_DIR) and start again.")
        self.update(t)


class QuestionView(Static):
    """The question; under it, discreetly, the query searched for when a follow-up was rewritten."""

    def __init__(self, question: str, query: str | None = None) -> None:
        super().__init__()
        self.question = question
        self.query: str | None = None
        self.set_query(query)

    def set_query(self, query: str | None) -> None:
        self.query = query if query and query != self.question else None
        t = Text.assemble(("You  ", "bold"), self.question)
        if self.query:
            t.append(f"\n     searched for: {self.query}", style="dim italic")
        self.update(t)


class SystemNote(Static):
    """A line from the app itself (ingest summaries, failures)."""

    def __init__(self, text: str | Text, *, error: bool = False) -> None:
        super().__init__(text if isinstance(text, Text) else Text(text), classes="-error" if error else "")


class AnswerView(Vertical):
    """One answer: Markdown streamed piece by piece, then replaced by the checked text.

    Its citation markers are links (``source:n``) to its own ``sources``; the screen
    handles ``Markdown.LinkClicked``, so no link opens a browser by itself.
    """

    def __init__(self, question: str, collection: str = "") -> None:
        super().__init__()
        self.question = question
        self.collection = collection  # the collection it was asked in: its sources are read there
        self.answer: Answer | None = None
        self.sources: list[Source] = []  # the passages retrieved, then those of the checked answer
        self._stream = None
        self._text: list[str] = []
        self.drafted = False  # a Draft is shown
        self.done = False

    def compose(self) -> ComposeResult:
        yield Markdown("", classes="answer-text", parser_factory=citation_parser, open_links=False)
        yield Static("", classes="answer-hint")
        yield Static("searching your documents…", classes="answer-meta")

    @property
    def streamed_text(self) -> str:
        return "".join(self._text)

    def set_reading(self, passages: int) -> None:
        """The passages are found: the model reads them before its first word."""
        if not self._text and not self.drafted:
            self.query_one(".answer-meta", Static).update(f"reading {plural(passages, 'passage')}…")

    async def show_draft(self, draft: Draft) -> None:
        """A quoted answer, shown at once while the model works; the final answer replaces it."""
        if self.done:
            return
        self.drafted = True
        self.sources = list(draft.sources)
        await self.query_one(Markdown).update(draft.text)
        self.query_one(".answer-meta", Static).update("quoted from your documents · checking the model's answer…")

    async def write(self, piece: str) -> None:
        """A piece of the model's text. Provisional: with a draft shown, it is kept out of sight
        (the final answer may not use it); without one, it streams in as it comes."""
        if self.done:
            return
        self._text.append(piece)
        if self.drafted:
            return
        if self._stream is None:
            self._stream = Markdown.get_stream(self.query_one(Markdown))
            self.query_one(".answer-meta", Static).update("answering…")
        await self._stream.write(piece)

    async def _close_stream(self) -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None

    async def finish(self, answer: Answer, show_timings: bool, hint: str = "") -> None:
        """Show the checked answer. ``hint``: what to try when nothing relevant was found."""
        await self._close_stream()
        self.done = True
        self.answer = answer
        self.sources = list(answer.sources)
        self.set_class(not answer.grounded, "-not-found")
        await self.query_one(Markdown).update(answer.text)
        if not answer.grounded:
            message = Text("No relevant passage: ", style="bold")
            message.append(
                "nothing in your documents matched this question closely enough, so no answer was written."
                + (f" {hint}" if hint else "")
            )
            self.query_one(".answer-hint", Static).update(message)
        self.query_one(".answer-meta", Static).update(Text(answer_meta(answer, show_timings)))

    async def stopped(self) -> None:
        await self._close_stream()
        self.done = True
        self.add_class("-stopped")
        if not self._text and not self.drafted:
            await self.query_one(Markdown).update("*(stopped before the answer began)*")
        self.query_one(".answer-meta", Static).update("stopped · the answer is incomplete and was not checked")

    async def failed(self, message: str, hint: str = "") -> None:
        await self._close_stream()
        self.done = True
        self.add_class("-error")
        self.query_one(Markdown).display = False
        self.query_one(".answer-meta", Static).update(Text(f"Error: {message}" + (f"\n{hint}" if hint else "")))


def stored_answer(question: str, query: str | None, text: str, sources: list[dict], how: str = QUOTED) -> Answer:
    """A conversation turn as an Answer for display (the model and timings are not stored)."""
    srcs = sources_from_dicts(sources)
    grounded = how != NOT_FOUND_HOW and text.strip() != NOT_FOUND
    return Answer(question, text, srcs, {}, "", "", query=query, grounded=grounded, how=how)


class ChatLog(VerticalScroll):
    """Questions, answers and notes, newest at the bottom, kept scrolled to the end.

    Not focusable: tab goes straight from the question box to the sources; the
    screen scrolls the chat with pageup/pagedown.
    """

    can_focus = False

    def on_mount(self) -> None:
        self.anchor()

    def turns(self) -> list[AnswerView]:
        return list(self.query(AnswerView))

    def clear_turns(self) -> AwaitRemove:
        return self.query("QuestionView, AnswerView, SystemNote").remove()


# --- sources ----------------------------------------------------------------------


def steps_text(hit: Hit) -> str:
    """``d .612 k 7.31 f .833 neighbours .833``: a passage's score at each retrieval step, short."""
    short = {"dense": "d", "keyword": "k", "fused": "f"}
    return " ".join(f"{short.get(k, k)} {v:.3f}".replace(" 0.", " .") for k, v in hit.scores.items())


class SourcesTable(DataTable):
    """[n], file, page, lines, cited, score: the passages behind the current answer.

    Enter reads the selected one; a digit n reads source [n]; ``s`` adds a column with each
    passage's score at each retrieval step (dense, keyword, fused, then each stage).
    """

    BINDINGS = [
        Binding(str(n), f"open_number({n})", f"Read [{n}]", show=False) for n in range(1, 10)
    ] + [Binding("s", "toggle_steps", "Scores", tooltip="Each passage's score at each retrieval step")]

    STEPS_WIDTH = 40

    def __init__(self, **kw) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kw)
        self.sources: list[Source] = []
        self.show_steps = False

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        self.add_column("#", key="n", width=4)
        self.add_column("file", key="file", width=self._file_width())
        self.add_column("page", key="page", width=4)
        self.add_column("lines", key="lines", width=7)
        self.add_column("cited", key="cited", width=5)  # before the score: the last to be cut off
        self.add_column("score", key="score", width=6)
        if self.show_steps:
            self.add_column("steps", key="steps", width=self.STEPS_WIDTH)

    def action_toggle_steps(self) -> None:
        self.show_steps = not self.show_steps
        self.clear(columns=True)
        self._add_columns()
        self.show(self.sources)

    # every column but the file's has a fixed width, so a long file name never pushes "cited" out
    _FIXED = 4 + 4 + 7 + 6 + 5 + 2 * 6  # the other columns and each column's padding

    def _file_width(self) -> int:
        width = self.parent.size.width if self.parent is not None and self.parent.size.width else self.app.size.width
        steps = self.STEPS_WIDTH + 2 if self.show_steps else 0
        return max(8, width - self._FIXED - steps - 2)

    def on_resize(self) -> None:
        if self.sources:
            self.show(self.sources)

    def show(self, sources: Iterable[Source]) -> None:
        self.clear()
        self.sources = list(sources)
        column = self.columns.get(ColumnKey("file"))
        width = self._file_width()
        if column is not None:
            column.width = width
            column.auto_width = False
        for s in self.sources:
            h = s.hit
            name = Path(h.path).name
            self.add_row(
                f"[{s.n}]",
                name if len(name) <= width else name[: width - 1] + "…",
                str(h.page) if h.page else "-",
                lines_of(h.start_line, h.end_line),
                "✓" if s.cited else "",
                f"{h.score:.3f}",
                *([steps_text(h)] if self.show_steps else []),
                key=str(s.n),
            )

    def source_at_cursor(self) -> Source | None:
        if not self.sources or self.cursor_row < 0 or self.cursor_row >= len(self.sources):
            return None
        return self.sources[self.cursor_row]

    def source_for_key(self, key: str | None) -> Source | None:
        for s in self.sources:
            if str(s.n) == key:
                return s
        return None

    def select_number(self, n: int) -> Source | None:
        """Move the cursor to source [n]; None (and the cursor stays) if there is none."""
        for row, s in enumerate(self.sources):
            if s.n == n:
                self.move_cursor(row=row)
                return s
        return None

    def action_open_number(self, n: int) -> None:
        if self.select_number(n) is not None:
            self.action_select_cursor()  # as enter: RowSelected, which opens it
        else:
            self.app.bell()


# --- ingest progress -----------------------------------------------------------------


class IngestPanel(Vertical):
    """A label and a progress bar, shown while an ingest runs."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.failures: list[tuple[str, str]] = []
        self.what = ""
        self.last: IngestEvent | None = None
        self.finished = 0.0  # files written, embedding included (IngestEvent.files_finished)

    def compose(self) -> ComposeResult:
        yield Label("", id="ingest-label")
        yield ProgressBar(total=None, show_eta=False, id="ingest-bar")

    def start(self, what: str) -> None:
        self.what = what
        self.failures = []
        self.last = None
        self.finished = 0.0
        self.query_one(ProgressBar).update(total=None, progress=0)
        self.query_one("#ingest-label", Label).update(Text(f"Ingesting {what}: scanning…"))
        self.add_class("-active")

    def event(self, ev: IngestEvent) -> None:
        if ev.kind == "failed":
            self.failures.append((ev.path, ev.reason))
        if ev.kind == "removed":
            return
        self.last = ev
        # the bar follows the files written (embedding included), never only the files read
        self.finished = max(self.finished, ev.files_finished)
        bar = self.query_one(ProgressBar)
        bar.update(total=max(ev.files_total, 1), progress=self.finished)
        parts = [f"{ev.files_done}/{ev.files_total} files read", f"{ev.chunks} chunks embedded"]
        if ev.rate:
            parts.append(f"{ev.rate:.1f} chunks/s")
        if ev.eta_s:
            parts.append(f"ETA {fmt_eta(ev.eta_s)}")
        if self.failures:
            parts.append(f"{len(self.failures)} failed")
        if ev.path and ev.kind in ("file", "failed"):
            parts.append(Path(ev.path).name)
        self.query_one("#ingest-label", Label).update(Text(f"Ingesting {self.what}: " + " · ".join(parts)))

    def stop(self) -> None:
        self.remove_class("-active")


def ingest_summary(what: str, report: IngestReport, show_timings: bool) -> Text:
    r = report
    t = Text()
    t.append(f"Ingested {what}: ", style="bold")
    t.append(
        f"{plural(r.files_seen, 'file')} seen — {r.files_ingested} indexed, {r.files_unchanged} unchanged, "
        f"{len(r.files_skipped)} skipped, {len(r.files_failed)} failed, {r.files_removed} removed; "
        f"{r.chunks_total} chunks in the library"
    )
    if show_timings:
        t.append(f" ({r.seconds:.1f} s)")
    t.append(".")
    for f in r.files_failed:
        t.append(f"\n  failed  {display_path(f['path'])}: {f['reason']}", style="red")
    for f in r.removals_held:
        t.append(f"\n  not removed under {display_path(f['path'])}: {f['reason']}", style="red")
    known = sum(1 for f in r.files_failed if f.get("known"))
    if known:
        t.append(f"\n  ({known} of them failed before and have not changed, so they were not read again; "
                 "\"Retry failed files\" in the command palette reads them)", style="dim")
    for f in r.files_skipped[:20]:
        t.append(f"\n  skipped {display_path(f['path'])}: {f['reason']}", style="dim")
    if len(r.files_skipped) > 20:
        t.append(f"\n  … and {len(r.files_skipped) - 20} more skipped", style="dim")
    return t

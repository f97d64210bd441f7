"""The TUI, driven with Pilot against the real Library (real store and readers, fake models)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("textual")

from textual.widgets import DataTable, Input, Markdown  # noqa: E402

from assistant.config import Config  # noqa: E402
from assistant.ingest import write_lock  # noqa: E402
from assistant.library import Library  # noqa: E402
from assistant.testing import FakeEmbedder, FakeGenerator  # noqa: E402
from assistant.tui import create_app  # noqa: E402
from assistant.tui.screens import HelpScreen, LibraryScreen, MainScreen, ViewerScreen  # noqa: E402
from assistant.tui.widgets import AnswerView, IngestPanel, SourcesTable, StatusLine, SystemNote, Welcome  # noqa: E402

SIZE = (80, 24)

pytestmark = pytest.mark.anyio  # async tests run on anyio's pytest plugin (asyncio backend)


@pytest.fixture
def anyio_backend():
    return "asyncio"

_LONG = "\n\n".join(
    f"## Part {i}\n\n" + " ".join(f"Section {i} talks about topic{i} item{j} in plain words." for j in range(6))
    for i in range(1, 9)
)


def _write_docs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "alpha.md").write_text(
        "# Alpha pump\n\nThe alpha pump moves water from the tank to the garden. It runs at 12 volts.\n\n"
        "## Maintenance\n\nClean the alpha pump filter every month. Replace the seal every year.\n",
        encoding="utf-8",
    )
    (folder / "beta.txt").write_text(
        "The beta mower cuts grass at three heights.\nCharge the beta mower battery overnight before first use.\n"
        "The warranty covers the beta mower for two years.\n",
        encoding="utf-8",
    )
    (folder / "gamma.md").write_text(
        "# Gamma handbook\n\n" + _LONG + "\n\n## Storage\n\nStore the zeppelin balloon deflated in a dry shed.\n",
        encoding="utf-8",
    )
    return folder


@pytest.fixture
def tui_env(tmp_path, monkeypatch) -> Path:
    """A per-test data folder and working folder (so visible paths are short and stable)."""
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def tui_docs(tui_env) -> Path:
    return _write_docs(tui_env / "docs")


def make_library(folder: Path, generator=None) -> Library:
    cfg = Config()
    cfg.library.folders = [str(folder)]
    return Library(cfg, embedder=FakeEmbedder(), generator=generator or FakeGenerator())


@pytest.fixture
def lib(tui_docs) -> Library:
    return make_library(tui_docs)


@pytest.fixture
def ingested(lib) -> Library:
    lib.ingest()
    return lib


class SlowGenerator(FakeGenerator):
    """Streams a long reply slowly, so there is time to stop it."""

    def __init__(self) -> None:
        super().__init__(reply=" ".join(f"word{i}" for i in range(200)) + " [1]")

    def stream(self, request):
        for piece in super().stream(request):
            time.sleep(0.02)
            yield piece


async def wait_for(pilot, condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the UI")
        await pilot.pause(0.02)
    await pilot.pause()


async def ask(pilot, question: str) -> AnswerView:
    app = pilot.app
    app.screen.query_one("#question", Input).value = question
    await pilot.press("enter")
    await wait_for(pilot, lambda: not app.main.answering and app.main.query(AnswerView))
    return app.main.query(AnswerView).last()


def visible_text(widget) -> str:
    return str(widget.render())


def screen_text(app) -> str:
    """What the terminal shows, as plain text lines."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


# --- the main path ------------------------------------------------------------------------


async def test_empty_state_ingest_ask_view_source_and_back(lib):
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        welcome = app.screen.query_one(Welcome)
        assert welcome.has_class("-empty")
        assert "Your library is empty" in visible_text(welcome)
        assert "docs" in visible_text(welcome)
        assert app.screen.query_one("#question", Input).has_focus

        # one key ingests the configured folders, with progress
        events, shown = [], []
        panel = app.screen.query_one(IngestPanel)
        original = panel.event

        def spy(ev):
            events.append(ev)
            shown.append(panel.has_class("-active"))
            original(ev)

        panel.event = spy
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not app.ingesting)
        assert shown and all(shown)  # the progress panel was up for every event
        assert not panel.has_class("-active")
        assert events[0].kind == "scan" and events[0].files_total == 3
        assert events[-1].kind == "done" and events[-1].files_done == 3
        assert "3/3 files" in visible_text(panel.query_one("#ingest-label"))
        note = app.screen.query(SystemNote).last()
        assert "3 files seen" in visible_text(note) and "3 indexed" in visible_text(note)
        assert not welcome.has_class("-empty")
        assert "3 files" in visible_text(app.screen.query_one(StatusLine))

        # ask: the answer streams into Markdown, then the sources are listed
        view = await ask(pilot, "How often should I clean the alpha pump filter?")
        assert view.answer is not None and view.answer.grounded
        assert "filter every month" in view.answer.text
        assert view.streamed_text.strip()  # it arrived in pieces first
        assert "filter every month" in view.query_one(Markdown).source
        assert "cites [1]" in visible_text(view.query_one(".answer-meta"))
        table = app.screen.query_one(SourcesTable)
        assert not app.screen.query_one("#sources-pane").has_class("-hidden")
        assert table.row_count == len(view.answer.sources) >= 2
        first = table.get_row_at(0)
        assert first[0] == "[1]" and first[1] == "alpha.md" and first[5] == "✓"
        assert "/" not in "".join(str(table.get_row_at(i)[1]) for i in range(table.row_count))

        # open the source: the viewer shows the file's chunks with the passage highlighted
        await pilot.press("tab")
        assert table.has_focus
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ViewerScreen))
        viewer = app.screen
        hit = viewer.query_one(".-hit")
        assert "Clean the alpha pump filter every month" in visible_text(hit)
        assert len(viewer.query(".chunk")) == len(lib.store.chunks_of(str(tui_path(lib, "alpha.md"))))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert app.screen.query_one(SourcesTable).row_count == len(view.answer.sources)


def tui_path(lib: Library, name: str) -> Path:
    return lib.config.folders()[0] / name


async def test_viewer_scrolls_a_deep_passage_into_view(ingested):
    app = create_app(ingested)
    async with app.run_test(size=SIZE) as pilot:
        view = await ask(pilot, "Where do I store the zeppelin balloon?")
        source = view.answer.sources[0]
        assert Path(source.hit.path).name == "gamma.md"
        app.open_source(source)
        await wait_for(pilot, lambda: isinstance(app.screen, ViewerScreen))
        await pilot.pause(0.1)
        body = app.screen.query_one("#viewer-body")
        hit = app.screen.query_one(".-hit")
        assert "zeppelin" in visible_text(hit)
        assert len(app.screen.query(".chunk")) >= 3
        assert body.scroll_y > 0
        assert body.region.contains_point(hit.region.offset)  # its first line is on screen
        await pilot.press("p")  # the previous passage
        await pilot.press("h")  # back to the source
        assert app.screen.query(".-current").first() is hit
        await pilot.press("q")
        assert isinstance(app.screen, MainScreen)


async def test_ask_before_ingest_shows_the_error_in_the_ui(lib):
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        view = await ask(pilot, "anything at all?")
        assert view.has_class("-error")
        meta = visible_text(view.query_one(".answer-meta"))
        assert "nothing is indexed yet" in meta
        assert "^r" in meta  # the hint says which key ingests
        status = app.screen.query_one(StatusLine)
        assert status.has_class("-error") and "nothing is indexed yet" in status.error
        assert app.screen.query_one("#sources-pane").has_class("-hidden")
        # the next successful action clears it
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not app.ingesting)
        assert not status.has_class("-error")


async def test_stop_generation_with_escape(tui_docs):
    lib = make_library(tui_docs, SlowGenerator())
    lib.ingest()
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#question", Input).value = "beta mower battery"
        await pilot.press("enter")
        view = app.screen.query(AnswerView).last()
        await wait_for(pilot, lambda: len(view.streamed_text) > 0)
        assert app.main.answering
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.main.answering)
        assert view.has_class("-stopped")
        assert view.answer is None
        assert 0 < len(view.streamed_text.split()) < 200
        assert "stopped" in visible_text(view.query_one(".answer-meta"))
        # the chat is usable again
        assert app.screen.query_one("#question", Input).has_focus


class SlowEmbedder(FakeEmbedder):
    """Embeds documents slowly (queries at full speed), so an ingest takes a while."""

    def embed(self, texts, batch_size=32):
        time.sleep(1.0)
        return super().embed(texts, batch_size)


async def test_chat_stays_usable_while_ingesting(tui_docs):
    cfg = Config()
    cfg.library.folders = [str(tui_docs)]
    lib = Library(cfg, embedder=SlowEmbedder(), generator=FakeGenerator())
    lib.ingest([tui_docs / "alpha.md"])
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        assert app.ingesting
        view = await ask(pilot, "How often should I clean the alpha pump filter?")
        assert app.ingesting  # the answer came while the ingest was still embedding
        assert view.answer is not None and "filter every month" in view.answer.text
        await pilot.press("ctrl+r")  # a second ingest is refused politely
        await wait_for(pilot, lambda: not app.ingesting)
        assert lib.status()["files"] == 3


async def test_new_chat_clears_the_conversation(ingested):
    app = create_app(ingested)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "beta mower warranty")
        assert app.screen.query_one(SourcesTable).row_count > 0
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert not app.screen.query(AnswerView)
        assert app.screen.query_one(SourcesTable).row_count == 0
        assert app.screen.query_one("#sources-pane").has_class("-hidden")
        assert app.screen.query(Welcome)


# --- ingest: a typed path, errors ---------------------------------------------------------------


async def test_ingest_a_typed_path_and_a_missing_one(lib, tui_env):
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        await pilot.pause()
        await pilot.press(*"nowhere/at/all", "enter")
        await wait_for(pilot, lambda: not app.ingesting)
        status = app.screen.query_one(StatusLine)
        assert "no such file or folder" in status.error
        assert "no such file or folder" in visible_text(app.screen.query(SystemNote).last())

        await pilot.press("ctrl+o")
        await pilot.pause()
        await pilot.press(*"docs/beta.txt", "enter")
        await wait_for(pilot, lambda: not app.ingesting)
        assert not status.error
        assert lib.status()["files"] == 1
        assert "1 files seen" in visible_text(app.screen.query(SystemNote).last())

        await pilot.press("ctrl+o")
        await pilot.pause()
        await pilot.press("escape")  # cancelled: nothing happens
        assert isinstance(app.screen, MainScreen) and not app.ingesting


async def test_ingest_while_locked_shows_the_error(lib):
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        with write_lock(lib.config.data_dir):
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: not app.ingesting)
        assert "being updated" in app.screen.query_one(StatusLine).error
        assert app.is_running


async def test_bad_config_is_shown_not_raised(tui_env, monkeypatch):
    bad = tui_env / "bad.toml"
    bad.write_text("[retrieval]\ntop_k = 'five'\n", encoding="utf-8")
    monkeypatch.setenv("ASSISTANT_CONFIG", str(bad))
    app = create_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.library is None
        assert "retrieval.top_k" in app.screen.query_one(StatusLine).error
        view = await ask(pilot, "hello?")
        assert view.has_class("-error")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert app.is_running


# --- library screen -----------------------------------------------------------------------------


async def test_library_screen_lists_files_and_failures_and_removes(tui_docs):
    (tui_docs / "empty.md").write_text("", encoding="utf-8")  # fails: no text
    lib = make_library(tui_docs)
    lib.ingest()
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, LibraryScreen))
        screen = app.screen
        files = screen.query_one("#files", DataTable)
        names = [files.get_row_at(i)[0] for i in range(files.row_count)]
        assert names == ["docs/alpha.md", "docs/beta.txt", "docs/gamma.md"]
        fails = screen.query_one("#failures", DataTable)
        assert fails.row_count == 1 and fails.get_row_at(0)[0] == "docs/empty.md"
        assert "3 files" in visible_text(screen.query_one("#lib-summary")) or files.row_count == 3

        # remove the selected file (after confirming)
        assert files.has_focus
        await pilot.press("down")  # beta.txt
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("n")  # changed my mind
        await pilot.pause()
        assert files.row_count == 3
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await wait_for(pilot, lambda: files.row_count == 2)
        assert [files.get_row_at(i)[0] for i in range(2)] == ["docs/alpha.md", "docs/gamma.md"]
        assert lib.status()["files"] == 2

        # remove the folder of the selected file: everything under docs/
        await pilot.press("D")
        await pilot.pause()
        await pilot.press("y")
        await wait_for(pilot, lambda: files.row_count == 0)
        assert lib.status()["chunks"] == 0

        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert app.screen.query_one(Welcome).has_class("-empty")
        assert "0 files" in visible_text(app.screen.query_one(StatusLine))


# --- help and the command palette ---------------------------------------------------------------


async def test_help_screen_lists_the_bindings(lib):
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        listed = {(keys, text) for _, rows in app.screen.sections for keys, text in rows}
        for expected in [("^r", "Ingest (re-sync) the configured folders"), ("^l", "What is indexed; remove files"),
                         ("esc", "Stop the answer being generated"), ("^n", "Clear the conversation"),
                         ("n", "Move to the next passage of the file"),
                         ("d / del", "Remove the selected file from the library"), ("f1", "Help")]:
            assert expected in listed, expected
        shown = screen_text(app)
        assert "Ingest (re-sync) the configured folders" in shown and "Stop the answer" in shown
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_command_palette_opens_the_library(ingested):
    app = create_app(ingested)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Library")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LibraryScreen))
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for expected in ("Ingest configured folders", "Ingest a file or folder…", "New chat", "Library", "Help"):
            assert expected in titles


# --- snapshots (80x24 and 160x48) --------------------------------------------------------------------


def _steady(pilot):
    pilot.app.screen.query_one("#question", Input).cursor_blink = False


def test_snapshot_empty_state(lib, snap_compare):
    app = create_app(lib, show_timings=False)

    async def run_before(pilot):
        await pilot.pause()
        _steady(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


async def _answer_then_settle(pilot):
    _steady(pilot)
    await ask(pilot, "How often should I clean the alpha pump filter?")
    await pilot.pause(0.1)


def test_snapshot_after_answer(ingested, snap_compare):
    app = create_app(ingested, show_timings=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_answer_then_settle)


def test_snapshot_after_answer_wide(ingested, snap_compare):
    app = create_app(ingested, show_timings=False)
    assert snap_compare(app, terminal_size=(160, 48), run_before=_answer_then_settle)

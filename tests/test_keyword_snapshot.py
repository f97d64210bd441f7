"""The keyword index's snapshot on disk: loaded by the next process instead of a rebuild, never stale,
never holding a removed file's terms, and a damaged file costs a rebuild, nothing else."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import zipfile

import pytest

from assistant.config import load_config
from assistant.keyword_index import KeywordIndex, generation_of
from assistant.store import Store
from test_keyword_index import _paths, _write

FILES = {
    "/notes/mower.txt": ["the zorblax mower charges in ninety minutes", "quiet mode lowers the noise"],
    "/notes/garden.md": ["plant tulips in october", "prune the apple trees in winter"],
    "/notes/secret.txt": ["the quokkaphrase vault code is written here"],
}


def _open() -> Store:
    return Store(load_config())


@contextlib.contextmanager
def written(files: dict[str, list[str]]):
    """A store holding ``files`` (through the real write path), closed after."""
    s = _open()
    try:
        _write(s, files)
        yield s
    finally:
        s.close()


@pytest.fixture
def store():
    with written(FILES) as s:
        yield s


def rewrite_arrays(path, **change) -> dict:
    """Rewrite the snapshot archive at ``path`` with some arrays changed (name=function of the old
    array), as a whole valid archive; returns the arrays as they were."""
    import numpy as np

    with np.load(path) as z:
        arrays = dict(z)
    with open(path, "wb") as fh:
        np.savez(fh, **{k: change[k](v) if k in change else v for k, v in arrays.items()})
    return arrays


def _searches(store: Store) -> dict[str, list[str]]:
    return {q: _paths(store, store.keyword_search(q, 10)) for q in ("mower noise", "tulips", "quokkaphrase", "apple winter")}


def _snapshot_bytes(store: Store) -> bytes:
    """Every snapshot file's bytes, the arrays inside the archive unpacked (no compression is assumed)."""
    out = b""
    for p in store.keyword_index.snapshot_files():
        out += p.read_bytes()
        try:
            with zipfile.ZipFile(p) as z:
                out += b"".join(z.read(n) for n in z.namelist())
        except zipfile.BadZipFile:
            pass
    return out


def test_a_new_process_loads_the_snapshot_instead_of_rebuilding(store):
    expected = _searches(store)
    assert store.keyword_index.last_refresh == ""  # fresh after the first search of the four
    files = store.keyword_index.snapshot_files()
    assert len(files) == 1 and files[0].parent == store.dir
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600  # private text, like the state file

    again = _open()  # what the next `assistant search` does
    try:
        again.keyword_index.refresh()
        assert again.keyword_index.last_refresh == "loaded"
        assert _searches(again) == expected
        # the same scores, not only the same order
        assert again.keyword_search("mower noise", 10) == store.keyword_search("mower noise", 10)
    finally:
        again.close()


def test_a_change_by_another_process_is_seen_and_the_old_snapshot_goes(store):
    store.keyword_search("tulips", 5)
    other = _open()
    try:
        _write(other, {"/notes/new.txt": ["heliotrope firmware release"]})
        assert other.keyword_index.snapshot_files() == []  # deleted by the commit
        assert _paths(store, store.keyword_search("heliotrope", 5)) == ["/notes/new.txt"]
        assert store.keyword_index.last_refresh == "built"
    finally:
        other.close()
    third = _open()
    try:
        assert _paths(third, third.keyword_search("heliotrope", 5)) == ["/notes/new.txt"]
        assert third.keyword_index.last_refresh == "loaded"  # the snapshot the rebuild wrote
    finally:
        third.close()


def test_remove_leaves_no_snapshot_with_the_removed_files_terms(store):
    store.keyword_search("quokkaphrase", 5)
    assert b"quokkaphras" in _snapshot_bytes(store) and b"/notes/secret.txt" in _snapshot_bytes(store)
    store.remove_files(["/notes/secret.txt"])
    assert store.keyword_index.snapshot_files() == []  # gone with the commit, before any search
    assert store.keyword_search("quokkaphrase", 5) == []
    assert store.keyword_index.snapshot_files()  # rewritten by that search, without the removed file
    data = _snapshot_bytes(store)
    assert b"quokkaphras" not in data and b"secret.txt" not in data
    assert b"zorblax" in data  # (the check above reads the real content)


def test_a_snapshot_written_while_a_commit_lands_is_deleted(store):
    """A process that built the index of generation G and writes it after another process
    committed G+1 (which deleted the files on disk then) deletes its own file."""
    index = KeywordIndex(store.db_path, store.keyword_index.snapshot_stem)
    try:
        old = index.refresh()
        store.keyword_index.discard_snapshots()
        store.remove_files(["/notes/secret.txt"])  # generation moves between the build and the write
        index._save(old)
        assert index.snapshot_files() == []
    finally:
        index.close()


@pytest.mark.parametrize(
    "damage",
    ["truncated", "garbage", "empty", "wrong arrays"],
)
def test_a_damaged_snapshot_is_rebuilt_and_replaced(store, damage):
    expected = _searches(store)
    (path,) = store.keyword_index.snapshot_files()
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(len(data)))
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a whole archive whose arrays do not fit together
        rewrite_arrays(path, indices=lambda a: a + 1000)
    again = _open()
    try:
        again.keyword_index.refresh()
        assert again.keyword_index.last_refresh == "built"
        assert _searches(again) == expected
    finally:
        again.close()
    third = _open()  # the rebuild wrote a whole snapshot again
    try:
        third.keyword_index.refresh()
        assert third.keyword_index.last_refresh == "loaded"
        assert _searches(third) == expected
    finally:
        third.close()


def test_a_recreated_state_file_never_matches_an_old_snapshot(store):
    """The generation counter restarts with a new state file: the library id tells them apart."""
    store.keyword_search("tulips", 5)
    (old,) = store.keyword_index.snapshot_files()
    kept = old.read_bytes()
    db_path, folder = store.db_path, store.dir
    store.close()
    for p in folder.glob("state.sqlite*"):
        p.unlink()
    fresh = _open()
    try:
        _write(fresh, {"/other/doc.txt": ["tulips are not here, only daffodils"]})
        old.write_bytes(kept)  # as if the old snapshot had survived, under its own name
        assert fresh.keyword_index.snapshot_file(generation_of(fresh.db)) != old
        assert _paths(fresh, fresh.keyword_search("tulips", 5)) == ["/other/doc.txt"]
        assert fresh.keyword_index.last_refresh == "built"
    finally:
        fresh.close()
    assert db_path.exists()


def test_opening_the_store_deletes_a_snapshot_left_by_a_crash(store):
    """A process that died between its commit and the clean-up left an old snapshot."""
    store.keyword_search("quokkaphrase", 5)
    (old,) = store.keyword_index.snapshot_files()
    kept = old.read_bytes()
    db = sqlite3.connect(store.db_path)
    with db:  # the commit of a removal, without the store's clean-up around it
        db.execute("DELETE FROM chunk_tokens WHERE rowid IN (SELECT rowid FROM chunks WHERE path = '/notes/secret.txt')")
        db.execute("DELETE FROM chunks WHERE path = '/notes/secret.txt'")
        db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'chunks_generation'")
    db.close()
    old.write_bytes(kept)
    again = _open()
    try:
        assert again.keyword_index.snapshot_files() == []
        assert again.keyword_search("quokkaphrase", 5) == []
    finally:
        again.close()

"""The vectors in the keyword index's snapshot: a new process searches them exactly, in numpy, with
the same results Chroma gives, never opening Chroma; a change takes them away until the writer
attaches them again, reading only the new chunks' vectors."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

import assistant.keyword_index as keyword_index
from assistant.config import load_config
from assistant.keyword_index import STOPWORDS_EN
from assistant.store import Store
from assistant.testing import FakeEmbedder
from test_keyword_index import _paths, _write
from test_keyword_snapshot import _open, _snapshot_bytes, rewrite_arrays, written

FILES = {  # chunks of different lengths and words: no two score alike (ties could order either way)
    f"/notes/{name}.txt": [f"{name} {w} " + " ".join(f"w{name}{i}{j}" for j in range(i + 1)) for i, w in enumerate(words)]
    for name, words in {
        "mower": ["the zorblax mower charges in ninety minutes", "blade height", "quiet mode"],
        "garden": ["plant tulips in october", "prune the apple trees", "compost"],
        "bikes": ["the brantail k3 weighs twelve kilos", "gears", "chain oil"],
        "secret": ["the quokkaphrase vault code", "door", "alarm"],
    }.items()
}
QUERIES = ["mower charging time", "when to plant tulips", "how heavy is the bike", "vault code", "apple"]


@pytest.fixture
def store():
    with written(FILES) as s:
        yield s


def _chroma(store: Store, query: str, k: int, paths=None):
    """What the store answers from Chroma (the snapshot's vectors ignored)."""
    index, store.keyword_index = store.keyword_index, keyword_index.KeywordIndex(store.db_path)
    try:
        return store.dense_search(FakeEmbedder().embed_query(query), k, paths)
    finally:
        store.keyword_index.close()
        store.keyword_index = index


def _agree(got, want) -> None:
    """The same scores, and the same chunks at each score above the cut (tied chunks may come in
    either order, and a tie at the cut may keep either)."""
    assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)
    cut = want[-1][1] if want else 0.0

    def by_score(hits):
        return {round(s, 4): {c for c, t in hits if round(t, 4) == round(s, 4)} for _, s in hits if s > cut + 1e-5}

    assert by_score(got) == by_score(want)


def test_stop_words_are_bm25s_english_list():
    from bm25s.stopwords import STOPWORDS_EN as theirs

    assert STOPWORDS_EN == frozenset(theirs)


def test_a_new_process_searches_the_vectors_without_chroma_and_agrees_with_it(store):
    assert store.snapshot_vectors()
    again = _open()  # the next `assistant search`
    try:
        assert again.has_exact_vectors()
        for q in QUERIES:
            for paths in (None, ["/notes/garden.txt", "/notes/bikes.txt"]):
                _agree(again.dense_search(FakeEmbedder().embed_query(q), 6, paths), _chroma(store, q, 6, paths))
        assert again._collection is None  # Chroma was never opened by the reading store
        assert again.dense_search(FakeEmbedder().embed_query("tulips"), 5, []) == []
        assert again.dense_search(FakeEmbedder().embed_query("tulips"), 5, ["/not/indexed.txt"]) == []
    finally:
        again.close()


def test_a_change_drops_the_vectors_and_a_removed_file_leaves_none(store):
    assert store.snapshot_vectors()
    secret = store.chunks_of("/notes/secret.txt")
    vec = np.asarray(store.collection.get(ids=[secret[0].id], include=["embeddings"])["embeddings"][0], np.float32)
    assert vec.tobytes() in _snapshot_bytes(store)  # the chunk's vector, as stored (unit length)
    store.remove_files(["/notes/secret.txt"])
    assert store.keyword_index.snapshot_files() == []
    assert not store.has_exact_vectors()  # rebuilt from SQLite: terms only; dense goes to Chroma
    hits = store.dense_search(FakeEmbedder().embed_query("vault code"), 5)
    assert "/notes/secret.txt" not in _paths(store, hits) and hits
    assert store.snapshot_vectors()
    assert vec.tobytes() not in _snapshot_bytes(store)
    assert "/notes/secret.txt" not in _paths(store, store.dense_search(FakeEmbedder().embed_query("vault code"), 5))


def test_after_a_small_change_only_the_new_chunks_vectors_are_read(store):
    assert store.snapshot_vectors()
    asked: list[list[str]] = []
    read = store._vectors_of
    store._vectors_of = lambda ids: (asked.append(ids), read(ids))[1]
    _write(store, {"/notes/new.txt": ["a heliotrope firmware release", "second part"]})
    store.keyword_search("heliotrope", 3)  # a search in between: the index is rebuilt without vectors
    assert store.snapshot_vectors()
    new_ids = {c.id for c in store.chunks_of("/notes/new.txt")}
    assert [set(a) for a in asked] == [new_ids]
    # the reused vectors are in the right rows: the same answers as Chroma
    for q in QUERIES + ["heliotrope firmware"]:
        _agree(store.dense_search(FakeEmbedder().embed_query(q), 8), _chroma(store, q, 8))


def test_missing_vectors_or_too_many_chunks_leave_the_search_to_chroma(store, monkeypatch):
    store.collection.delete(ids=[store.chunks_of("/notes/mower.txt")[0].id])
    assert not store.snapshot_vectors()  # one vector missing: `assistant repair`'s business, not the snapshot's
    assert not store.has_exact_vectors()
    assert store.dense_search(FakeEmbedder().embed_query("tulips"), 3)
    monkeypatch.setattr(keyword_index, "VECTORS_MAX_CHUNKS", 3)
    other = _open()
    try:
        assert not other.snapshot_vectors()
    finally:
        other.close()


def test_a_damaged_vectors_array_costs_a_rebuild_only(store):
    assert store.snapshot_vectors()
    [path] = store.keyword_index.snapshot_files()
    arrays = rewrite_arrays(path, vectors=lambda v: v[:-1])  # a row short
    again = _open()
    try:
        again.keyword_index.refresh()
        assert again.keyword_index.last_refresh == "built" and not again.has_exact_vectors()
        assert _paths(again, again.dense_search(FakeEmbedder().embed_query("plant tulips in october"), 1)) == ["/notes/garden.txt"]
        [replaced] = again.keyword_index.snapshot_files()  # the damaged file is gone, the rebuilt one in its place
        with np.load(replaced) as z:
            assert "vectors" not in z.files and len(z["row_path"]) == len(arrays["row_path"])
    finally:
        again.close()


def test_a_reader_building_the_index_never_replaces_the_writers_file_with_vectors(store):
    """A process that builds the index (it found no snapshot yet) and saves it after the writer
    saved one with vectors keeps the writer's file: the next process still searches without Chroma."""
    reader = keyword_index.KeywordIndex(store.db_path, store.keyword_index.snapshot_stem)
    reader._db = sqlite3.connect(store.db_path, isolation_level=None)
    try:
        snap = reader._build(reader._db)  # no snapshot on disk yet: it builds
        assert store.snapshot_vectors()  # meanwhile the writer saves its file, with vectors
        reader._save(snap)  # the reader's, without: too late
    finally:
        reader.close()
    again = _open()
    try:
        assert again.has_exact_vectors()
    finally:
        again.close()


def test_a_new_process_changing_one_file_reads_only_its_vectors(store):
    """A one-shot `assistant ingest` (a fresh process) holds the snapshot's vectors before it
    changes anything, so the next snapshot reads only the new chunks' vectors from Chroma."""
    assert store.snapshot_vectors()
    writer = _open()  # the next `assistant ingest`
    try:
        asked: list[list[str]] = []
        read = writer._vectors_of
        writer._vectors_of = lambda ids: (asked.append(ids), read(ids))[1]
        writer.keyword_index.hold_vectors()
        _write(writer, {"/notes/garden.txt": ["plant tulips in november now", "and daffodils"]})
        assert writer.snapshot_vectors()
        assert [set(a) for a in asked] == [{c.id for c in writer.chunks_of("/notes/garden.txt")}]
        for q in QUERIES:
            _agree(writer.dense_search(FakeEmbedder().embed_query(q), 8), _chroma(writer, q, 8))
    finally:
        writer.close()

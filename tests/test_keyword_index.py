"""The in-memory BM25 keyword index: its scores, its filters, and that it is never stale."""

from __future__ import annotations

import math
import sqlite3
import time

import numpy as np
import pytest

from assistant.chunking import chunk_id, text_hash
from assistant.config import load_config
from assistant.keyword_index import analyze
from assistant.retrieve import Filters, Retriever
from assistant.store import SCHEMA_VERSION, ChunkRow, FileRow, Store
from assistant.testing import FakeEmbedder


def _write(store: Store, files: dict[str, list[str]]) -> None:
    """Make each path hold exactly these chunk texts (through the real write path)."""
    emb = FakeEmbedder()
    rows, chunks, texts = [], [], []
    for path, parts in files.items():
        digest = text_hash(path + "\0".join(parts))
        rows.append(FileRow(path, digest, 100, 0, len(parts), "text", None, time.time()))
        for o, text in enumerate(parts):
            chunks.append(ChunkRow(chunk_id(path, digest, o), path, o, text, text, text_hash(text), None, o + 1, o + 1, None))
            texts.append(text)
    store.replace_files(rows, chunks, emb.embed(texts))


def _paths(store: Store, hits) -> list[str]:
    rows = store.chunks_by_id([cid for cid, _ in hits])
    return [rows[cid].path for cid, _ in hits]


@pytest.fixture
def store():
    s = Store(load_config())
    yield s
    s.close()


def test_bm25_scores_by_hand(store):
    # "zebra" is in 2 of the 3 chunks: Robertson's idf (FTS5's) would be ln(0.6) < 0; Lucene's stays positive
    _write(store, {"/a.txt": ["zebra zebra quartz"], "/b.txt": ["zebra lemon"], "/c.txt": ["lemon lemon lemon lemon"]})
    hits = store.keyword_search("Zebras?", 10)
    n, df, avgdl, k1, b = 3, 2, 3.0, 1.2, 0.75
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))

    def score(tf, dl):
        return idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))

    assert _paths(store, hits) == ["/a.txt", "/b.txt"]  # /c.txt has no query term: not returned
    assert [s for _, s in hits] == pytest.approx([score(2, 3), score(1, 2)], rel=1e-6)


def test_scores_and_order_agree_with_bm25s(store):
    import bm25s

    rng = np.random.default_rng(5)
    words = "river stone cloud maple harbor lantern copper meadow signal orbit velvet ember canyon".split()
    texts = [" ".join(rng.choice(words, size=rng.integers(1, 30), p=np.linspace(2, 0.2, len(words)) / np.linspace(2, 0.2, len(words)).sum())) for _ in range(300)]
    _write(store, {f"/doc{i:03}.txt": [t] for i, t in enumerate(texts)})
    reference = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
    reference.index([analyze(t) for t in texts], show_progress=False)
    for query in ("river", "maple harbor", "ember canyon velvet", "signal orbit river stone"):
        terms = list(dict.fromkeys(analyze(query)))
        want = reference.get_scores(terms)
        got = store.keyword_search(query, 300)
        assert len(got) == int((want > 0).sum())  # every chunk with a query term, no other
        by_path = {p: s for p, (_, s) in zip(_paths(store, got), got)}
        for i, t in enumerate(texts):
            assert by_path.get(f"/doc{i:03}.txt", 0.0) == pytest.approx(float(want[i]), rel=1e-5, abs=1e-7)
        scores = [s for _, s in got]
        assert scores == sorted(scores, reverse=True)


def test_change_through_another_store_is_seen(store):
    """A second Store on the same data folder stands for another process (`assistant ingest` beside the TUI)."""
    _write(store, {"/notes.txt": ["the firmware team meets on Monday"]})
    assert _paths(store, store.keyword_search("firmware", 5)) == ["/notes.txt"]
    other = Store(load_config())
    try:
        _write(other, {"/new.txt": ["heliotrope firmware release"]})
        assert _paths(store, store.keyword_search("heliotrope", 5)) == ["/new.txt"]
        assert sorted(_paths(store, store.keyword_search("firmware", 5))) == ["/new.txt", "/notes.txt"]
        other.remove_files(["/new.txt"])
        assert store.keyword_search("heliotrope", 5) == []
        _write(other, {"/notes.txt": ["the hardware team meets on Friday"]})  # a changed file
        assert store.keyword_search("firmware", 5) == []
        assert _paths(store, store.keyword_search("hardware", 5)) == ["/notes.txt"]
    finally:
        other.close()


def test_unchanged_store_is_not_rebuilt_and_a_write_is_seen(store):
    _write(store, {"/a.txt": ["alpha beta"]})
    store.keyword_search("alpha", 5)
    first = store.keyword_index.refresh()
    store.keyword_search("beta", 5)
    assert store.keyword_index.refresh() is first  # one cheap counter read, no rebuild
    store.remove_files(["/a.txt"])
    assert store.keyword_search("alpha", 5) == []
    assert store.keyword_index.refresh() is not first


def test_filters_find_matches_beyond_the_unfiltered_top_k(store):
    # 40 chunks that score high on "alpha", and one weak match in the only allowed file
    files = {f"/loud/doc{i:02}.md": ["alpha alpha alpha alpha gamma"] for i in range(40)}
    files["/quiet/target.txt"] = ["alpha " + " ".join(f"filler{i}" for i in range(60))]
    files["/quiet/other.txt"] = ["gamma only"]
    _write(store, files)
    assert "/quiet/target.txt" not in _paths(store, store.keyword_search("alpha", 5))
    assert _paths(store, store.keyword_search("alpha", 5, paths=["/quiet/target.txt", "/quiet/other.txt"])) == ["/quiet/target.txt"]
    assert store.keyword_search("alpha", 5, paths=[]) == []
    assert store.keyword_search("alpha", 5, paths=["/not/indexed.txt"]) == []

    retriever = Retriever(load_config().retrieval, store, FakeEmbedder())
    hits = retriever.retrieve("alpha", mode="keyword", filters=Filters(path_glob="/quiet/*")).hits
    assert [h.path for h in hits] == ["/quiet/target.txt"]
    hits = retriever.retrieve("alpha", mode="keyword", filters=Filters(file_types=("txt",))).hits
    assert [h.path for h in hits] == ["/quiet/target.txt"]
    hits = retriever.retrieve("alpha gamma", mode="hybrid", top_k=50, filters=Filters(file_types=("txt",))).hits
    assert {h.path for h in hits} == {"/quiet/target.txt", "/quiet/other.txt"}


def test_empty_store_and_unknown_terms(store):
    assert store.keyword_search("anything", 5) == []
    _write(store, {"/a.txt": ["alpha"]})
    assert store.keyword_search("zzzz the of", 5) == []  # unknown and stop words only
    assert store.keyword_search("", 5) == []


def test_schema_1_library_is_migrated(store):
    """A library written by the FTS5 version: its tokens move to chunk_tokens, and search works."""
    _write(store, {"/a.txt": ["copper lantern"], "/b.txt": ["velvet meadow"]})
    db_path = store.db_path
    store.close()
    db = sqlite3.connect(db_path)
    db.executescript(
        "CREATE VIRTUAL TABLE chunks_fts USING fts5(tokens, tokenize='unicode61 remove_diacritics 0');"
        "INSERT INTO chunks_fts(rowid, tokens) SELECT rowid, tokens FROM chunk_tokens;"
        "DROP TABLE chunk_tokens; DELETE FROM meta WHERE key IN ('schema_version', 'chunks_generation');"
    )
    db.close()
    migrated = Store(load_config())
    try:
        assert _paths(migrated, migrated.keyword_search("lantern", 5)) == ["/a.txt"]
        names = {r[0] for r in migrated.db.execute("SELECT name FROM sqlite_master")}
        assert "chunks_fts" not in names and "chunk_tokens" in names
        assert migrated.meta("schema_version") == str(SCHEMA_VERSION)
    finally:
        migrated.close()


def test_query_threads_apply_to_the_query_only(monkeypatch):
    """embed_query switches torch to `query_threads` and back; batches keep `threads`."""
    torch = pytest.importorskip("torch")
    from assistant.config import EmbeddingConfig
    from assistant.embed import Embedder

    seen = []

    class Model:
        def encode(self, texts, **kw):
            seen.append(torch.get_num_threads())
            return np.ones((len(texts), 4), dtype=np.float32)

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        e = Embedder(EmbeddingConfig(backend="torch", query_threads=1))
        e._model = Model()  # no model load
        e.embed_query("q")
        e.embed(["a", "b"])
        assert seen == [1, 2] and torch.get_num_threads() == 2
        e.cfg.query_threads = 0  # 0: the same as threads
        e.embed_query("q")
        assert seen[-1] == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("body", ["[embedding]\nquery_threads = -1\n", '[embedding]\nquery_threads = "1"\n'])
def test_query_threads_is_validated(write_config, body):
    from assistant.config import ConfigError

    write_config(body)
    with pytest.raises(ConfigError, match="embedding.query_threads"):
        load_config()

"""The keyword index: BM25 over the analysed tokens of every chunk, searched in memory.

SQLite is the source of truth: ``chunk_tokens`` holds each chunk's analysed
tokens, written and deleted in the same transaction as the chunk rows (see
``store.py``). This module keeps a bm25s index built from that table, as a cache
that is rebuilt, never patched: every write to the chunks also bumps
``chunks_generation`` in the ``meta`` table in that transaction, and every search
first reads the counter (one primary-key SELECT) and rebuilds when it moved. A
change made by any process (``assistant ingest`` while the TUI is open) is
therefore seen by the next search, and no search is answered from an index
older than the last commit it could see.

Scores are bm25s's ``method="lucene"`` BM25 with k1 = 1.2, b = 0.75 (the
defaults of Lucene and of SQLite FTS5, which this replaces):
idf = ln(1 + (N - df + 0.5) / (df + 0.5)), term part = tf / (tf + k1 (1 - b + b dl / avgdl)).
That idf is positive for every term, so every chunk holding a query term scores
above zero however common the term (the Robertson idf that FTS5 uses is zero or
negative for terms in more than half the chunks, which loses matches in a small
library). A chunk with no query term scores 0 and is not returned.

The score matrix is computed here with numpy/scipy and handed to ``bm25s.BM25``
in the state its ``index()`` leaves (and ``BM25.load()`` restores): bm25s's own
build loops over documents in Python (100k chunks: 7.1 s from SQLite, against
2.1 s here, same machine and load).
``tests/test_keyword_index.py`` checks the scores against ``bm25s.BM25.index``.
Retrieval is bm25s's: top-k over the whole corpus, ``weight_mask`` for filters.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from array import array
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Collection

import numpy as np

__all__ = ["KeywordIndex", "analyze", "BUMP_GENERATION"]

K1 = 1.2
B = 0.75

GENERATION_KEY = "chunks_generation"
# Run inside every transaction that writes or deletes chunk rows.
BUMP_GENERATION = (
    f"INSERT INTO meta(key, value) VALUES ('{GENERATION_KEY}', '1')"
    " ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
)

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STEM = None
_STOP: frozenset[str] | None = None


def analyze(text: str) -> list[str]:
    """Lower-case word tokens, English stop words removed, Snowball-stemmed."""
    global _STEM, _STOP
    if _STEM is None:
        import Stemmer
        from bm25s.stopwords import STOPWORDS_EN

        _STOP = frozenset(STOPWORDS_EN)
        _STEM = Stemmer.Stemmer("english")
    words = [w for w in _TOKEN.findall(text.lower()) if w not in _STOP]
    return _STEM.stemWords(words)


@dataclass(frozen=True)
class _Snapshot:
    """The index of one committed state of the chunks."""

    generation: str | None
    bm25: object | None  # bm25s.BM25; None when there is no chunk
    ids: list[str]  # chunk id per index row
    row_path: np.ndarray  # per row, the position of its path in ``path_index``
    path_index: dict[str, int]


class KeywordIndex:
    """BM25 keyword search over the chunks of the SQLite file at ``db_path``.

    Safe to call from several threads: the index is swapped whole under a lock,
    and searches only read it.
    """

    def __init__(self, db_path: Path):
        self.db_path = db_path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._snapshot: _Snapshot | None = None

    def search(self, query: str, k: int, paths: Collection[str] | None = None) -> list[tuple[str, float]]:
        """(chunk id, BM25 score), best first: at most ``k`` chunks that hold a query term,
        only chunks of ``paths`` if given."""
        snap = self.refresh()
        if snap.bm25 is None or k <= 0:
            return []
        vocab = snap.bm25.vocab_dict
        terms = [t for t in dict.fromkeys(analyze(query)) if t in vocab]
        if not terms:
            return []
        mask = None
        if paths is not None:
            allowed = [snap.path_index[p] for p in paths if p in snap.path_index]
            if not allowed:
                return []
            # every allowed chunk competes for the top k; the others score 0
            mask = np.isin(snap.row_path, allowed).astype(np.float32)
        docs, scores = snap.bm25.retrieve(
            [terms], k=min(k, len(snap.ids)), weight_mask=mask,
            n_threads=0, backend_selection="numpy", show_progress=False,
        )
        return [(snap.ids[d], s) for d, s in zip(docs[0].tolist(), scores[0].tolist()) if s > 0]

    def refresh(self) -> _Snapshot:
        """The index of the last committed chunks, rebuilt first if they changed since."""
        with self._lock:
            if self._db is None:
                # its own connection: reads here never run inside a write transaction of the store's
                self._db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None, check_same_thread=False)
            if self._snapshot is None or self._snapshot.generation != _generation(self._db):
                self._snapshot = None  # stale: let it go before the new one takes memory
                self._snapshot = self._build(self._db)
            return self._snapshot

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            self._snapshot = None

    def _build(self, db: sqlite3.Connection) -> _Snapshot:
        ids: list[str] = []
        row_path: list[int] = []
        lengths: list[int] = []
        path_index: dict[str, int] = {}
        vocab: defaultdict[str, int] = defaultdict()
        vocab.default_factory = vocab.__len__  # an unseen term gets the next id (in C, no Python call per token)
        terms = array("i")
        db.execute("BEGIN")  # one snapshot for the counter and the rows it describes
        try:
            generation = _generation(db)
            for cid, path, tokens in db.execute(
                "SELECT c.id, c.path, t.tokens FROM chunk_tokens t JOIN chunks c ON c.rowid = t.rowid"
            ):
                words = tokens.split()
                ids.append(cid)
                row_path.append(path_index.setdefault(path, len(path_index)))
                lengths.append(len(words))
                terms.extend(map(vocab.__getitem__, words))
        finally:
            db.execute("COMMIT")
        bm25 = _bm25(np.frombuffer(terms, dtype=np.int32), np.asarray(lengths, dtype=np.int64), dict(vocab)) if ids else None
        return _Snapshot(generation, bm25, ids, np.asarray(row_path, dtype=np.int32), path_index)


def _generation(db: sqlite3.Connection) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (GENERATION_KEY,)).fetchone()
    return row[0] if row else None


def _bm25(terms: np.ndarray, lengths: np.ndarray, vocab: dict[str, int]):
    """A ``bm25s.BM25`` over documents given as their term ids laid end to end, and their lengths."""
    import bm25s
    import scipy.sparse

    n, n_terms = len(lengths), len(vocab)
    docs = np.repeat(np.arange(n, dtype=np.int32), lengths)
    # documents x terms; converting to CSC sums the repeated (document, term) pairs into term frequencies
    tf = scipy.sparse.csc_matrix((np.ones(len(terms), dtype=np.float32), (docs, terms)), shape=(n, n_terms))
    tf.sum_duplicates()
    df = np.diff(tf.indptr)
    idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
    avgdl = lengths.mean() if lengths.any() else 1.0
    norm = (K1 * (1 - B + B * lengths / avgdl)).astype(np.float32)  # per document
    data = tf.data / (tf.data + norm[tf.indices])  # float32 throughout: one entry per (term, document)
    data *= np.repeat(idf, df)

    index = bm25s.BM25(method="lucene", k1=K1, b=B, backend="numpy")
    # the attributes BM25.index() sets and BM25.load() restores
    index.scores = {"data": data, "indices": tf.indices, "indptr": tf.indptr, "num_docs": n}
    index.vocab_dict = vocab
    index.unique_token_ids_set = set(vocab.values())
    index.nonoccurrence_array = None  # lucene has no non-occurrence term
    return index

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

A one-shot command (``assistant search``, ``assistant ask``) would pay that build
in every process, so the built index is also kept on disk, in the data folder
beside the state (``<snapshot_stem>@<library_id>-<generation>.npz``, owner-only
like the rest): a process whose first search finds the snapshot of the current
generation loads it (arrays, no Python loop per chunk) instead of building.
``library_id`` (random, in ``meta``) keeps a snapshot of a deleted and re-created
state file from matching; a damaged or partial file is ignored and replaced by
a build. A snapshot holds the chunks' ids, paths and stemmed terms, so it must
not outlive a removal: the store deletes every snapshot before and after each
commit that changes the chunks and when it opens (``discard_snapshots``), and a
process that writes one checks the generation again after the write and
deletes its file if it moved meanwhile.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import tempfile
import threading
from array import array
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Collection

if TYPE_CHECKING:  # numpy loads with the first search: `assistant status` and `--help` never need it
    import numpy as np

__all__ = ["KeywordIndex", "analyze", "generation_of", "BUMP_GENERATION", "LIBRARY_ID_KEY"]

K1 = 1.2
B = 0.75

GENERATION_KEY = "chunks_generation"
LIBRARY_ID_KEY = "library_id"  # random, set once when the state file is created: names the library a snapshot is of
SNAPSHOT_FORMAT = 1
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

    generation: str | None  # "<library_id>/<chunks_generation>"
    bm25: object | None  # bm25s.BM25; None when there is no chunk
    ids: list[str]  # chunk id per index row
    row_path: np.ndarray  # per row, the position of its path in ``path_index``
    path_index: dict[str, int]


class KeywordIndex:
    """BM25 keyword search over the chunks of the SQLite file at ``db_path``.

    Safe to call from several threads: the index is swapped whole under a lock,
    and searches only read it. With ``snapshot_stem`` the built index is kept
    there and loaded by the next process (see the module docstring).
    """

    def __init__(self, db_path: Path, snapshot_stem: Path | None = None):
        self.db_path = db_path
        self.snapshot_stem = snapshot_stem
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._snapshot: _Snapshot | None = None
        self.last_refresh = ""  # "loaded", "built" or "" (fresh already): what the last refresh did

    def search(self, query: str, k: int, paths: Collection[str] | None = None) -> list[tuple[str, float]]:
        """(chunk id, BM25 score), best first: at most ``k`` chunks that hold a query term,
        only chunks of ``paths`` if given."""
        import numpy as np

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
        """The index of the last committed chunks: loaded from the snapshot file or rebuilt
        first if they changed since."""
        with self._lock:
            if self._db is None:
                # its own connection: reads here never run inside a write transaction of the store's
                self._db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None, check_same_thread=False)
            current = generation_of(self._db)
            self.last_refresh = ""
            if self._snapshot is None or self._snapshot.generation != current:
                self._snapshot = None  # stale: let it go before the new one takes memory
                loaded = self._load(current) if self.snapshot_stem is not None else None
                if loaded is not None:
                    self._snapshot, self.last_refresh = loaded, "loaded"
                else:
                    self._snapshot, self.last_refresh = self._build(self._db), "built"
                    if self.snapshot_stem is not None:
                        self._save(self._snapshot)
            return self._snapshot

    def snapshot_file(self, generation: str) -> Path:
        stem = self.snapshot_stem
        return stem.with_name(f"{stem.name}@{generation.replace('/', '-')}.npz")

    def snapshot_files(self) -> list[Path]:
        """The snapshot files on disk (of any generation; temporary ones included)."""
        if self.snapshot_stem is None:
            return []
        return sorted(self.snapshot_stem.parent.glob(f"{self.snapshot_stem.name}@*"))

    def discard_snapshots(self, keep: str | None = None) -> None:
        """Delete the snapshot files, but the one of generation ``keep`` (the current one) if given.

        The store calls it around every commit that changes the chunks: a snapshot must not
        keep a removed file's terms."""
        spare = self.snapshot_file(keep) if keep and self.snapshot_stem is not None else None
        for p in self.snapshot_files():
            if p != spare:  # another process's temporary file too: its rename then fails, and it builds again
                p.unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            self._snapshot = None

    def _build(self, db: sqlite3.Connection) -> _Snapshot:
        import numpy as np

        ids: list[str] = []
        row_path: list[int] = []
        lengths: list[int] = []
        path_index: dict[str, int] = {}
        vocab: defaultdict[str, int] = defaultdict()
        vocab.default_factory = vocab.__len__  # an unseen term gets the next id (in C, no Python call per token)
        terms = array("i")
        db.execute("BEGIN")  # one snapshot for the counter and the rows it describes
        try:
            generation = generation_of(db)
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

    # --- the snapshot file ---------------------------------------------------------

    def _save(self, snap: _Snapshot) -> None:
        """Write ``snap`` whole (temporary file, then rename), owner-only; never fails the search."""
        import numpy as np

        if snap.bm25 is None or snap.generation is None:
            self.discard_snapshots()  # nothing worth keeping: an empty library builds in no time
            return
        path = self.snapshot_file(snap.generation)
        scores = snap.bm25.scores
        vocab = sorted(snap.bm25.vocab_dict, key=snap.bm25.vocab_dict.__getitem__)
        paths = sorted(snap.path_index, key=snap.path_index.__getitem__)
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)  # mode 0600
            with os.fdopen(fd, "wb") as fh:
                np.savez(
                    fh,
                    format=np.array([SNAPSHOT_FORMAT], dtype=np.int64),
                    generation=_text(snap.generation),
                    ids=_text(json.dumps(snap.ids)),
                    paths=_text(json.dumps(paths)),
                    vocab=_text(json.dumps(vocab)),
                    row_path=snap.row_path,
                    data=np.asarray(scores["data"], dtype=np.float32),
                    indices=np.asarray(scores["indices"], dtype=np.int32),
                    indptr=np.asarray(scores["indptr"], dtype=np.int64),
                )
            os.replace(tmp, path)
            tmp = None
            # a commit between the build and the rename has already deleted the old files, not
            # this one: it would describe chunks that are gone (a removed file's terms)
            self.discard_snapshots(keep=generation_of(self._db))
        except (OSError, sqlite3.Error):
            pass  # a full disk or a read-only folder costs the next process a build, nothing else
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)

    def _load(self, generation: str | None) -> _Snapshot | None:
        """The snapshot of ``generation`` from the file, or None (missing, another generation, damaged)."""
        import zipfile

        import numpy as np

        if generation is None:
            return None
        try:
            with np.load(self.snapshot_file(generation), allow_pickle=False) as z:
                if int(z["format"][0]) != SNAPSHOT_FORMAT or _from_text(z["generation"]) != generation:
                    return None
                ids = json.loads(_from_text(z["ids"]))
                paths = json.loads(_from_text(z["paths"]))
                vocab = json.loads(_from_text(z["vocab"]))
                row_path, data, indices, indptr = z["row_path"], z["data"], z["indices"], z["indptr"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, IndexError, EOFError, zipfile.BadZipFile, UnicodeDecodeError):
            return None  # damaged or cut short: rebuilt and rewritten
        n = len(ids)
        if not (
            n and isinstance(ids, list) and isinstance(paths, list) and isinstance(vocab, list)
            and row_path.shape == (n,) and row_path.dtype == np.int32
            and indptr.shape == (len(vocab) + 1,) and indptr.dtype == np.int64
            and data.ndim == 1 and data.dtype == np.float32 and indices.shape == data.shape and indices.dtype == np.int32
            and indptr[0] == 0 and indptr[-1] == len(data) and bool(np.all(np.diff(indptr) >= 0))
            and (not len(indices) or (int(indices.min()) >= 0 and int(indices.max()) < n))
            and (not n or (int(row_path.min()) >= 0 and int(row_path.max()) < len(paths)))
        ):
            return None
        bm25 = _bm25_from_scores(data, indices, indptr, n, {t: i for i, t in enumerate(vocab)})
        return _Snapshot(generation, bm25, ids, row_path, {p: i for i, p in enumerate(paths)})


def _text(s: str):
    import numpy as np

    return np.frombuffer(s.encode("utf-8"), dtype=np.uint8)


def _from_text(a) -> str:
    if a.dtype.kind != "u" or a.ndim != 1:
        raise ValueError("not a text field")
    return a.tobytes().decode("utf-8")


def generation_of(db: sqlite3.Connection) -> str | None:
    """"<library_id>/<chunks_generation>", or None before the first write to the chunks."""
    rows = dict(db.execute("SELECT key, value FROM meta WHERE key IN (?, ?)", (GENERATION_KEY, LIBRARY_ID_KEY)))
    gen = rows.get(GENERATION_KEY)
    return None if gen is None else f"{rows.get(LIBRARY_ID_KEY, '')}/{gen}"


def _bm25(terms: np.ndarray, lengths: np.ndarray, vocab: dict[str, int]):
    """A ``bm25s.BM25`` over documents given as their term ids laid end to end, and their lengths."""
    import numpy as np
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
    return _bm25_from_scores(data, tf.indices, tf.indptr, n, vocab)


def _bm25_from_scores(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, n: int, vocab: dict[str, int]):
    """A ``bm25s.BM25`` in the state its ``index()`` leaves, from the term-major (CSC) score matrix."""
    import bm25s

    index = bm25s.BM25(method="lucene", k1=K1, b=B, backend="numpy")
    # the attributes BM25.index() sets and BM25.load() restores
    index.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": n}
    index.vocab_dict = vocab
    index.unique_token_ids_set = set(vocab.values())
    index.nonoccurrence_array = None  # lucene has no non-occurrence term
    return index

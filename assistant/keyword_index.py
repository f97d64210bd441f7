"""The keyword index: BM25 over the analysed tokens of every chunk, searched in memory.

SQLite is the source of truth: ``chunk_tokens`` holds each chunk's analysed
tokens, written and deleted in the same transaction as the chunk rows (see
``store.py``). This module keeps a BM25 index built from that table, as a cache
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

The score matrix (term-major, CSC) is computed here with numpy/scipy: bm25s's
own build loops over documents in Python (100k chunks: 7.1 s from SQLite,
against 2.1 s here, same machine and load). A search sums the columns of the
query's terms and takes the top k (what bm25s's numpy backend does), so a query
imports neither bm25s nor scipy (0.2 s each in a one-shot process).
``tests/test_keyword_index.py`` checks the scores against ``bm25s.BM25.index``.

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

The snapshot also carries the chunks' vectors when the process that wrote the
chunks adds them (``attach_vectors``: ``Library.ingest``, ``remove`` and
``repair`` do, from Chroma, up to ``VECTORS_MAX_CHUNKS`` chunks): then
``dense_search`` answers exactly (cosine over every chunk, numpy) and a one-shot
command never imports or opens Chroma (about 0.9 s, the largest fixed cost of a
cold ``assistant search``; docs/benchmarks.md "Starting fast"). The vectors
share the file's lifecycle: gone with every change of the chunks, so a removed
passage's vector is not kept here either. Without them (a library larger than
the cap, a snapshot rebuilt by a reading process, a store whose vectors are
incomplete) the store searches Chroma as before.
"""

from __future__ import annotations

import dataclasses
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
from typing import TYPE_CHECKING, Callable, Collection

if TYPE_CHECKING:  # numpy loads with the first search: `assistant status` and `--help` never need it
    import numpy as np

__all__ = ["KeywordIndex", "analyze", "generation_of", "BUMP_GENERATION", "LIBRARY_ID_KEY"]

K1 = 1.2
B = 0.75

GENERATION_KEY = "chunks_generation"
LIBRARY_ID_KEY = "library_id"  # random, set once when the state file is created: names the library a snapshot is of
SNAPSHOT_FORMAT = 1
# above this many chunks the snapshot holds no vectors (4 bytes x dimensions each: 150 MB at 100k
# chunks of MiniLM): a brute-force search of more costs more than Chroma's import, and the disk twice
VECTORS_MAX_CHUNKS = 200_000
# Run inside every transaction that writes or deletes chunk rows.
BUMP_GENERATION = (
    f"INSERT INTO meta(key, value) VALUES ('{GENERATION_KEY}', '1')"
    " ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
)

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STEM = None
# Lucene's English stop words, as bm25s's STOPWORDS_EN (a test keeps them equal): importing
# bm25s for this list would cost a one-shot search 0.2 s
STOPWORDS_EN = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these"
    " they this to was will with".split()
)


def analyze(text: str) -> list[str]:
    """Lower-case word tokens, English stop words removed, Snowball-stemmed."""
    global _STEM
    if _STEM is None:
        import Stemmer

        _STEM = Stemmer.Stemmer("english")
    words = [w for w in _TOKEN.findall(text.lower()) if w not in STOPWORDS_EN]
    return _STEM.stemWords(words)


@dataclass(frozen=True)
class _Scores:
    """BM25 score of every (term, chunk) pair that occurs: a term-major (CSC) sparse matrix."""

    data: np.ndarray  # float32 scores, column by column
    indices: np.ndarray  # int32 chunk row of each score
    indptr: np.ndarray  # int64, len(vocab) + 1: term t's scores are data[indptr[t]:indptr[t + 1]]
    vocab: dict[str, int]  # stemmed term -> column


@dataclass(frozen=True)
class _Snapshot:
    """The index of one committed state of the chunks."""

    generation: str | None  # "<library_id>/<chunks_generation>"
    scores: _Scores | None  # None when there is no chunk
    ids: list[str]  # chunk id per index row
    row_path: np.ndarray  # per row, the position of its path in ``path_index``
    path_index: dict[str, int]
    vectors: np.ndarray | None = None  # per row, the chunk's unit vector (float32), if attached

    def rows_of(self, paths: Collection[str]) -> np.ndarray | None:
        """A boolean mask of the rows of ``paths``; None when none of them is indexed."""
        import numpy as np

        allowed = [self.path_index[p] for p in paths if p in self.path_index]
        return np.isin(self.row_path, allowed) if allowed else None


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
        self._earlier: _Snapshot | None = None  # the last snapshot that had vectors, until they are attached again
        self.last_refresh = ""  # "loaded", "built" or "" (fresh already): what the last refresh did

    def search(self, query: str, k: int, paths: Collection[str] | None = None) -> list[tuple[str, float]]:
        """(chunk id, BM25 score), best first: at most ``k`` chunks that hold a query term,
        only chunks of ``paths`` if given."""
        import numpy as np

        snap = self.refresh()
        sc = snap.scores
        if sc is None or k <= 0:
            return []
        columns = [sc.vocab[t] for t in dict.fromkeys(analyze(query)) if t in sc.vocab]
        if not columns:
            return []
        total = np.zeros(len(snap.ids), dtype=np.float32)
        for c in columns:  # a column holds each chunk at most once: a fancy-index add is exact
            lo, hi = sc.indptr[c], sc.indptr[c + 1]
            total[sc.indices[lo:hi]] += sc.data[lo:hi]
        if paths is not None:
            mask = snap.rows_of(paths)
            if mask is None:
                return []
            total[~mask] = 0.0  # every allowed chunk competes for the top k; the others score 0
        return _top(snap.ids, total, k, above=0.0)

    def dense_search(self, vector: np.ndarray, k: int, paths: Collection[str] | None = None) -> list[tuple[str, float]] | None:
        """(chunk id, cosine similarity), best first, over every chunk (exact); None when the
        snapshot holds no vectors (the caller asks Chroma)."""
        import numpy as np

        snap = self.refresh()
        if snap.vectors is None:
            return None
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(q))
        if q.shape[0] != snap.vectors.shape[1] or not np.isfinite(norm) or norm == 0.0:
            return None  # another model's query: Chroma gives the error it always gave
        sims = snap.vectors @ (q / norm)
        if paths is not None:
            mask = snap.rows_of(paths)
            if mask is None:
                return []
            sims[~mask] = -np.inf
        return _top(snap.ids, sims, k, above=-np.inf)

    def hold_vectors(self) -> None:
        """Before a change: load the current snapshot if its file has vectors, so that
        ``attach_vectors`` after the change reads only the new chunks' vectors from the store
        (a one-shot `assistant ingest` of one file into 100k chunks: 6 s less). The file itself
        goes with the change, as always; these stay in memory until the attach."""
        if self.snapshot_stem is None:
            return
        with self._lock:
            current = generation_of(self._connection())
        if current is not None and _holds_vectors(self.snapshot_file(current)):
            self.refresh()

    def attach_vectors(self, vectors_of: Callable[[list[str]], np.ndarray | None]) -> bool:
        """Add the chunks' vectors to the current snapshot (memory and file), read with ``vectors_of``
        (rows in the order of the ids given; None if some are missing). The caller holds the write
        lock, so no chunk changes meanwhile. Returns whether the snapshot now has them."""
        import numpy as np

        snap = self.refresh()
        if snap.vectors is not None:
            return True
        if snap.scores is None or len(snap.ids) > VECTORS_MAX_CHUNKS:
            return False
        # a chunk id names its file's content (chunking.chunk_id): the vector of an id the earlier
        # snapshot held is the same; only the new ids are read from the store
        earlier, self._earlier = self._earlier, None
        known = {} if earlier is None else {cid: i for i, cid in enumerate(earlier.ids)}
        new = [cid for cid in snap.ids if cid not in known]
        fresh = vectors_of(new) if new else None
        if new and (fresh is None or fresh.shape[0] != len(new)):
            return False
        fresh = None if fresh is None else np.asarray(fresh, dtype=np.float32)
        dim = fresh.shape[1] if fresh is not None else earlier.vectors.shape[1]
        if earlier is not None and earlier.vectors.shape[1] != dim:
            return False  # another model since: no mixing
        vectors = np.empty((len(snap.ids), dim), dtype=np.float32)
        if earlier is not None:
            src = np.fromiter((known.get(cid, -1) for cid in snap.ids), dtype=np.int64, count=len(snap.ids))
            vectors[src >= 0] = earlier.vectors[src[src >= 0]]
        if fresh is not None:
            rows = {cid: i for i, cid in enumerate(new)}
            src = np.fromiter((rows.get(cid, -1) for cid in snap.ids), dtype=np.int64, count=len(snap.ids))
            vectors[src >= 0] = fresh[src[src >= 0]]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors /= np.where(norms > 0, norms, 1.0)
        with self._lock:
            if self._snapshot is not snap:
                return False  # the chunks moved on: the next refresh builds anew
            self._snapshot = dataclasses.replace(snap, vectors=vectors)
            self._save(self._snapshot)
        return True

    def refresh(self) -> _Snapshot:
        """The index of the last committed chunks: loaded from the snapshot file or rebuilt
        first if they changed since."""
        with self._lock:
            current = generation_of(self._connection())
            self.last_refresh = ""
            if self._snapshot is None or self._snapshot.generation != current:
                if self._snapshot is not None and self._snapshot.vectors is not None:
                    # kept for attach_vectors: after a small change most vectors are the same ones
                    self._earlier = self._snapshot
                self._snapshot = None  # stale: let it go before the new one takes memory
                loaded = self._load(current) if self.snapshot_stem is not None else None
                if loaded is not None:
                    self._snapshot, self.last_refresh = loaded, "loaded"
                    self._earlier = None
                else:
                    self._snapshot, self.last_refresh = self._build(self._db), "built"
                    if self.snapshot_stem is not None:
                        self._save(self._snapshot)
            return self._snapshot

    def _connection(self) -> sqlite3.Connection:
        """Its own connection (under the lock): reads here never run inside a write transaction of the store's."""
        if self._db is None:
            self._db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None, check_same_thread=False)
        return self._db

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
            self._snapshot = self._earlier = None

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
        scores = _bm25(np.frombuffer(terms, dtype=np.int32), np.asarray(lengths, dtype=np.int64), dict(vocab)) if ids else None
        return _Snapshot(generation, scores, ids, np.asarray(row_path, dtype=np.int32), path_index)

    # --- the snapshot file ---------------------------------------------------------

    def _save(self, snap: _Snapshot) -> None:
        """Write ``snap`` whole (temporary file, then rename), owner-only; never fails the search."""
        import numpy as np

        if snap.scores is None or snap.generation is None:
            self.discard_snapshots()  # nothing worth keeping: an empty library builds in no time
            return
        path = self.snapshot_file(snap.generation)
        if snap.vectors is None and _holds_vectors(path):
            return  # the writer's file of this generation, with its vectors, came first: keep it
        sc = snap.scores
        vocab = sorted(sc.vocab, key=sc.vocab.__getitem__)
        paths = sorted(snap.path_index, key=snap.path_index.__getitem__)
        extra = {} if snap.vectors is None else {"vectors": snap.vectors}
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
                    data=np.asarray(sc.data, dtype=np.float32),
                    indices=np.asarray(sc.indices, dtype=np.int32),
                    indptr=np.asarray(sc.indptr, dtype=np.int64),
                    **extra,
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
        path = self.snapshot_file(generation)
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["format"][0]) != SNAPSHOT_FORMAT or _from_text(z["generation"]) != generation:
                    return _unusable(path)
                ids = json.loads(_from_text(z["ids"]))
                paths = json.loads(_from_text(z["paths"]))
                vocab = json.loads(_from_text(z["vocab"]))
                row_path, data, indices, indptr = z["row_path"], z["data"], z["indices"], z["indptr"]
                vectors = z["vectors"] if "vectors" in z.files else None
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, IndexError, EOFError, zipfile.BadZipFile, UnicodeDecodeError):
            return _unusable(path)  # damaged or cut short: rebuilt and rewritten
        n = len(ids)
        if not (
            n and isinstance(ids, list) and isinstance(paths, list) and isinstance(vocab, list)
            and row_path.shape == (n,) and row_path.dtype == np.int32
            and indptr.shape == (len(vocab) + 1,) and indptr.dtype == np.int64
            and data.ndim == 1 and data.dtype == np.float32 and indices.shape == data.shape and indices.dtype == np.int32
            and indptr[0] == 0 and indptr[-1] == len(data) and bool(np.all(np.diff(indptr) >= 0))
            and (not len(indices) or (int(indices.min()) >= 0 and int(indices.max()) < n))
            and (not n or (int(row_path.min()) >= 0 and int(row_path.max()) < len(paths)))
            and (vectors is None or (vectors.ndim == 2 and vectors.shape[0] == n and vectors.dtype == np.float32
                                     and bool(np.isfinite(vectors).all())))
        ):
            return _unusable(path)
        scores = _Scores(data, indices, indptr, {t: i for i, t in enumerate(vocab)})
        return _Snapshot(generation, scores, ids, row_path, {p: i for i, p in enumerate(paths)}, vectors)


def _unusable(path: Path) -> None:
    """A snapshot file that cannot be used (damaged, another format): deleted, so the rebuilt
    index takes its place (files are renamed into place whole: this is never a file being written)."""
    path.unlink(missing_ok=True)
    return None


def _holds_vectors(path: Path) -> bool:
    """Whether the snapshot file at ``path`` is a readable archive with vectors (not loaded)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return "vectors.npy" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


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


def _top(ids: list[str], scores: np.ndarray, k: int, *, above: float) -> list[tuple[str, float]]:
    """The ``k`` best (id, score) pairs scoring more than ``above``, best first (ties: index order)."""
    import numpy as np

    k = min(k, len(ids))
    if k <= 0:
        return []
    best = np.argpartition(-scores, k - 1)[:k] if k < len(ids) else np.arange(len(ids))
    best = best[np.lexsort((best, -scores[best]))]
    return [(ids[i], s) for i, s in zip(best.tolist(), scores[best].tolist()) if s > above]


def _bm25(terms: np.ndarray, lengths: np.ndarray, vocab: dict[str, int]) -> _Scores:
    """The BM25 scores of documents given as their term ids laid end to end, and their lengths."""
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
    return _Scores(data.astype(np.float32, copy=False), tf.indices.astype(np.int32, copy=False),
                   tf.indptr.astype(np.int64, copy=False), vocab)

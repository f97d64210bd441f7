"""The library's storage: Chroma for vectors, SQLite for everything else, kept in step.

SQLite (``state.sqlite`` in the data folder, WAL mode) is the source of truth:
which files are indexed at which content hash, their chunks with locations, and
each chunk's analysed tokens (stemmed, stop-worded: ``chunk_tokens``), from which
``keyword_index.py`` builds the in-memory BM25 index it searches; a counter in
``meta`` bumped with every chunk write tells it when to rebuild. Chroma holds one
vector per chunk id, written through llama-index's ChromaVectorStore and queried
directly.

The two cannot share a transaction, so Chroma writes go through an intent log:
every chunk id about to be written to or deleted from Chroma is first recorded
in ``pending``; after the SQLite commit the ids are settled. On open, any id
still pending that SQLite does not hold as a chunk is deleted from Chroma. Dense
hits are joined against SQLite, so a vector without a committed chunk is never
returned. A crash at any point therefore leaves no duplicates and, after the
next ingest, no gaps.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from .config import Config
from .datadir import private_dir
from .faults import is_bug, state_fault, vector_fault
from .keyword_index import BUMP_GENERATION, LIBRARY_ID_KEY, KeywordIndex, analyze, generation_of
from .types import Hit

if TYPE_CHECKING:  # numpy loads with the first vector: `assistant status` never needs it
    import numpy as np

__all__ = ["Store", "ChunkRow", "FileRow", "FailureRow", "Health", "StoreError", "StoreWarning", "analyze", "state_file"]

# 2: tokens in chunk_tokens, searched in memory (1 kept them in an FTS5 table, chunks_fts)
# 3: failures remember the failed file's content hash, size and mtime (retried only when it changes)
SCHEMA_VERSION = 3


EMBED_BACKEND_KEY = "embed_backend"  # in meta: the backends that made the stored vectors (see note_embed_backend)


class StoreError(Exception):
    pass


class StoreWarning(UserWarning):
    """The store works but not fully (vectors missing from Chroma): ``assistant repair`` fixes it."""


@dataclass(frozen=True)
class ChunkRow:
    id: str
    path: str
    ord: int
    text: str  # the passage as it appears in the document
    embed_text: str  # what was embedded and keyword-indexed (with title/heading)
    text_hash: str
    page: int | None
    start_line: int
    end_line: int
    heading: str | None


@dataclass(frozen=True)
class Health:
    """What ``Store.check`` found: chunks in SQLite, vectors in Chroma, sampled ids Chroma lacks."""

    chunks: int
    vectors: int
    sample_missing: int
    sampled: int

    @property
    def ok(self) -> bool:
        return self.vectors >= self.chunks and self.sample_missing == 0

    def describe(self, chroma_path: str) -> str:
        return (f"the vector store {chroma_path} holds {self.vectors} vectors for {self.chunks} passages "
                f"({self.sample_missing} of {self.sampled} sampled are missing): searches by meaning miss "
                "the rest; run `assistant repair` (it embeds them again from the stored text)")


@dataclass(frozen=True)
class FileRow:
    path: str
    content_hash: str
    size: int
    mtime_ns: int
    n_chunks: int
    reader: str
    title: str | None
    ingested_at: float


@dataclass(frozen=True)
class FailureRow:
    """A file that could not be ingested, as it was when it failed (None: not known, e.g. it could not be read)."""

    path: str
    reason: str
    content_hash: str | None = None
    size: int | None = None
    mtime_ns: int | None = None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, content_hash TEXT NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, n_chunks INTEGER NOT NULL, reader TEXT NOT NULL,
    title TEXT, ingested_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, path TEXT NOT NULL, ord INTEGER NOT NULL,
    text TEXT NOT NULL, embed_text TEXT NOT NULL, text_hash TEXT NOT NULL, page INTEGER,
    start_line INTEGER NOT NULL, end_line INTEGER NOT NULL, heading TEXT);
CREATE INDEX IF NOT EXISTS chunks_path ON chunks(path);
CREATE INDEX IF NOT EXISTS chunks_text_hash ON chunks(text_hash);
-- each chunk's analysed tokens, space-separated; rowid = chunks.rowid
CREATE TABLE IF NOT EXISTS chunk_tokens (rowid INTEGER PRIMARY KEY, tokens TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pending (id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS failures (path TEXT PRIMARY KEY, reason TEXT NOT NULL, at REAL NOT NULL,
    content_hash TEXT, size INTEGER, mtime_ns INTEGER);
"""
_FAILURE_COLUMNS = ("content_hash TEXT", "size INTEGER", "mtime_ns INTEGER")


# hnsw sync of 2 (Chroma's smallest; its default is 1000): the vector index is saved after every
# write, and Chroma then purges its write-ahead log (embeddings_queue in chroma.sqlite3, which holds
# every passage's text) up to there, so no removed passage's text waits in the log (see
# Store.erase_deleted). The batch stays Chroma's default. Cost: bench/erase.py.
_HNSW_LOG = {"batch_size": 100, "sync_threshold": 2}
_COLLECTION_METADATA = {"hnsw:space": "cosine", **{f"hnsw:{k}": v for k, v in _HNSW_LOG.items()}}
_ERASE_PENDING = "erase_pending"  # meta: chunks were deleted; their text may still be in free pages or logs


def _keep_log_short(collection, cfg: Config) -> None:
    """A collection made before _HNSW_LOG was set gets it (its log was purged only every 1000 writes)."""
    if cfg.store.kind != "embedded":
        return
    hnsw = (getattr(collection, "configuration_json", None) or {}).get("hnsw") or {}
    if hnsw.get("sync_threshold") != _HNSW_LOG["sync_threshold"]:
        collection.modify(configuration={"hnsw": dict(_HNSW_LOG)})


def _chroma_client(cfg: Config, chroma_dir: Path):
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False, allow_reset=False)
    if cfg.store.kind == "http":
        headers = {"Authorization": f"Bearer {cfg.store.token}"} if cfg.store.token else None
        return chromadb.HttpClient(
            host=cfg.store.host, port=cfg.store.port, ssl=cfg.store.ssl, headers=headers, settings=settings
        )
    return chromadb.PersistentClient(path=str(chroma_dir), settings=settings)


class Store:
    """Open (creating if needed) the library in ``cfg.data_dir``."""

    def __init__(self, cfg: Config, *, collection: str | None = None):
        self.cfg = cfg
        self.dir = cfg.data_dir
        self.collection_name = collection or cfg.library.collection
        private_dir(self.dir)  # private text: owner-only files from here on
        self.db_path = state_file(self.dir, self.collection_name)
        try:
            self.db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA secure_delete=ON")  # a deleted row's text is overwritten, not left in a free page
            self.db.executescript(_SCHEMA)
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(state_fault(self.db_path, e)) from e
        if self.meta("secure_delete") is None and self.db.execute("PRAGMA freelist_count").fetchone()[0] == 0:
            self.set_meta("secure_delete", "on")  # no free page to hold old text: no VACUUM needed (erase_deleted)
        # the keyword index's snapshot (see keyword_index.py): private text, beside the state it is built from
        suffix = "" if self.collection_name == "default" else f"-{self.collection_name}"
        self.keyword_index = KeywordIndex(self.db_path, self.dir / f"keyword-index{suffix}")
        # one left by a process that died between a commit and its clean-up
        self.keyword_index.discard_snapshots(keep=generation_of(self.db))
        self._vector_store = None
        self._collection = None
        self.health: Health | None = None  # set when the collection is opened (check())
        self.chroma_recreated = False  # reset_collection had to start chroma/ afresh

    def _migrate(self) -> None:
        if self.meta("schema_version") == str(SCHEMA_VERSION) and self.meta(LIBRARY_ID_KEY):
            return
        with self.transaction():  # another process may be opening the same library
            if self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'chunks_fts'").fetchone():
                # schema 1 kept the tokens in an FTS5 table; its index is no longer used
                self.db.execute("INSERT OR REPLACE INTO chunk_tokens(rowid, tokens) SELECT rowid, tokens FROM chunks_fts")
                self.db.execute("DROP TABLE chunks_fts")
                self.db.execute(BUMP_GENERATION)
            have = {r[1] for r in self.db.execute("PRAGMA table_info(failures)")}
            for column in _FAILURE_COLUMNS:  # schema 2 kept only the reason
                if column.split()[0] not in have:
                    self.db.execute(f"ALTER TABLE failures ADD COLUMN {column}")
            self.set_meta("schema_version", str(SCHEMA_VERSION))
            # a state file made anew (the old one deleted) restarts the generation counter: the
            # keyword index's snapshot of the old one must not match it
            import secrets

            self.db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (LIBRARY_ID_KEY, secrets.token_hex(8)))

    # --- Chroma ------------------------------------------------------------

    @property
    def chroma_path(self) -> str:
        if self.cfg.store.kind == "http":
            return f"http{'s' if self.cfg.store.ssl else ''}://{self.cfg.store.host}:{self.cfg.store.port}"
        return str(self.dir / "chroma")

    @property
    def collection(self):
        if self._collection is None:
            try:
                client = _chroma_client(self.cfg, self.dir / "chroma")
                self._collection = client.get_or_create_collection(self.collection_name, metadata=_COLLECTION_METADATA)
                _keep_log_short(self._collection, self.cfg)
            except Exception as e:  # a server that is down, a token refused, a damaged folder
                if is_bug(e):
                    raise
                raise StoreError(vector_fault(self.chroma_path, e)) from e
            self._recover()
            self.health = self.check()
        return self._collection

    @property
    def vector_store(self):
        if self._vector_store is None:
            from llama_index.vector_stores.chroma import ChromaVectorStore

            self._vector_store = ChromaVectorStore(chroma_collection=self.collection)
        return self._vector_store

    def _recover(self) -> None:
        """Settle the intent log left by an interrupted write."""
        pending = [r[0] for r in self.db.execute("SELECT id FROM pending")]
        if not pending:
            return
        live = self._existing_ids(pending)
        dead = [i for i in pending if i not in live]
        for batch in _batches(dead, 5000):
            self._collection.delete(ids=batch)
        with self.transaction():
            self.db.executemany("DELETE FROM pending WHERE id = ?", [(i,) for i in pending])

    def check(self, sample: int = 16) -> "Health":
        """Do Chroma and SQLite agree? Counts, and a sample of chunk ids looked up and searched for.

        Cheap (three Chroma calls). Raises StoreError when the vector index cannot be read
        or does not find its own vectors (a damaged HNSW file); a Health with ``missing``
        when vectors are lost (``chroma/`` deleted): ``assistant repair`` or the next ingest
        embeds them again from the stored text.
        """
        import numpy as np

        col = self._collection if self._collection is not None else self.collection
        chunks = self.counts()["chunks"]
        try:
            vectors = col.count()
            ids = self._sample_ids(sample)
            got = col.get(ids=ids, include=["embeddings"]) if ids else {"ids": [], "embeddings": []}
            found = list(got["ids"])
            if found:  # HNSW is approximate: damaged only when none of three vectors finds itself
                probes = np.asarray(got["embeddings"][:3], dtype=np.float32)
                hits = col.query(query_embeddings=probes, n_results=1, include=["distances"])
                if not any(d and d[0] <= 1e-4 for d in hits["distances"]):
                    raise StoreError("the index does not find its own vectors")
        except Exception as e:
            if is_bug(e):
                raise
            raise StoreError(vector_fault(self.chroma_path, e)) from e
        return Health(chunks, vectors, len(ids) - len(found), len(ids))

    def _sample_ids(self, n: int) -> list[str]:
        top = self.db.execute("SELECT MAX(rowid) FROM chunks").fetchone()[0]
        if not top:
            return []
        rowids = sorted({random.randint(1, top) for _ in range(n * 4)})
        q = f"SELECT id FROM chunks WHERE rowid IN ({','.join('?' * len(rowids))}) LIMIT {n}"
        ids = [r[0] for r in self.db.execute(q, rowids)]
        return ids or [r[0] for r in self.db.execute("SELECT id FROM chunks LIMIT ?", (n,))]

    def missing_vectors(self) -> list[str]:
        """Ids of committed chunks that Chroma lacks (every chunk, looked up in batches)."""
        ids = [r[0] for r in self.db.execute("SELECT id FROM chunks ORDER BY rowid")]
        present: set[str] = set()
        for batch in _batches(ids, 2000):
            present.update(self.collection.get(ids=batch, include=[])["ids"])
        return [i for i in ids if i not in present]

    def restore_vectors(self, chunks: Sequence[ChunkRow], vectors: np.ndarray) -> None:
        """Write vectors for chunks SQLite already holds (a repair); SQLite is not touched."""
        self._add_vectors(chunks, vectors)

    def reset_collection(self) -> None:
        """Drop this collection's vectors (a damaged index) and start it empty; SQLite is not touched.

        Chroma leaves the dropped index's folder behind; it goes too, with any other folder
        in ``chroma/`` that no segment names (left by an earlier drop)."""
        try:
            client = _chroma_client(self.cfg, self.dir / "chroma")
        except Exception as e:
            if self.cfg.store.kind != "embedded":
                raise StoreError(vector_fault(self.chroma_path, e)) from e
            client = self._recreate_chroma_folder()
        try:
            client.delete_collection(self.collection_name)
        except Exception:  # not there (chroma/ lost) or beyond reading: start afresh all the same
            pass
        self._collection = client.get_or_create_collection(self.collection_name, metadata=_COLLECTION_METADATA)
        self._vector_store = None
        if self.cfg.store.kind == "embedded":
            _remove_orphan_segments(self.dir / "chroma")
        self.health = self.check()

    def _recreate_chroma_folder(self):
        """``chroma/`` cannot even be opened (its chroma.sqlite3 is damaged): delete it and start it empty.

        Everything in it is derived from the state files, which hold the text: this collection is
        rebuilt by the repair under way, the others are found short at their next open and
        rebuilt by their next ingest or repair."""
        import shutil

        from chromadb.api.client import SharedSystemClient

        SharedSystemClient.clear_system_cache()  # forget the client that failed on the old folder
        shutil.rmtree(self.dir / "chroma", ignore_errors=True)
        self.chroma_recreated = True
        return _chroma_client(self.cfg, self.dir / "chroma")

    def _existing_ids(self, ids: Sequence[str]) -> set[str]:
        out: set[str] = set()
        for batch in _batches(list(ids), 900):
            q = f"SELECT id FROM chunks WHERE id IN ({','.join('?' * len(batch))})"
            out.update(r[0] for r in self.db.execute(q, batch))
        return out

    # --- meta --------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def note_embed_backend(self, backend: str | None) -> None:
        """Record the backend that embeds vectors into this library ("onnx", "torch"; both: "onnx+torch")."""
        if not backend:
            return
        stored = self.meta(EMBED_BACKEND_KEY)
        have = set(stored.split("+")) if stored else set()
        if backend not in have:
            self.set_meta(EMBED_BACKEND_KEY, "+".join(sorted(have | {backend})))

    def check_embed_model(self, name: str) -> None:
        stored = self.meta("embed_model")
        if stored is None:
            self.set_meta("embed_model", name)
        elif stored != name:
            raise StoreError(
                f"this library was indexed with the embedding model '{stored}', but the config asks for "
                f"'{name}'; remove the data folder {self.dir} (or set ASSISTANT_DATA_DIR) and ingest again"
            )

    # --- writes ------------------------------------------------------------

    def transaction(self):
        return _Transaction(self.db)

    def embeddings_for(self, text_hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Vectors already stored for these chunk texts, so no text is embedded twice."""
        import numpy as np

        hashes = list(dict.fromkeys(text_hashes))
        by_id: dict[str, str] = {}
        for batch in _batches(hashes, 900):
            q = f"SELECT text_hash, MIN(id) FROM chunks WHERE text_hash IN ({','.join('?' * len(batch))}) GROUP BY text_hash"
            for h, cid in self.db.execute(q, batch):
                by_id[cid] = h
        out: dict[str, np.ndarray] = {}
        for batch in _batches(list(by_id), 2000):
            got = self.collection.get(ids=batch, include=["embeddings"])
            for cid, vec in zip(got["ids"], got["embeddings"]):
                out[by_id[cid]] = np.asarray(vec, dtype=np.float32)
        return out

    def replace_files(
        self,
        files: Sequence[FileRow],
        chunks: Sequence[ChunkRow],
        vectors: np.ndarray,
    ) -> tuple[int, int]:
        """Make ``files`` hold exactly ``chunks`` (old chunks of those paths go). Returns (added, removed)."""
        paths = [f.path for f in files]
        old_ids = self._chunk_ids_for(paths)
        new_ids = [c.id for c in chunks]
        stale = sorted(set(old_ids) - set(new_ids))
        with self.transaction():
            self.db.executemany("INSERT OR IGNORE INTO pending(id) VALUES (?)", [(i,) for i in new_ids + stale])
        self._add_vectors(chunks, vectors)
        self.keyword_index.discard_snapshots()  # and again after the commit (keyword_index.py)
        with self.transaction():
            self._delete_chunk_rows(paths)
            self._insert_chunks(chunks)
            self.db.execute(BUMP_GENERATION)
            self.db.executemany(
                "INSERT OR REPLACE INTO files(path, content_hash, size, mtime_ns, n_chunks, reader, title, ingested_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (f.path, f.content_hash, f.size, f.mtime_ns, f.n_chunks, f.reader, f.title, f.ingested_at)
                    for f in files
                ],
            )
            self.db.executemany("DELETE FROM failures WHERE path = ?", [(p,) for p in paths])
            self.db.executemany("DELETE FROM pending WHERE id = ?", [(i,) for i in new_ids])
            if old_ids:
                self.set_meta(_ERASE_PENDING, "1")
        self.keyword_index.discard_snapshots()
        self._delete_vectors(stale)
        return len(set(new_ids) - set(old_ids)), len(stale)

    def _add_vectors(self, chunks: Sequence[ChunkRow], vectors: np.ndarray) -> None:
        from llama_index.core.schema import TextNode

        nodes = [
            TextNode(
                id_=c.id,
                text=c.embed_text,
                embedding=vectors[i].tolist(),
                metadata={"path": c.path},  # the dense search's filter (see paths_matching)
            )
            for i, c in enumerate(chunks)
        ]
        for batch in _batches(nodes, 2000):
            try:
                self.vector_store.add(batch)
            except Exception as e:  # a full disk inside Chroma's compaction, a damaged index
                if is_bug(e):
                    raise
                raise StoreError(vector_fault(self.chroma_path, e)) from e

    def remove_files(self, paths: Sequence[str]) -> int:
        """Take files out of the library entirely. Returns the number of chunks removed."""
        ids = self._chunk_ids_for(paths)
        self.keyword_index.discard_snapshots()  # and again after the commit (keyword_index.py)
        with self.transaction():
            self.db.executemany("INSERT OR IGNORE INTO pending(id) VALUES (?)", [(i,) for i in ids])
            self._delete_chunk_rows(paths)
            self.db.execute(BUMP_GENERATION)
            self.db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in paths])
            self.db.executemany("DELETE FROM failures WHERE path = ?", [(p,) for p in paths])
            self.set_meta(_ERASE_PENDING, "1")
        self.keyword_index.discard_snapshots()
        self._delete_vectors(ids)
        return len(ids)

    def erase_deleted(self) -> None:
        """Make the text of deleted chunks unrecoverable from the data folder; cheap when nothing was deleted.

        Called after a remove and at the end of every ingest. SQLite runs with secure_delete
        (deleted rows are zeroed); the WAL, which still holds the pages as they were, is
        checkpointed and truncated. Chroma keeps each passage's text in its write-ahead log
        until the vector index is saved (after every write here, _HNSW_LOG), and its SQLite file
        keeps deleted rows in free pages and in the free space of live pages: it is vacuumed (a
        full VACUUM: an incremental one frees whole pages only and was seen to leave the text). Until all of that succeeded the meta
        flag stays set, so an interrupted erase is finished by the next write. And Chroma's
        HNSW files hold rows for capacity not yet used, written from uninitialised memory,
        which can hold fragments of any text the process read: they are zeroed every time.
        """
        if self.cfg.store.kind == "embedded" and self._collection is not None:
            _zero_unused_index_rows(self.dir / "chroma", self.collection_name, self._collection.count())
        if self.meta(_ERASE_PENDING) is None:
            return
        done = True
        if self.cfg.store.kind == "embedded":
            chroma_db = self.dir / "chroma" / "chroma.sqlite3"
            if chroma_db.exists():
                db = sqlite3.connect(chroma_db, timeout=30, isolation_level=None)
                try:
                    db.execute("VACUUM")
                    if db.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                        done = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
                except sqlite3.OperationalError:  # busy: another process reads it; the next write retries
                    done = False
                finally:
                    db.close()
        if self.meta("secure_delete") is None:  # a library written before secure_delete: once, all free pages
            self.db.execute("VACUUM")
            self.set_meta("secure_delete", "on")
        if done:
            self.db.execute("DELETE FROM meta WHERE key = ?", (_ERASE_PENDING,))
        busy = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:
            self.set_meta(_ERASE_PENDING, "1")

    def touch_file(self, path: str, size: int, mtime_ns: int) -> None:
        self.db.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE path = ?", (size, mtime_ns, path))

    def record_failure(self, failure: FailureRow) -> None:
        f = failure
        self.db.execute(
            "INSERT OR REPLACE INTO failures(path, reason, at, content_hash, size, mtime_ns) VALUES (?, ?, ?, ?, ?, ?)",
            (f.path, f.reason, time.time(), f.content_hash, f.size, f.mtime_ns),
        )

    def forget_failures(self, paths: Sequence[str]) -> None:
        with self.transaction():
            self.db.executemany("DELETE FROM failures WHERE path = ?", [(p,) for p in paths])

    def _delete_vectors(self, ids: Sequence[str]) -> None:
        for batch in _batches(list(ids), 5000):
            self.collection.delete(ids=batch)
        with self.transaction():
            self.db.executemany("DELETE FROM pending WHERE id = ?", [(i,) for i in ids])

    def _chunk_ids_for(self, paths: Sequence[str]) -> list[str]:
        out: list[str] = []
        for batch in _batches(list(paths), 900):
            q = f"SELECT id FROM chunks WHERE path IN ({','.join('?' * len(batch))})"
            out.extend(r[0] for r in self.db.execute(q, batch))
        return out

    def _delete_chunk_rows(self, paths: Sequence[str]) -> None:
        for batch in _batches(list(paths), 900):
            marks = ",".join("?" * len(batch))
            self.db.execute(
                f"DELETE FROM chunk_tokens WHERE rowid IN (SELECT rowid FROM chunks WHERE path IN ({marks}))", batch
            )
            self.db.execute(f"DELETE FROM chunks WHERE path IN ({marks})", batch)

    def _insert_chunks(self, chunks: Sequence[ChunkRow]) -> None:
        for c in chunks:
            cur = self.db.execute(
                "INSERT INTO chunks(id, path, ord, text, embed_text, text_hash, page, start_line, end_line, heading)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (c.id, c.path, c.ord, c.text, c.embed_text, c.text_hash, c.page, c.start_line, c.end_line, c.heading),
            )
            self.db.execute(
                "INSERT INTO chunk_tokens(rowid, tokens) VALUES (?, ?)", (cur.lastrowid, " ".join(analyze(c.embed_text)))
            )

    # --- reads -------------------------------------------------------------

    def file(self, path: str) -> FileRow | None:
        row = self.db.execute(
            "SELECT path, content_hash, size, mtime_ns, n_chunks, reader, title, ingested_at FROM files WHERE path = ?",
            (path,),
        ).fetchone()
        return FileRow(*row) if row else None

    def files_under(self, root: str) -> list[str]:
        """Indexed files that are ``root`` itself or lie below it."""
        prefix = root.rstrip(os.sep) + os.sep
        return [
            r[0]
            for r in self.db.execute(
                "SELECT path FROM files WHERE path = ? OR substr(path, 1, ?) = ? ORDER BY path",
                (root, len(prefix), prefix),
            )
        ]

    def counts(self) -> dict[str, int]:
        files = self.db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        chunks = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return {"files": files, "chunks": chunks}

    def failures(self) -> list[dict[str, str]]:
        return [{"path": p, "reason": r} for p, r in self.db.execute("SELECT path, reason FROM failures ORDER BY path")]

    def failure_rows(self) -> dict[str, FailureRow]:
        q = "SELECT path, reason, content_hash, size, mtime_ns FROM failures"
        return {r[0]: FailureRow(*r) for r in self.db.execute(q)}

    def file_rows(self) -> list[FileRow]:
        return [
            FileRow(*r)
            for r in self.db.execute(
                "SELECT path, content_hash, size, mtime_ns, n_chunks, reader, title, ingested_at FROM files ORDER BY path"
            )
        ]

    def paths_matching(self, path_glob: str | None = None, suffixes: Sequence[str] = ()) -> list[str]:
        """Indexed files whose path matches the glob (``fnmatch`` rules: ``*`` crosses ``/``) and
        ends in one of ``suffixes`` (without the dot, any case). The filter of ``--path``/``--type``."""
        sql, args = "SELECT path FROM files", []
        conds = []
        if path_glob:
            conds.append("path GLOB ?")
            args.append(path_glob.replace("[!", "[^"))  # fnmatch's negated set in SQLite's spelling
        if suffixes:
            conds.append("(" + " OR ".join("path LIKE ? ESCAPE '\\'" for _ in suffixes) + ")")
            args.extend("%." + _like_escape(t.lower()) for t in suffixes)
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        return [r[0] for r in self.db.execute(sql + " ORDER BY path", args)]

    def chunks_by_id(self, ids: Sequence[str]) -> dict[str, ChunkRow]:
        out: dict[str, ChunkRow] = {}
        for batch in _batches(list(ids), 900):
            q = (
                "SELECT id, path, ord, text, embed_text, text_hash, page, start_line, end_line, heading FROM chunks"
                f" WHERE id IN ({','.join('?' * len(batch))})"
            )
            for row in self.db.execute(q, batch):
                out[row[0]] = ChunkRow(*row)
        return out

    def chunks_of(self, path: str) -> list[ChunkRow]:
        return [
            ChunkRow(*row)
            for row in self.db.execute(
                "SELECT id, path, ord, text, embed_text, text_hash, page, start_line, end_line, heading FROM chunks"
                " WHERE path = ? ORDER BY ord",
                (path,),
            )
        ]

    def dense_search(self, vector: np.ndarray, k: int, paths: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity), best first: from the vectors of the keyword index's snapshot
        when it has them (exact, and Chroma is never opened), else ids and distances straight from Chroma."""
        exact = self.keyword_index.dense_search(vector, k, paths)
        if exact is not None:
            return exact
        where = None
        if paths is not None:
            if not paths:
                return []
            where = {"path": {"$in": list(paths)}}
        result = self.collection.query(query_embeddings=[vector], n_results=k, where=where, include=["distances"])
        return [(i, 1.0 - d) for i, d in zip(result["ids"][0], result["distances"][0])]  # cosine distance = 1 - cos

    def has_exact_vectors(self) -> bool:
        """Whether dense searches are answered from the snapshot's vectors (Chroma not needed to read)."""
        return self.keyword_index.refresh().vectors is not None

    def snapshot_vectors(self) -> bool:
        """Put the vectors into the keyword index's snapshot (see keyword_index.py) so the next
        process searches without Chroma. Run by the writer, under the write lock, after a change.
        Embedded store only: with a Chroma server every search goes to the server, as configured."""
        if self.cfg.store.kind != "embedded":
            return False
        return self.keyword_index.attach_vectors(self._vectors_of)

    def _vectors_of(self, ids: list[str]) -> np.ndarray | None:
        """The stored vectors of ``ids``, in that order; None if any is missing from Chroma."""
        import numpy as np

        out: np.ndarray | None = None
        for start in range(0, len(ids), 5000):
            batch = ids[start:start + 5000]
            got = self.collection.get(ids=batch, include=["embeddings"])
            if len(got["ids"]) != len(batch):
                return None  # missing vectors: `assistant repair` first; Chroma answers meanwhile
            row = {cid: i for i, cid in enumerate(got["ids"])}
            vecs = np.asarray(got["embeddings"], dtype=np.float32)
            if out is None:
                out = np.empty((len(ids), vecs.shape[1]), dtype=np.float32)
            out[start:start + len(batch)] = vecs[[row[c] for c in batch]]
        return out

    def keyword_search(self, query: str, k: int, paths: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """(chunk id, BM25 score), best first; only chunks that hold a query term."""
        return self.keyword_index.search(query, k, paths)

    def hits(self, scored: Sequence[tuple[str, float]]) -> list[Hit]:
        rows = self.chunks_by_id([cid for cid, _ in scored])
        out = []
        for cid, score in scored:
            r = rows.get(cid)
            if r is None:  # a vector whose chunk was never committed (interrupted write)
                continue
            out.append(Hit(cid, r.path, r.text, score, r.page, r.start_line, r.end_line, r.heading))
        return out

    def close(self) -> None:
        self.keyword_index.close()
        self.db.close()


def state_file(data_dir: Path, collection: str) -> Path:
    """The SQLite file of ``collection``: ``state.sqlite`` for "default", else ``state-NAME.sqlite``."""
    return data_dir / ("state.sqlite" if collection == "default" else f"state-{collection}.sqlite")


def _zero_unused_index_rows(chroma_dir: Path, collection: str, live: int) -> None:
    """Zero the rows past the last element in the collection's ``data_level0.bin`` and ``length.bin``.

    hnswlib allocates its arrays for ``max_elements`` without clearing them and saves them
    whole, so the unused rows hold whatever the heap held (seen: a passage's text in
    ``length.bin``). The header gives the element count (``cur_element_count``, deleted ones
    included); unless it is plausible (``live``, Chroma's count, cannot exceed it; a file is
    not longer than the capacity), the files are left alone.
    """
    import struct

    try:
        db = sqlite3.connect(chroma_dir / "chroma.sqlite3", timeout=30)
        try:
            row = db.execute(
                "SELECT s.id FROM segments s JOIN collections c ON s.collection = c.id"
                " WHERE c.name = ? AND s.scope = 'VECTOR'", (collection,)
            ).fetchone()
        finally:
            db.close()
        if row is None:
            return
        folder = chroma_dir / row[0]
        header = (folder / "header.bin").read_bytes()
        _version, _offset, capacity, count, row_size = struct.unpack_from("<i4Q", header, 0)
        data, lengths = folder / "data_level0.bin", folder / "length.bin"
        if not (0 < row_size and live <= count <= capacity):
            return
        for path, start in ((data, count * row_size), (lengths, count * 4)):
            end = path.stat().st_size
            if start < end <= max(capacity, count) * (row_size if path is data else 4):
                with open(path, "r+b") as f:
                    f.seek(start)
                    f.write(bytes(end - start))
    except (OSError, sqlite3.Error, struct.error):
        return


def _remove_orphan_segments(chroma_dir: Path) -> None:
    """Index folders in ``chroma_dir`` that no segment of chroma.sqlite3 names (Chroma leaves them after a drop)."""
    import shutil
    import uuid

    try:
        db = sqlite3.connect(chroma_dir / "chroma.sqlite3", timeout=30)
        try:
            live = {r[0] for r in db.execute("SELECT id FROM segments")}
        finally:
            db.close()
    except sqlite3.Error:
        return
    for sub in chroma_dir.iterdir():
        try:
            uuid.UUID(sub.name)
        except ValueError:
            continue
        if sub.is_dir() and sub.name not in live:
            shutil.rmtree(sub, ignore_errors=True)


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]

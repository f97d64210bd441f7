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
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .config import Config
from .keyword_index import BUMP_GENERATION, KeywordIndex, analyze
from .types import Hit

__all__ = ["Store", "ChunkRow", "StoreError", "analyze"]

# 2: tokens in chunk_tokens, searched in memory (1 kept them in an FTS5 table, chunks_fts)
SCHEMA_VERSION = 2


class StoreError(Exception):
    pass


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
class FileRow:
    path: str
    content_hash: str
    size: int
    mtime_ns: int
    n_chunks: int
    reader: str
    title: str | None
    ingested_at: float


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
CREATE TABLE IF NOT EXISTS failures (path TEXT PRIMARY KEY, reason TEXT NOT NULL, at REAL NOT NULL);
"""


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
        os.umask(os.umask(0o077) | 0o077)  # private text: owner-only files from here on
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        suffix = "" if self.collection_name == "default" else f"-{self.collection_name}"
        self.db_path = self.dir / f"state{suffix}.sqlite"
        self.db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self._migrate()
        self.keyword_index = KeywordIndex(self.db_path)
        self._vector_store = None
        self._collection = None

    def _migrate(self) -> None:
        if self.meta("schema_version") == str(SCHEMA_VERSION):
            return
        with self.transaction():  # another process may be opening the same library
            if self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'chunks_fts'").fetchone():
                # schema 1 kept the tokens in an FTS5 table; its index is no longer used
                self.db.execute("INSERT OR REPLACE INTO chunk_tokens(rowid, tokens) SELECT rowid, tokens FROM chunks_fts")
                self.db.execute("DROP TABLE chunks_fts")
                self.db.execute(BUMP_GENERATION)
            self.set_meta("schema_version", str(SCHEMA_VERSION))

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
                self._collection = client.get_or_create_collection(
                    self.collection_name, metadata={"hnsw:space": "cosine"}
                )
            except Exception as e:  # a server that is down, a token refused, a damaged folder
                raise StoreError(f"cannot open the vector store at {self.chroma_path}: {e}") from e
            self._recover()
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
        from llama_index.core.schema import TextNode

        paths = [f.path for f in files]
        old_ids = self._chunk_ids_for(paths)
        new_ids = [c.id for c in chunks]
        stale = sorted(set(old_ids) - set(new_ids))
        with self.transaction():
            self.db.executemany("INSERT OR IGNORE INTO pending(id) VALUES (?)", [(i,) for i in new_ids + stale])
        if chunks:
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
                self.vector_store.add(batch)
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
        self._delete_vectors(stale)
        return len(set(new_ids) - set(old_ids)), len(stale)

    def remove_files(self, paths: Sequence[str]) -> int:
        """Take files out of the library entirely. Returns the number of chunks removed."""
        ids = self._chunk_ids_for(paths)
        with self.transaction():
            self.db.executemany("INSERT OR IGNORE INTO pending(id) VALUES (?)", [(i,) for i in ids])
            self._delete_chunk_rows(paths)
            self.db.execute(BUMP_GENERATION)
            self.db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in paths])
            self.db.executemany("DELETE FROM failures WHERE path = ?", [(p,) for p in paths])
        self._delete_vectors(ids)
        return len(ids)

    def touch_file(self, path: str, size: int, mtime_ns: int) -> None:
        self.db.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE path = ?", (size, mtime_ns, path))

    def record_failure(self, path: str, reason: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO failures(path, reason, at) VALUES (?, ?, ?)", (path, reason, time.time())
        )

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
        """(chunk id, cosine similarity), best first: ids and distances only, straight from Chroma."""
        where = None
        if paths is not None:
            if not paths:
                return []
            where = {"path": {"$in": list(paths)}}
        result = self.collection.query(query_embeddings=[vector], n_results=k, where=where, include=["distances"])
        return [(i, 1.0 - d) for i, d in zip(result["ids"][0], result["distances"][0])]  # cosine distance = 1 - cos

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

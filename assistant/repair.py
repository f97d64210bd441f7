"""`assistant repair`: make the vector store agree with the state again, from the stored text.

SQLite (``state.sqlite``) is the source of truth and keeps every passage's text,
so what Chroma lost can be embedded again without reading a single document:

- vectors missing from Chroma (``chroma/`` deleted, a restore from an old backup)
  are embedded again and written; an ingest does the same on its own when the
  start-up check (``Store.check``) finds them missing;
- a damaged vector index (a truncated or overwritten HNSW file) is dropped and
  rebuilt the same way; a ``chroma/`` folder that cannot be opened at all (its
  ``chroma.sqlite3`` damaged) is deleted and started afresh: all of it derives
  from the state files (other collections are rebuilt at their next ingest);
- vectors Chroma holds for passages SQLite does not know are deleted;
- a damaged state file cannot be rebuilt from Chroma (it lacks the locations and
  the keyword tokens): it is set aside, the collection starts empty, and the
  report says to ingest the folders again.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .store import Store, StoreError

__all__ = ["RepairReport", "restore_vectors", "repair_store", "set_aside"]


@dataclass
class RepairReport:
    chunks: int = 0  # passages in the state file
    vectors_before: int | None = None  # vectors Chroma held (None: the index could not be read)
    index_rebuilt: bool = False  # the vector index was damaged, dropped and built again
    vectors_restored: int = 0
    texts_embedded: int = 0  # restored vectors that needed the model (the rest reused a stored vector)
    vectors_deleted: int = 0  # vectors of no known passage
    state_set_aside: str | None = None  # where a damaged state file was moved
    store_recreated: bool = False  # chroma/ could not be opened at all and was started afresh
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def restore_vectors(store: Store, embedder, batch_size: int, ids: list[str] | None = None) -> tuple[int, int]:
    """Embed and write the vectors Chroma lacks. Returns (restored, embedded): a passage whose
    text another passage shares reuses that one's vector."""
    ids = store.missing_vectors() if ids is None else ids
    restored = embedded = 0
    for start in range(0, len(ids), 512):
        rows = store.chunks_by_id(ids[start : start + 512])
        chunks = [rows[i] for i in ids[start : start + 512] if i in rows]
        known = store.embeddings_for(c.text_hash for c in chunks)
        todo = list(dict.fromkeys(c.text_hash for c in chunks if c.text_hash not in known))
        text_of = {c.text_hash: c.embed_text for c in chunks}
        if todo:
            known.update(zip(todo, embedder.embed([text_of[h] for h in todo], batch_size=batch_size)))
        if chunks:
            store.restore_vectors(chunks, np.stack([known[c.text_hash] for c in chunks]))
        restored += len(chunks)
        embedded += len(todo)
    return restored, embedded


def repair_store(store: Store, embedder, batch_size: int) -> RepairReport:
    """Rebuild what Chroma lacks or cannot read from ``store``'s SQLite text (see the module docstring)."""
    t0 = time.perf_counter()
    report = RepairReport(chunks=store.counts()["chunks"])
    try:
        store.collection  # opens and checks
        report.vectors_before = store.health.vectors if store.health else None
    except StoreError:
        store.reset_collection()
        report.index_rebuilt = True
        report.store_recreated = store.chroma_recreated
    report.vectors_restored, report.texts_embedded = restore_vectors(store, embedder, batch_size)
    report.vectors_deleted = _delete_strays(store)
    health = store.check()
    if not health.ok:
        raise StoreError(health.describe(store.chroma_path).replace("run `assistant repair`", "repair did not help"))
    report.seconds = round(time.perf_counter() - t0, 3)
    return report


def _delete_strays(store: Store) -> int:
    """Delete vectors whose chunk SQLite does not hold (never returned by a search, but they take room)."""
    col = store.collection
    if col.count() <= store.counts()["chunks"]:
        return 0
    ids = col.get(include=[])["ids"]
    stray = sorted(set(ids) - set(store.chunks_by_id(ids)))
    for start in range(0, len(stray), 5000):
        col.delete(ids=stray[start : start + 5000])
    return len(stray)


def set_aside(db_path: Path) -> Path:
    """Move a damaged state file (and its -wal/-shm) out of the way: ``state.sqlite.damaged-20260101-120000``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = db_path.with_name(f"{db_path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = db_path.with_name(db_path.name + suffix)
        if src.exists():
            src.rename(target.with_name(target.name + suffix))
    return target


def is_damaged_state(error: StoreError) -> bool:
    """A StoreError raised because the state file itself cannot be read as a database."""
    cause = error.__cause__
    return isinstance(cause, sqlite3.DatabaseError) and "damaged" in str(error)

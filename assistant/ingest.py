"""Ingest: sources -> readers -> chunks -> embeddings -> store, as a sync.

A file whose size and mtime match the recorded ones is not opened; one whose
content hash matches is not re-read; a changed file has its chunks replaced; a
file gone from its folder has its chunks removed; a chunk text embedded before
(a renamed or duplicated file, an unchanged part of an edited file) reuses its
stored vector. Writers hold an exclusive lock on the library.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .chunking import Chunker
from .config import Config
from .store import ChunkRow, FileRow, Store
from .types import Document

__all__ = ["IngestReport", "IngestEvent", "Ingestor", "LibraryLocked", "NothingToIngest", "write_lock", "Exclusions"]

_HASH_BLOCK = 1 << 20


class LibraryLocked(Exception):
    pass


class NothingToIngest(Exception):
    pass


@dataclass
class IngestEvent:
    """A progress event for the CLI bar and the TUI."""

    kind: str  # "scan" | "file" | "failed" | "removed" | "done"
    path: str = ""
    files_done: int = 0
    files_total: int = 0
    chunks: int = 0
    rate: float = 0.0  # chunks embedded per second so far
    eta_s: float | None = None
    reason: str = ""


@dataclass
class IngestReport:
    files_seen: int = 0
    files_ingested: int = 0
    files_unchanged: int = 0
    files_skipped: list[dict[str, str]] = field(default_factory=list)
    files_failed: list[dict[str, str]] = field(default_factory=list)
    files_removed: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    chunks_total: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class write_lock:
    """An exclusive, advisory lock on the library's data folder (released by the OS on crash)."""

    def __init__(self, data_dir: Path, wait: bool = False):
        self.path = data_dir / "write.lock"
        self.wait = wait
        self.fd: int | None = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
        except OSError as e:
            holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(self.fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise LibraryLocked(
                    f"the library in {self.path.parent} is being updated by {holder}; "
                    "wait for it to finish (or stop it) and try again"
                ) from None
            raise
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"pid {os.getpid()}".encode(), 0)
        return self

    def __exit__(self, *exc):
        os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


class Exclusions:
    """Hidden files and folders, .gitignore-style patterns, a size limit."""

    def __init__(self, cfg: Config):
        import pathspec

        self.include_hidden = cfg.ingest.include_hidden
        self.max_bytes = int(cfg.ingest.max_file_mb * 1024 * 1024)
        self.spec = pathspec.PathSpec.from_lines("gitignore", cfg.ingest.exclude)

    def excluded(self, path: Path, root: Path) -> bool:
        rel = path.relative_to(root) if path != root and path.is_relative_to(root) else Path(path.name)
        if not self.include_hidden and any(p.startswith(".") for p in rel.parts):
            return True
        return self.spec.match_file(rel.as_posix())


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


@dataclass
class _Pending:
    file: FileRow
    chunks: list[ChunkRow]
    file_type: str


class Ingestor:
    """One sync of some roots into a Store. Built by Library, which owns the parts."""

    def __init__(self, cfg: Config, store: Store, embedder, registry, *, on_event: Callable[[IngestEvent], None] | None = None):
        self.cfg = cfg
        self.store = store
        self.embedder = embedder
        self.registry = registry
        self.on_event = on_event or (lambda e: None)
        self.exclusions = Exclusions(cfg)
        self.chunker = Chunker(
            embedder.count_tokens,
            lambda s: embedder.tokenizer.encode(s, add_special_tokens=False),
            cfg.ingest.chunk_size,
            cfg.ingest.chunk_overlap,
        )
        self.group_chunks = max(cfg.ingest.batch_size * 8, 64)

    # --- scanning ------------------------------------------------------------

    def _candidates(self, root: Path) -> Iterator[Path]:
        if root.is_file():
            yield root
            return
        sources = self.registry.load_all("sources")
        seen: set[Path] = set()
        for source in sources.values():
            for p in source.files(root):
                p = Path(p)
                if p not in seen:
                    seen.add(p)
                    yield p

    def scan(self, roots: Iterable[Path]) -> list[tuple[Path, Path]]:
        """(file, root) pairs to consider, exclusions applied, sorted."""
        return sorted(
            (p, root) for root in roots for p in self._candidates(root) if not self.exclusions.excluded(p, root)
        )

    # --- the sync ------------------------------------------------------------

    def run(self, roots: list[Path], *, prune: bool = True) -> IngestReport:
        t0 = time.perf_counter()
        report = IngestReport()
        readers = self.registry.readers_by_suffix()
        self.store.collection  # settles any interrupted write before we start
        self.store.check_embed_model(self.embedder.name)
        candidates = self.scan(roots)
        if not candidates and not any(self.store.files_under(str(r)) for r in roots):
            raise NothingToIngest(f"no files to ingest in {', '.join(map(str, roots))}")
        report.files_seen = len(candidates)
        total = len(candidates)
        self.on_event(IngestEvent("scan", files_total=total))
        pending: list[_Pending] = []
        pending_chunks = 0
        seen_paths: set[str] = set()
        done = 0

        def flush():
            nonlocal pending, pending_chunks
            if not pending:
                return
            added, removed, embedded, reused = self._write(pending)
            report.chunks_added += added
            report.chunks_removed += removed
            report.chunks_embedded += embedded
            report.chunks_reused += reused
            report.files_ingested += len(pending)
            pending, pending_chunks = [], 0

        for path, root in candidates:
            key = str(path)
            seen_paths.add(key)
            outcome = self._prepare(path, readers)
            done += 1
            if isinstance(outcome, _Pending):
                pending.append(outcome)
                pending_chunks += len(outcome.chunks)
                if pending_chunks >= self.group_chunks:
                    flush()
            elif outcome == "unchanged":
                report.files_unchanged += 1
            elif outcome.startswith("skipped:"):
                report.files_skipped.append({"path": key, "reason": outcome[8:]})
            else:
                reason = outcome.removeprefix("failed:")
                report.files_failed.append({"path": key, "reason": reason})
                self.store.record_failure(key, reason)
                self.on_event(IngestEvent("failed", key, done, total, report.chunks_embedded, reason=reason))
                continue
            elapsed = time.perf_counter() - t0
            rate = (report.chunks_embedded + pending_chunks) / elapsed if elapsed > 0 else 0.0
            eta = elapsed / done * (total - done) if done else None
            self.on_event(IngestEvent("file", key, done, total, report.chunks_embedded, rate, eta))
        flush()

        if prune:
            gone = []
            for root in roots:
                for p in self.store.files_under(str(root)):
                    if p not in seen_paths:
                        gone.append(p)
            if gone:
                report.chunks_removed += self.store.remove_files(gone)
                report.files_removed = len(gone)
                for p in gone:
                    self.on_event(IngestEvent("removed", p))
        report.chunks_total = self.store.counts()["chunks"]
        report.seconds = round(time.perf_counter() - t0, 3)
        self.on_event(
            IngestEvent("done", files_done=done, files_total=total, chunks=report.chunks_embedded,
                        rate=report.chunks_embedded / report.seconds if report.seconds else 0.0, eta_s=0.0)
        )
        return report

    def _prepare(self, path: Path, readers) -> _Pending | str:
        key = str(path)
        try:
            st = path.stat()
        except FileNotFoundError:
            return "failed:disappeared before it could be read"
        except OSError as e:
            return f"failed:cannot stat: {e.strerror}"
        if st.st_size > self.exclusions.max_bytes:
            return f"skipped:larger than ingest.max_file_mb ({st.st_size / 1e6:.1f} MB)"
        known = self.store.file(key)
        if known and known.size == st.st_size and known.mtime_ns == st.st_mtime_ns:
            return "unchanged"
        suffix = path.suffix.lower()
        if suffix not in readers:
            return f"skipped:no reader for '{suffix or path.name}' files"
        reader_name, reader = readers[suffix]
        try:
            content_hash = file_hash(path)
        except FileNotFoundError:
            return "failed:disappeared before it could be read"
        except PermissionError:
            return "failed:permission denied"
        except OSError as e:
            return f"failed:cannot read: {e.strerror}"
        if known and known.content_hash == content_hash:
            self.store.touch_file(key, st.st_size, st.st_mtime_ns)
            return "unchanged"
        try:
            doc = reader.read(path)
            if not isinstance(doc, Document):
                raise TypeError(f"reader '{reader_name}' returned {type(doc).__name__}, not a Document")
        except FileNotFoundError:
            return "failed:disappeared before it could be read"
        except PermissionError:
            return "failed:permission denied"
        except Exception as e:  # a reader fails for one file, never for the folder
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            return f"failed:{msg}"
        chunks = self.chunker.chunks(key, content_hash, doc)
        if not chunks:
            return "failed:empty: no text found"
        row = FileRow(key, content_hash, st.st_size, st.st_mtime_ns, len(chunks), reader_name, doc.title, time.time())
        return _Pending(row, chunks, str(doc.metadata.get("file_type", suffix.lstrip("."))))

    def _write(self, pending: list[_Pending]) -> tuple[int, int, int, int]:
        chunks = [c for p in pending for c in p.chunks]
        known = self.store.embeddings_for(c.text_hash for c in chunks)
        todo = list(dict.fromkeys(c.text_hash for c in chunks if c.text_hash not in known))
        text_of = {c.text_hash: c.embed_text for c in chunks}
        if todo:
            vecs = self.embedder.embed([text_of[h] for h in todo], batch_size=self.cfg.ingest.batch_size)
            known.update(zip(todo, vecs))
        vectors = np.stack([known[c.text_hash] for c in chunks]) if chunks else np.zeros((0, 1), np.float32)
        types = {p.file.path: p.file_type for p in pending}
        added, removed = self.store.replace_files([p.file for p in pending], chunks, vectors, types)
        return added, removed, len(todo), len(chunks) - len(todo)

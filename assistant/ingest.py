"""Ingest: sources -> readers -> chunks -> embeddings -> store, as a sync.

A file whose size and mtime match the recorded ones is not opened; one whose
content hash matches is not re-read; a changed file has its chunks replaced; a
file gone from its folder has its chunks removed; a chunk text embedded before
(a renamed or duplicated file, an unchanged part of an edited file) reuses its
stored vector. Writers hold an exclusive lock on the library.

A background thread reads, parses and chunks the next files while the calling
thread embeds and writes the current group; the groups are embedded in batches
of texts sorted by length. All store writes stay on the calling thread, in file
order, so a crash at any point leaves what it left before this overlap.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Generic, Iterable, Iterator, TypeVar

import numpy as np

from .chunking import Chunker
from .config import Config
from .datadir import private_dir
from .pinned import OutsideFolder, Pinner
from .reader_process import ReaderProcess
from .removals import plan_removals
from .repair import restore_vectors
from .store import ChunkRow, FailureRow, FileRow, Store
from .types import Document, progress_to, skips_renamed, skips_to

__all__ = ["IngestReport", "IngestEvent", "Ingestor", "LibraryLocked", "NothingToIngest", "write_lock", "Exclusions"]


class LibraryLocked(Exception):
    pass


class NothingToIngest(Exception):
    pass


@dataclass
class IngestEvent:
    """A progress event for the CLI bar and the TUI.

    "file": a file was read and chunked (or found unchanged, or skipped);
    "embedded": another batch of the current group was embedded (``chunks`` grows,
    ``files_done`` does not); "reading": a reader's word on slow work in ``path``
    (``reason`` is e.g. "OCR page 3/12"; sent from the read-ahead thread, see
    ``note``). ``files_done`` and ``chunks`` never decrease.
    """

    kind: str  # "scan" | "file" | "embedded" | "reading" | "failed" | "removed" | "done"
    path: str = ""
    files_done: int = 0
    files_total: int = 0
    chunks: int = 0
    rate: float = 0.0  # chunks embedded per second so far
    eta_s: float | None = None
    reason: str = ""
    # files finished, the group being embedded counted by the share of it embedded: a progress bar
    # over ``files_total`` that reaches the end when the embedding does, not when the reading does
    files_finished: float = 0.0

    @property
    def note(self) -> str:
        """What a "reading" event says, with the file's name: "OCR page 3/12 of scan.pdf"."""
        return f"{self.reason} of {Path(self.path).name}" if self.kind == "reading" else ""


@dataclass
class IngestReport:
    files_seen: int = 0
    files_ingested: int = 0
    files_unchanged: int = 0
    files_skipped: list[dict[str, str]] = field(default_factory=list)
    files_failed: list[dict[str, str]] = field(default_factory=list)
    files_removed: int = 0
    removals_held: list[dict[str, str]] = field(default_factory=list)  # roots whose removals wait for --prune
    vectors_restored: int = 0  # vectors Chroma had lost, embedded again from the stored text
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
        private_dir(self.path.parent)
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


def path_key(path: Path) -> str:
    """The path as stored and reported: ``str(path)``, or for a name that is not valid UTF-8 (which
    SQLite, Chroma and JSON cannot hold) its bytes with the bad ones escaped (``caf\\xe9.txt``)."""
    key = str(path)
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    return key


@dataclass
class _Pending:
    file: FileRow
    chunks: list[ChunkRow]
    tokens: list[int] | None = None  # per chunk, from the chunker: the key that batches similar lengths together


class _EmbeddingFailed(Exception):
    """The embedder raised on a group's texts."""


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@dataclass
class _Failure:
    """A file that failed after it was hashed: remembered with its hash, not read again until it changes.

    ``known``: it failed before and is unchanged, so it was not read again this time."""

    row: FailureRow
    known: bool = False


@dataclass
class _Touch:
    """Same content under a new mtime: record the new size and mtime, nothing else."""

    size: int
    mtime_ns: int


_T = TypeVar("_T")
_R = TypeVar("_R")


class _ReadAhead(Generic[_T, _R]):
    """``fn(item)`` for each item, computed in a background thread ahead of the consumer, in order.

    Ingest prepares files (stat, hash, read, parse, chunk) here while the calling
    thread embeds the previous ones: torch releases the GIL while it computes, and
    file reads release it too. At most ``budget`` (as measured by ``size``) of
    results wait unconsumed, so memory stays flat. An exception raised by ``fn``
    reaches the consumer after the results before it, like a plain loop. ``fn``
    must not write to the store: every write stays on the calling thread, in the
    order of a plain loop, which is what keeps the crash guarantees unchanged.
    """

    def __init__(self, items: Iterable[_T], fn: Callable[[_T], _R], size: Callable[[_R], int], budget: int):
        self._items, self._fn, self._size, self._budget = items, fn, size, budget
        self._ready: deque[tuple[_T, _R, int]] = deque()
        self._queued = 0
        self._error: BaseException | None = None
        self._finished = self._closed = False
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._produce, name="ingest-read-ahead", daemon=True)

    def __enter__(self) -> "_ReadAhead[_T, _R]":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        if exc[0] is None:
            self._thread.join()
        # on an error or a cancel the thread is left to finish its current item and stop on its own

    def _produce(self) -> None:
        try:
            for item in self._items:
                with self._cv:
                    while self._queued >= self._budget and not self._closed:
                        self._cv.wait()
                    if self._closed:
                        return
                result = self._fn(item)
                n = self._size(result)
                with self._cv:
                    self._ready.append((item, result, n))
                    self._queued += n
                    self._cv.notify_all()
        except BaseException as e:  # handed to the consumer, raised there
            self._error = e
        finally:
            with self._cv:
                self._finished = True
                self._cv.notify_all()

    def __iter__(self) -> Iterator[tuple[_T, _R]]:
        while True:
            with self._cv:
                while not self._ready and not self._finished:
                    self._cv.wait()
                if not self._ready:
                    if self._error is not None:
                        raise self._error
                    return
                item, result, n = self._ready.popleft()
                self._queued -= n
                self._cv.notify_all()
            yield item, result


class _Inline(Generic[_T, _R]):
    """``fn(item)`` for each item, in the consumer's thread: _ReadAhead without the thread."""

    def __init__(self, items: Iterable[_T], fn: Callable[[_T], _R]):
        self._items, self._fn = items, fn

    def __enter__(self) -> "_Inline[_T, _R]":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def __iter__(self) -> Iterator[tuple[_T, _R]]:
        return ((item, self._fn(item)) for item in self._items)


class Ingestor:
    """One sync of some roots into a Store. Built by Library, which owns the parts."""

    # False: read each file only after the ones before it are written (bench/ingest.py --read-ahead off)
    read_ahead = True

    def __init__(self, cfg: Config, store: Store, embedder, registry, *, on_event: Callable[[IngestEvent], None] | None = None):
        self.cfg = cfg
        self._reading: ReaderProcess | None = None  # during run(), unless ingest.file_timeout_s = 0
        self.store = store
        self.embedder = embedder
        self.registry = registry
        self.on_event = on_event or (lambda e: None)
        self.exclusions = Exclusions(cfg)
        self.pinner = Pinner()
        self.chunker = Chunker(
            embedder.count_tokens,
            lambda s: embedder.tokenizer.encode(s, add_special_tokens=False),
            cfg.ingest.chunk_size,
            cfg.ingest.chunk_overlap,
        )
        # Chunks embedded and written together. Large, because the texts of a group are
        # sorted by length before they are cut into batches (less padding: 512 chunks
        # of the bench corpus pad 3% at batch 16, 128 chunks 10%); small enough that a
        # crash loses little and memory stays flat.
        self.group_chunks = max(cfg.ingest.batch_size * 32, 64)

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
        """(file, root) pairs to consider, exclusions applied, sorted, each file once (roots can nest)."""
        pairs = sorted(
            (p, root) for root in roots for p in self._candidates(root) if not self.exclusions.excluded(p, root)
        )
        return [pair for i, pair in enumerate(pairs) if i == 0 or pair[0] != pairs[i - 1][0]]

    # --- the sync ------------------------------------------------------------

    def run(
        self, roots: list[Path], *, prune: bool = True, confirm_prune: bool = False, retry_failed: bool = False
    ) -> IngestReport:
        """Sync ``roots``. ``prune``: remove what is gone from them (see removals.py); ``confirm_prune``:
        even past ``ingest.max_prune_share`` of a root's files (``assistant ingest --prune``). A file
        that failed before and has not changed since is not read again (it is listed as failed,
        ``known``) unless ``retry_failed``."""
        t0 = time.perf_counter()
        report = IngestReport()
        readers = self.registry.readers_by_suffix({"ocr_seconds_per_page": self.cfg.ingest.ocr_seconds_per_page})
        self.store.collection  # settles any interrupted write before we start, and checks Chroma against SQLite
        self.store.check_embed_model(self.embedder.name)
        if self.store.health is not None and not self.store.health.ok:  # vectors lost: embed them from the stored text
            report.vectors_restored = restore_vectors(self.store, self.embedder, self.cfg.ingest.batch_size)[0]
        left_out: list[dict[str, str]] = []  # what sources and readers left out, with why (report_skipped)

        def skipped(path: str, reason: str) -> None:  # called from the read-ahead thread too: list.append is atomic
            left_out.append({"path": path_key(Path(path)), "reason": reason})

        with skips_to(skipped):
            candidates = self.scan(roots)
        if not candidates and not any(self.store.files_under(str(r)) for r in roots):
            raise NothingToIngest(f"no files to ingest in {', '.join(map(str, roots))}")
        report.files_seen = len(candidates)
        total = len(candidates)
        self.on_event(IngestEvent("scan", files_total=total))
        # what the store knows, read once here: the read-ahead thread never touches the store
        known = {row.path: row for row in self.store.file_rows()}
        failures = self.store.failure_rows()
        remembered = {} if retry_failed else failures
        pending: list[_Pending] = []
        pending_chunks = 0
        seen_paths: set[str] = set()
        done = 0

        def progress(kind: str, path: str, embedded: int = 0, to_embed: int = 0) -> IngestEvent:
            elapsed = time.perf_counter() - t0
            chunks = report.chunks_embedded + embedded
            # for the ETA, a file waiting in the group being embedded is done in the share its group is
            finished = done - len(pending) + (len(pending) * embedded / to_embed if to_embed else 0)
            eta = elapsed / finished * (total - finished) if finished > 0 else None
            return IngestEvent(kind, path, done, total, chunks, chunks / elapsed if elapsed > 0 else 0.0, eta,
                               files_finished=finished)

        def fail(failure: _Failure) -> None:
            row = failure.row
            report.files_failed.append({"path": row.path, "reason": row.reason, **({"known": True} if failure.known else {})})
            if not failure.known:
                self.store.record_failure(row)
            self.on_event(IngestEvent("failed", row.path, done, total, report.chunks_embedded, reason=row.reason))

        def flush():
            nonlocal pending, pending_chunks
            if not pending:
                return
            (added, removed, embedded, reused), failed = self._write_each_alone_on_error(
                pending, on_batch=lambda n, of: self.on_event(progress("embedded", "", n, of))
            )
            report.chunks_added += added
            report.chunks_removed += removed
            report.chunks_embedded += embedded
            report.chunks_reused += reused
            report.files_ingested += len(pending) - len(failed)
            for failure in failed:
                fail(failure)
            pending, pending_chunks = [], 0

        def prepare(candidate: tuple[Path, Path]) -> _Pending | _Touch | str:
            path = candidate[0]
            stopped: list[BaseException] = []

            def note(message: str) -> None:  # report_progress() of a reader, in the read-ahead thread
                try:
                    self.on_event(IngestEvent("reading", str(path), done, total, report.chunks_embedded, reason=message))
                except BaseException as e:  # a cancel from the listener stops the ingest, not just this file
                    stopped.append(e)
                    raise

            with skips_to(skipped):
                outcome = self._prepare(path, readers, known.get(str(path)), note, candidate[1],
                                        remembered.get(str(path)))
            if stopped:
                raise stopped[0]
            return outcome

        def weight(outcome) -> int:  # chunks, plus one per file so unchanged files are bounded too
            return 1 + (len(outcome.chunks) if isinstance(outcome, _Pending) else 0)

        # the read-ahead may run one group (and a margin) ahead: it reads the next group while this one embeds
        if self.read_ahead:
            prepared_files = _ReadAhead(candidates, prepare, weight, self.group_chunks + 256)
        else:
            prepared_files = _Inline(candidates, prepare)
        with self._reader_process(), prepared_files as prepared, self.pinner:
            for (path, _root), outcome in prepared:
                key = path_key(path)
                seen_paths.add(key)
                done += 1
                if isinstance(outcome, _Pending):
                    pending.append(outcome)
                    pending_chunks += len(outcome.chunks)
                elif isinstance(outcome, _Touch):
                    self.store.touch_file(key, outcome.size, outcome.mtime_ns)
                    report.files_unchanged += 1
                elif outcome == "unchanged":
                    report.files_unchanged += 1
                elif isinstance(outcome, _Failure):
                    fail(outcome)
                elif outcome.startswith("skipped:"):
                    report.files_skipped.append({"path": key, "reason": outcome[8:]})
                else:
                    fail(_Failure(FailureRow(key, outcome.removeprefix("failed:"))))
                if not isinstance(outcome, _Failure) and not (isinstance(outcome, str) and outcome.startswith("failed:")):
                    self.on_event(progress("file", key))
                if pending_chunks >= self.group_chunks:
                    flush()
            flush()

        if prune:
            self._remove_gone(roots, seen_paths, report, confirm_prune)
            self._forget_failures_of_gone_files(failures, roots, seen_paths)
        self.store.erase_deleted()  # removed or replaced text leaves no trace in the data folder
        failed = {f["path"] for f in report.files_failed}  # an unreadable folder holding indexed files: a failure
        left_out = [f for f in left_out if f["path"] not in failed
                    and not any(self.exclusions.excluded(Path(f["path"]), r) for r in roots)]
        report.files_skipped = sorted(report.files_skipped + left_out, key=lambda f: (f["path"], f["reason"]))
        report.chunks_total = self.store.counts()["chunks"]
        report.seconds = round(time.perf_counter() - t0, 3)
        self.on_event(
            IngestEvent("done", files_done=done, files_total=total, chunks=report.chunks_embedded, files_finished=done,
                        rate=report.chunks_embedded / report.seconds if report.seconds else 0.0, eta_s=0.0)
        )
        return report

    def _remove_gone(self, roots: list[Path], seen: set[str], report: IngestReport, confirmed: bool) -> None:
        """Remove the indexed files gone from ``roots``; never those under an unreadable folder (see removals.py)."""
        plan = plan_removals(roots, self.store.files_under, seen, max_share=self.cfg.ingest.max_prune_share,
                             confirmed=confirmed)
        for failure in plan.unreadable:
            report.files_failed.append(failure)
            self.on_event(IngestEvent("failed", failure["path"], reason=failure["reason"]))
        report.removals_held = plan.held
        if plan.gone:
            report.chunks_removed += self.store.remove_files(plan.gone)
            report.files_removed = len(plan.gone)
            for p in plan.gone:
                self.on_event(IngestEvent("removed", p))

    def _prepare(
        self, path: Path, readers, known: FileRow | None, note: Callable[[str], None] | None = None,
        root: Path | None = None, failed: FailureRow | None = None,
    ) -> _Pending | _Touch | _Failure | str:
        """Everything up to the embedding, for one file; no store access (it runs in the read-ahead thread).

        ``note`` receives the reader's ``report_progress`` messages. The file is read only if,
        when opened, it is a regular file inside ``root`` (see pinned.py). ``failed`` is how the
        file was when it last failed (it is not read again while it is the same). Any exception
        from reading or chunking is this file's failure.
        """
        key = str(path)
        if path_key(path) != key:
            return "skipped:the file name is not valid UTF-8; rename the file to index it"
        try:
            st = path.stat()
        except FileNotFoundError:
            return "failed:disappeared before it could be read"
        except OSError as e:
            return f"failed:cannot stat: {e.strerror}"
        if st.st_size > self.exclusions.max_bytes:
            return f"skipped:larger than ingest.max_file_mb ({st.st_size / 1e6:.1f} MB)"
        if failed and (failed.size, failed.mtime_ns) == (st.st_size, st.st_mtime_ns):
            return _Failure(failed, known=True)
        if known and known.size == st.st_size and known.mtime_ns == st.st_mtime_ns:
            return "unchanged"
        suffix = path.suffix.lower()
        if suffix not in readers:
            return f"skipped:no reader for '{suffix or path.name}' files"
        reader_name, reader = readers[suffix]
        try:  # opened once and checked: the reader reads this very file, whatever the path leads to later
            pinned = self.pinner.open(path, root or path)
        except OutsideFolder as e:
            return f"failed:{e}"
        except FileNotFoundError:
            return "failed:disappeared before it could be read"
        except PermissionError:
            return "failed:permission denied"
        except OSError as e:
            return f"failed:cannot read: {e.strerror}"
        try:
            try:
                content_hash = pinned.sha256()
            except OSError as e:
                return f"failed:cannot read: {e.strerror}"
            if failed and failed.content_hash == content_hash:
                return _Failure(FailureRow(key, failed.reason, content_hash, st.st_size, st.st_mtime_ns), known=True)
            if known and known.content_hash == content_hash:
                return _Touch(st.st_size, st.st_mtime_ns)

            def failure(reason: str) -> _Failure:
                return _Failure(FailureRow(key, reason, content_hash, st.st_size, st.st_mtime_ns))

            try:
                with progress_to(note or (lambda message: None)), skips_renamed(pinned.path, path):
                    if self._reading is not None:  # in a child process, stopped past ingest.file_timeout_s
                        doc = self._reading.read(reader, pinned.path)
                    else:
                        doc = reader.read(pinned.path)
                pinned.check_unchanged()
                if not isinstance(doc, Document):
                    raise TypeError(f"reader '{reader_name}' returned {type(doc).__name__}, not a Document")
            except OutsideFolder as e:
                return f"failed:{e}"
            except FileNotFoundError:
                return "failed:disappeared before it could be read"
            except PermissionError:
                return failure("permission denied")
            except Exception as e:  # a reader fails for one file, never for the folder
                return failure(_first_line(e))
        finally:
            pinned.close()
        try:
            sized = self.chunker.sized_chunks(key, content_hash, doc)
        except Exception as e:  # a bug or a limit hit in the chunker: this file's failure, not the ingest's
            return failure(f"cannot split into passages: {_first_line(e)}")
        if not sized:
            return failure("empty: no text found")
        chunks = [c for c, _ in sized]
        row = FileRow(key, content_hash, st.st_size, st.st_mtime_ns, len(chunks), reader_name, doc.title, time.time())
        return _Pending(row, chunks, [n for _, n in sized])

    @contextlib.contextmanager
    def _reader_process(self) -> Iterator[None]:
        """Readers run in a child process while the ingest runs, so a file can be stopped (reader_process.py)."""
        timeout = self.cfg.ingest.file_timeout_s
        self._reading = ReaderProcess(timeout) if timeout > 0 else None
        try:
            yield
        finally:
            if self._reading is not None:
                self._reading.close()

    def _forget_failures_of_gone_files(self, failures: dict[str, FailureRow], roots: list[Path], seen: set[str]) -> None:
        """A failed file that is no longer there (or no longer ingested) is no longer a failure."""
        def under(path: str) -> bool:
            return any(path == str(r) or path.startswith(str(r).rstrip(os.sep) + os.sep) for r in roots)

        gone = [p for p in failures if p not in seen and under(p)]
        if gone:
            self.store.forget_failures(gone)

    def _write_each_alone_on_error(
        self, pending: list[_Pending], on_batch: Callable[[int, int], None] | None = None
    ) -> tuple[tuple[int, int, int, int], list[_Failure]]:
        """``_write`` of a group; when embedding it fails, each file of the group is written alone,
        and the files whose text cannot be embedded are returned as failures (the rest are written)."""
        try:
            return self._write(pending, on_batch), []
        except _EmbeddingFailed as e:
            if len(pending) == 1:
                f = pending[0].file
                return (0, 0, 0, 0), [_Failure(FailureRow(f.path, str(e), f.content_hash, f.size, f.mtime_ns))]
        totals, failed = [0, 0, 0, 0], []
        for p in pending:
            try:
                counts = self._write([p])
            except _EmbeddingFailed as e:
                f = p.file
                failed.append(_Failure(FailureRow(f.path, str(e), f.content_hash, f.size, f.mtime_ns)))
                continue
            totals = [a + b for a, b in zip(totals, counts)]
        return (totals[0], totals[1], totals[2], totals[3]), failed

    def _write(
        self, pending: list[_Pending], on_batch: Callable[[int, int], None] | None = None
    ) -> tuple[int, int, int, int]:
        """Embed what is new in ``pending`` and replace those files' chunks in the store.

        The new texts are sorted by length, longest first, and embedded one batch
        per call (``on_batch(done, of)`` after each: progress, and a chance to
        cancel). The length is the token count when the chunker gave it, else the
        character count, as SentenceTransformer.encode sorts: on the bench corpus
        batches of 16 then carry 6% padding tokens by characters, ~1% by tokens.
        """
        chunks = [c for p in pending for c in p.chunks]
        known = self.store.embeddings_for(c.text_hash for c in chunks)
        todo = list(dict.fromkeys(c.text_hash for c in chunks if c.text_hash not in known))
        text_of = {c.text_hash: c.embed_text for c in chunks}
        if all(p.tokens is not None for p in pending):
            length = {c.text_hash: n for p in pending for c, n in zip(p.chunks, p.tokens)}
        else:
            length = {h: len(t) for h, t in text_of.items()}
        batch = self.cfg.ingest.batch_size
        todo.sort(key=lambda h: -length[h])
        if todo:
            self.store.note_embed_backend(getattr(self.embedder, "backend", None))
        for i in range(0, len(todo), batch):
            hashes = todo[i : i + batch]
            try:
                got = self.embedder.embed([text_of[h] for h in hashes], batch_size=batch)
            except Exception as e:  # this group's text, not the store: isolated file by file by the caller
                raise _EmbeddingFailed(f"cannot embed: {_first_line(e)}") from e
            known.update(zip(hashes, got))
            if on_batch:
                on_batch(i + len(hashes), len(todo))
        vectors = np.stack([known[c.text_hash] for c in chunks]) if chunks else np.zeros((0, 1), np.float32)
        added, removed = self.store.replace_files([p.file for p in pending], chunks, vectors)
        return added, removed, len(todo), len(chunks) - len(todo)

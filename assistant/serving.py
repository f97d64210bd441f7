"""What the HTTP API (server.py) and the MCP server (mcp_server.py) share, with no web framework in it.

- ``Generations``: the model answers one question at a time, on its own thread; at most
  ``max_queue`` more wait, past that ``Busy``. A caller that goes away sets the job's
  ``cancel`` event: the answer stream is closed at the next piece, which stops the model.
- ``Jobs``: ingests of the configured folders, run in the background, polled by id.
- ``history_from_turns``: earlier (question, answer) turns as the ``Answer`` history that
  ``Library.ask_stream`` takes, each turn's standalone query rebuilt as the TUI made it.
- ``indexed_lines``: a passage of a file read back from the text in the index, never from disk.
- The JSON shapes shared with the CLI: ``hits_json``, ``status_json``, ``answer_json``.
"""

from __future__ import annotations

import concurrent.futures
import fnmatch
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from .conversation import standalone_query
from .types import Answer, Hit, Source

__all__ = [
    "Busy",
    "Cancelled",
    "Generations",
    "Jobs",
    "NotIndexed",
    "answer_json",
    "ask",
    "files_json",
    "hits_json",
    "history_from_turns",
    "indexed_lines",
    "status_json",
]


class Busy(Exception):
    """The queue for the model is full; ``retry_after`` is a guess in whole seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"the model is busy: {retry_after} s until a place is likely free")
        self.retry_after = retry_after


class Cancelled(Exception):
    """The caller went away before the answer was done."""


class NotIndexed(Exception):
    """A path (or a line range) that is not in the index."""


# --- JSON shapes (the CLI prints the same) ------------------------------------


def hits_json(hits: list[Hit], explain: bool = False) -> list[dict[str, Any]]:
    """What ``assistant search --json [--explain]`` prints."""
    return [Source(i, h).as_dict(explain) for i, h in enumerate(hits, 1)]


def status_json(lib) -> dict[str, Any]:
    """What ``assistant status --json`` prints."""
    return {**lib.status().as_dict(), "collections": [
        {"name": c.name, "files": c.files, "chunks": c.chunks, "active": c.name == lib.collection}
        for c in lib.collections()
    ]}


def answer_json(answer: Answer) -> dict[str, Any]:
    """How an answer was made and its passages: the ``sources`` field of the HTTP API, the MCP ``ask`` result."""
    return {
        "how": answer.how,
        "grounded": answer.grounded,
        "query": answer.query or answer.question,
        "flags": answer.flags,
        "model": answer.model,
        "timings": {k: round(v, 4) for k, v in answer.timings.items()},
        "passages": [s.as_dict() for s in answer.sources],
    }


def files_json(lib, path_glob: str | None = None) -> list[dict[str, Any]]:
    return [
        {"path": f.path, "title": f.title, "chunks": f.n_chunks, "reader": f.reader, "size": f.size}
        for f in lib.store.file_rows()
        if not path_glob or fnmatch.fnmatch(f.path, path_glob)
    ]


# --- questions ------------------------------------------------------------------


def history_from_turns(turns: list[tuple[str, str]]) -> list[Answer]:
    """Earlier (question, answer text) turns as minimal Answers, like ``Conversations.history``.

    A client sends only the words, so each turn's standalone query is rebuilt the way the
    TUI made it when that turn was asked: from the turns before it.
    """
    history: list[Answer] = []
    for question, text in turns:
        query = standalone_query(question, history)
        history.append(Answer(question, text, [], {}, "", "", query=query if query != question else None))
    return history


def ask(lib, question: str, history: list[Answer] | None, cancel: threading.Event, **kw) -> Answer:
    """``Library.ask_stream`` to its final Answer; the provisional pieces are dropped.
    ``cancel`` set: the stream is closed (which stops the model) and ``Cancelled`` raised."""
    stream = lib.ask_stream(question, history=history, **kw)
    try:
        for item in stream:
            if cancel.is_set():
                raise Cancelled()
            if isinstance(item, Answer):
                return item
    finally:
        stream.close()
    raise RuntimeError("ask_stream ended without an answer")


class Generations:
    """One answer at a time on one thread; ``max_queue`` more may wait, past that ``Busy``."""

    def __init__(self, max_queue: int):
        self.max_queue = max_queue
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="generation")
        self._lock = threading.Lock()
        self._pending = 0  # running + waiting
        self._seconds = 5.0  # a running mean of how long one answer takes, for Retry-After

    @property
    def pending(self) -> int:
        return self._pending

    def submit(self, fn: Callable[..., Any], *args, **kw) -> concurrent.futures.Future:
        with self._lock:
            if self._pending > self.max_queue:
                raise Busy(max(1, round(self._seconds * self._pending)))
            self._pending += 1
        fut = self._pool.submit(self._timed, fn, *args, **kw)
        fut.add_done_callback(self._done)
        return fut

    def _timed(self, fn, *args, **kw):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kw)
        finally:
            self._seconds = 0.8 * self._seconds + 0.2 * (time.perf_counter() - t0)

    def _done(self, _fut) -> None:
        with self._lock:
            self._pending -= 1

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


# --- ingest jobs ------------------------------------------------------------------


@dataclass
class Job:
    id: str
    collection: str
    status: str = "queued"  # queued | running | done | failed
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Jobs:
    """Ingests of the configured folders, one at a time, in the background; the last ``keep`` are remembered."""

    def __init__(self, keep: int = 32):
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ingest")
        self._lock = threading.Lock()

    def start(self, lib, user_errors: tuple[type[Exception], ...]) -> Job:
        job = Job(uuid.uuid4().hex[:16], lib.collection)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self.keep:
                self._jobs.popitem(last=False)
        self._pool.submit(self._run, job, lib, user_errors)
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    @staticmethod
    def _run(job: Job, lib, user_errors) -> None:
        job.status = "running"

        def on_event(ev) -> None:
            job.progress = {"files_done": ev.files_done, "files_total": ev.files_total, "chunks": ev.chunks}

        try:
            job.result = lib.ingest(None, on_event=on_event).as_dict()  # None: the configured folders only
            job.status = "done"
        except user_errors as e:
            job.error, job.status = str(e), "failed"
        except Exception as e:  # reported by type only: a message may quote a document
            job.error, job.status = f"ingest failed ({type(e).__name__})", "failed"
        finally:
            job.finished = time.time()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


# --- passages from the index ------------------------------------------------------


def indexed_lines(lib, path: str, start_line: int, end_line: int, page: int | None = None) -> dict[str, Any]:
    """Lines ``start_line``..``end_line`` of an indexed file, rebuilt from its chunks in the store.

    Only the text that ingest stored is read (a path that is not indexed is refused, whatever
    is on disk), so a client cannot read other files through this. Lines are numbered as in
    the search results: in the file, or in the page for paged formats (``page``; default the first).
    """
    if start_line < 1 or end_line < start_line:
        raise NotIndexed(f"lines {start_line}-{end_line}: give 1 <= start_line <= end_line")
    chunks = lib.store.chunks_of(path)
    if not chunks:
        raise NotIndexed(f"{path} is not in the index (list_files shows what is)")
    pages = sorted({c.page for c in chunks}, key=lambda p: (p is None, p or 0))
    page = page if page is not None else pages[0]
    lines: dict[int, str] = {}
    for c in chunks:
        if c.page != page:
            continue
        for i, line in enumerate(c.text.split("\n")):
            n = c.start_line + i
            if len(line) > len(lines.get(n, "")):  # a chunk may start mid-line: keep the fullest copy
                lines[n] = line
    if not lines:
        raise NotIndexed(f"{path}: no page {page} in the index (pages: {', '.join(map(str, pages))})")
    wanted = [n for n in range(start_line, end_line + 1) if n in lines]
    if not wanted:
        raise NotIndexed(f"{path}: no indexed text in lines {start_line}-{end_line} (indexed: {min(lines)}-{max(lines)})")
    return {"path": path, "page": page, "start_line": wanted[0], "end_line": wanted[-1],
            "text": "\n".join(lines.get(n, "") for n in range(wanted[0], wanted[-1] + 1))}

"""Readers run in a child process, so a file that hangs or crashes its parser can be stopped.

A thread cannot be stopped in Python, and a parser stuck in C (lxml on HTML
nested a million deep, a zip bomb's inflate) never reaches a check the reader
could make for a deadline. So the ingest hands each ``reader.read(path)`` to a
long-lived child process (a new interpreter, ``python -m assistant.reader_process``:
the parent runs torch's threads, and a forked copy of a threaded process can
deadlock) and waits at most
``[ingest] file_timeout_s`` for it; past that the child is killed, the file is
reported as failed, and the next file gets a fresh child. A reader's
``report_progress`` messages (OCR: one per page) come back over the pipe and
each starts the clock again, so a long scan that keeps moving is not cut. A
child that dies (a segfault in a C parser, the kernel's OOM killer) fails its
file, not the ingest.

The cost is one interpreter start per ingest (paid only when a file is read) and
pickling each Document back: ``bench/ingest.py --reader-process on,off`` prints
both in the same run (docs/benchmarks.md). The child is killed when the ingest
ends, and stops by itself if the ingest's process dies. A reader object that
cannot be pickled (a class defined inside a function) is read in the ingest's
own process, without the time limit; ``file_timeout_s = 0`` does that for all.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .types import Document, ReaderError, progress_to, report_progress, report_skipped, skips_to

__all__ = ["ReaderProcess", "ReaderTimeout", "ReaderCrashed"]


_START_S = 120.0  # for the child to start and import a reader, on a loaded machine


class ReaderTimeout(ReaderError):
    """The reader worked on one file for longer than the limit, and was stopped."""


class ReaderCrashed(ReaderError):
    """The process reading a file died (a crash in a parser, killed for memory)."""


class _Failed(Exception):
    """An exception raised by a reader in the child, rebuilt from its type name and message."""


_KINDS: dict[str, type[BaseException]] = {
    "ReaderError": ReaderError,
    "FileNotFoundError": FileNotFoundError,
    "PermissionError": PermissionError,
}


def _child(inbox: Connection, conn: Connection) -> None:
    """The child's loop: ("read", key, pickled reader or None, path) -> ("progress", text) and
    ("skipped", path, reason) messages, then ("done", doc) or ("error", kind, message)."""
    readers: dict[str, Any] = {}
    while True:
        try:
            message = inbox.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if message is None:
            return
        _, key, blob, path = message
        try:
            if blob is not None:
                readers[key] = pickle.loads(blob)  # imports the reader's module: not the file's time
            conn.send(("reading",))
            with progress_to(lambda text: conn.send(("progress", text))), \
                    skips_to(lambda part, reason: conn.send(("skipped", part, reason))):
                doc = readers[key].read(Path(path))
            reply = ("done", doc)
        except BaseException as e:  # noqa: BLE001 - everything a reader raises is that file's failure
            kind = next((name for name, cls in _KINDS.items() if isinstance(e, cls)), type(e).__name__)
            reply = ("error", kind, str(e))
        try:
            conn.send(reply)
        except Exception as e:  # a Document that does not pickle
            conn.send(("error", "ReaderError", f"the reader returned something that cannot be passed on: {e}"))


class ReaderProcess:
    """``reader.read(path)`` in a child process, with a time limit; ``close()`` when done.

    The reader's ``report_progress`` and ``report_skipped`` calls are made again in
    the calling thread. Used from one thread at a time (the ingest's read-ahead thread).
    """

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self._proc: subprocess.Popen | None = None
        self._send: Connection | None = None  # to the child
        self._conn: Connection | None = None  # from the child
        self._stderr: Any = None
        self._sent: dict[int, str] = {}  # id(reader) -> key of the copy the child holds
        self._unpicklable: set[int] = set()
        self.started = 0  # child processes started (one, plus one after each stopped file)

    def read(self, reader, path: Path) -> Document:
        if id(reader) in self._unpicklable:
            return reader.read(path)
        blob = None
        if id(reader) not in self._sent or self._proc is None:
            try:
                blob = pickle.dumps(reader)
            except Exception:
                self._unpicklable.add(id(reader))
                return reader.read(path)
        self._start()
        key = self._sent.get(id(reader)) or f"r{len(self._sent)}"
        try:
            self._send.send(("read", key, blob, str(path)))
        except OSError:  # the child died between two files
            self._stop()
            self._start()
            if blob is None:
                blob = pickle.dumps(reader)
            self._send.send(("read", key, blob, str(path)))
        self._sent[id(reader)] = key
        # until the child says it is reading, it may be starting (imports): that is not the file's time
        deadline = time.monotonic() + self.timeout_s + _START_S
        while True:
            left = deadline - time.monotonic()
            try:
                ready = left > 0 and self._conn.poll(left)
            except (EOFError, OSError):
                ready = True  # recv() below reports it
            if not ready:
                self._stop()
                raise ReaderTimeout(f"stopped after {self.timeout_s:g} s (ingest.file_timeout_s): the file takes too long to read")
            try:
                reply = self._conn.recv()
            except (EOFError, OSError):
                code = self._stop()
                how = f"killed by signal {-code}" if code and code < 0 else f"exit code {code}"
                said = self._last_words()
                raise ReaderCrashed(f"the reader crashed on this file ({how}{': ' + said if said else ''})") from None
            if reply[0] == "reading":
                deadline = time.monotonic() + self.timeout_s
                continue
            if reply[0] == "skipped":
                report_skipped(reply[1], reply[2])
                continue
            if reply[0] == "progress":
                deadline = time.monotonic() + self.timeout_s
                try:
                    report_progress(reply[1])
                except BaseException:  # a cancel: stop the read where it is
                    self._stop()
                    raise
                continue
            if reply[0] == "done":
                return reply[1]
            _, kind, text = reply
            cls = _KINDS.get(kind)
            raise cls(text) if cls is not None else _Failed(text or kind)

    def _start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        # a plain subprocess with two pipes of its own (not multiprocessing's spawn, whose fd passing and
        # resource tracker broke under Textual's test driver): stdout stays free for a reader that prints
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self._stderr = tempfile.TemporaryFile()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # readers pickled by module name
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "assistant.reader_process", str(to_child_r), str(from_child_w)],
                pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=self._stderr, env=env, start_new_session=True,  # Ctrl-C is the parent's to handle
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._send = Connection(to_child_w, readable=False)
        self._conn = Connection(from_child_r, writable=False)
        self._sent.clear()
        self.started += 1

    def _stop(self) -> int | None:
        """Kill the child; the next read starts another. Returns its exit code."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        for conn in (self._send, self._conn):
            conn.close()
        self._sent.clear()
        return proc.returncode

    def _last_words(self) -> str:
        """The last line the child wrote to stderr (a traceback's last line), if any."""
        try:
            self._stderr.seek(0)
            lines = [line for line in self._stderr.read()[-4096:].decode("utf-8", "replace").splitlines() if line.strip()]
        except (OSError, ValueError):
            return ""
        return lines[-1].strip() if lines else ""

    def close(self) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            self._send.send(None)
            proc.wait(2)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self._stop()
        self._stderr.close()


def _main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops this process
    parent = os.getppid()

    def orphaned() -> None:  # the parent was killed while this one was busy on a file: stop too
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=orphaned, daemon=True).start()
    _child(Connection(int(argv[0]), writable=False), Connection(int(argv[1]), readable=False))


if __name__ == "__main__":
    _main(sys.argv[1:])

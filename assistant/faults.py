"""Faults of the machine or the data folder, told in one line: what broke, which file, what to do.

A full disk, a damaged ``state.sqlite`` and a damaged vector index surface deep
inside SQLite or Chroma as exceptions whose text means little to a user. The
store turns them into a ``StoreError`` with one of these messages; ``explain``
does the same for whatever reaches the CLI unwrapped. The three remedies, in
order: free space and re-run (nothing indexed is lost: writes are all-or-nothing
per group), ``assistant repair``, and as a last resort deleting the data folder.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

__all__ = ["disk_full", "state_fault", "vector_fault", "explain"]

_FULL = ("no space left on device", "os error 28", "database or disk is full", "disk quota exceeded")
_DAMAGED = ("file is not a database", "malformed", "corrupt", "not a database", "disk i/o error")


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:160] + ("…" if len(text) > 160 else "") or type(exc).__name__


def disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return any(s in text for s in _FULL) or (exc.__cause__ is not None and disk_full(exc.__cause__))


def _full(where: Path | str) -> str:
    return (f"no space left on the disk that holds {where}: free some space and run the command again "
            "(what was indexed before is kept)")


def state_fault(db_path: Path, exc: BaseException) -> str:
    """The message for an SQLite error on the library's state file ``db_path``."""
    if disk_full(exc):
        return _full(db_path)
    text = str(exc).lower()
    if any(s in text for s in _DAMAGED):
        return (f"the library's state file {db_path} is damaged ({_reason(exc)}): run `assistant repair` to set it "
                f"aside and start this collection afresh, then ingest your folders again; as a last resort delete "
                f"the data folder {db_path.parent}")
    if "locked" in text or "busy" in text:
        return f"{db_path} is in use by another process ({_reason(exc)}): wait for it and try again"
    return f"cannot use the library's state file {db_path}: {_reason(exc)}"


def is_bug(exc: BaseException) -> bool:
    """An error of the code, not of the data: never reported as a damaged file (its traceback is kept)."""
    return isinstance(exc, (NameError, ImportError, SyntaxError, AssertionError))


def vector_fault(chroma_path: str, exc: BaseException) -> str:
    """The message for an error inside Chroma at ``chroma_path`` (a folder, or a server's URL)."""
    if disk_full(exc):
        return _full(chroma_path)
    if chroma_path.startswith("http"):
        return f"cannot use the vector store at {chroma_path}: {_reason(exc)}"
    return (f"the vector index in {chroma_path} is damaged ({_reason(exc)}): run `assistant repair` to rebuild it "
            f"from the stored text; as a last resort delete the data folder {Path(chroma_path).parent} "
            "and ingest again")


def explain(exc: BaseException, data_dir: Path, state_path: Path) -> str | None:
    """One line for a fault that reached the CLI unwrapped, or None for a bug (the traceback is kept).

    ``state_path``: the state file of the collection in use, the likely one for an SQLite error."""
    if disk_full(exc):
        return _full(data_dir)
    if isinstance(exc, sqlite3.DatabaseError):
        return state_fault(state_path, exc)
    if type(exc).__module__.startswith("chromadb"):
        return vector_fault(str(data_dir / "chroma"), exc)
    return None

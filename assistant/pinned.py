"""Read the file the scan found, and only that file, even if a link is swapped in between.

The scan follows symlinks that stay inside the folder and skips the others,
but a link can be changed after the scan and before a reader opens the path
(``notes.txt -> /etc/passwd``). So ingest opens each file once itself, checks
what it opened (a regular file whose real path, read back from the open
descriptor, lies inside the folder), hashes it through that descriptor, and
hands the reader a path that can only reach that same open file: a symlink,
in a private folder of this process, to ``/proc/PID/fd/N``. It keeps the file's
name, so readers that look at the suffix or the name work unchanged; a swap of
the original path after the check no longer matters.

Where ``/proc`` is missing (macOS), the reader gets the original path and the
file is checked again after the read (same device and inode as the one opened
and checked); a swap there is caught unless it is undone within the read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

__all__ = ["OutsideFolder", "PinnedFile", "Pinner"]

_BLOCK = 1 << 20
# O_NONBLOCK: a FIFO swapped in for a file opens at once (and is refused) instead of hanging the ingest
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
_F_GETPATH = 50  # macOS fcntl: the path of an open descriptor


class OutsideFolder(Exception):
    """What the path leads to at read time is not a regular file inside the folder being ingested."""


def _descriptor_path(fd: int) -> Path | None:
    """Where an open descriptor's file really is (symlinks resolved), or None where the OS cannot say."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        target = None
    if target is None and sys.platform == "darwin":
        import fcntl

        try:
            raw = fcntl.fcntl(fd, _F_GETPATH, b"\0" * 1024)
            target = os.fsdecode(raw.split(b"\0", 1)[0])
        except OSError:
            return None
    if target is None:
        return None
    if target.endswith(" (deleted)"):
        raise FileNotFoundError(target)
    return Path(target)


class PinnedFile:
    """One open, checked file: ``path`` for the reader, ``sha256()`` of the content, ``close()``."""

    def __init__(self, fd: int, st: os.stat_result, path: Path, alias: Path | None, original: Path):
        self.fd, self.stat, self.path = fd, st, path
        self._alias, self._original = alias, original

    def sha256(self) -> str:
        h = hashlib.sha256()
        offset = 0
        while block := os.pread(self.fd, _BLOCK, offset):
            h.update(block)
            offset += len(block)
        return h.hexdigest()

    def check_unchanged(self) -> None:
        """Without an alias, the reader opened the original path: was it still this file?"""
        if self._alias is None:
            try:
                now = os.stat(self._original)
            except OSError as e:
                raise OutsideFolder(f"changed while it was read ({e.strerror})") from None
            if (now.st_dev, now.st_ino) != (self.stat.st_dev, self.stat.st_ino):
                raise OutsideFolder("refused: it was replaced by another file while it was read")

    def close(self) -> None:
        if self._alias is not None:
            try:
                self._alias.unlink()
            except OSError:
                pass
        os.close(self.fd)

    def __enter__(self) -> "PinnedFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Pinner:
    """Opens files for one ingest; its private alias folder lives until ``close()``."""

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._proc = os.path.isdir("/proc/self/fd")

    def open(self, path: Path, root: Path) -> PinnedFile:
        """Open ``path`` and check it is a regular file inside ``root`` (resolved); raises OutsideFolder or OSError."""
        fd = os.open(path, _FLAGS)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OutsideFolder("refused: at read time it is not a regular file")
            real = _descriptor_path(fd)
            real_root = Path(os.path.realpath(root))
            if real is not None and real != real_root and not real.is_relative_to(real_root):
                raise OutsideFolder(f"refused: at read time it leads outside the folder, to {real}")
            alias = self._alias(fd, path.name) if self._proc and real is not None else None
        except BaseException:
            os.close(fd)
            raise
        return PinnedFile(fd, st, alias or path, alias, path)

    def _alias(self, fd: int, name: str) -> Path | None:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="assistant-read-"))  # 0700, this process's own
        alias = self._dir / name
        try:
            alias.unlink(missing_ok=True)
            os.symlink(f"/proc/{os.getpid()}/fd/{fd}", alias)  # not "self": a helper process the reader starts reaches it too
        except OSError:
            return None
        return alias

    def close(self) -> None:
        """Remove the alias folder; a read still running (a cancelled ingest) goes on without an alias."""
        self._proc = False
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> "Pinner":
        self._proc = os.path.isdir("/proc/self/fd")
        return self

    def __exit__(self, *exc) -> None:
        self.close()

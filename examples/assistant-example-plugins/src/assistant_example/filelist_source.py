"""A source plugin: the files named in ``*.filelist`` files at the top of a folder.

A file list is plain UTF-8 text, one entry per line; blank lines and lines
starting with ``#`` are ignored. An entry is a path relative to the folder
(``notes/today.md``) or a glob pattern (``reports/**/*.pdf``). Only existing
files inside the folder are yielded: entries that are missing, absolute paths
elsewhere, or ``..`` paths that leave the folder are skipped.

Sources are combined: with the built-in ``folder`` source on, this one adds
nothing new. To ingest only the listed files, turn the folder source off::

    [plugins.folder]
    enabled = false

Settings (``[plugins.filelist]``): ``pattern`` (default ``"*.filelist"``) names
the list files.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Iterator

__all__ = ["FileListSource"]


class FileListSource:
    def __init__(self, *, pattern: str = "*.filelist") -> None:
        self.pattern = pattern

    def files(self, root: Path) -> Iterator[Path]:
        root = Path(root)
        if not root.is_dir():
            return
        seen: set[Path] = set()
        for listing in sorted(root.glob(self.pattern)):
            if not listing.is_file():
                continue
            try:
                entries = listing.read_text(encoding="utf-8-sig").splitlines()
            except (OSError, UnicodeDecodeError):
                continue  # an unreadable list names nothing
            for entry in entries:
                entry = entry.strip()
                if not entry or entry.startswith("#"):
                    continue
                for path in self._matches(root, entry):
                    if path not in seen:
                        seen.add(path)
                        yield path

    @staticmethod
    def _matches(root: Path, entry: str) -> Iterator[Path]:
        """Existing files inside ``root`` named by one entry (pathlib globs do not follow symlinked folders)."""
        rel = Path(entry)
        if rel.is_absolute():
            try:
                rel = rel.relative_to(root)
            except ValueError:
                return
        try:
            candidates = sorted(root.glob(str(rel))) if glob.has_magic(entry) else [root / rel]
        except (ValueError, NotImplementedError, OSError):
            return
        real_root = root.resolve()
        for p in candidates:
            p = Path(os.path.normpath(p))
            try:
                if p.is_file() and p.resolve().is_relative_to(real_root):
                    yield p
            except (OSError, RuntimeError):
                continue

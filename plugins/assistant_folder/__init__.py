"""Built-in source plugin: the files under a folder.

Symlinks are followed only while they stay inside the folder, and each directory
is visited once, so a link that leaves the folder or loops back is skipped. Each
thing left out (such a link, a broken link, a FIFO or device, a folder that cannot
be read) is reported with ``report_skipped``, so the ingest lists it with why.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterator

from assistant.types import report_skipped

__all__ = ["FolderSource"]


class FolderSource:
    def __init__(self, *, follow_symlinks: bool = True):
        self.follow_symlinks = follow_symlinks

    def files(self, root: Path) -> Iterator[Path]:
        root = Path(root)
        if not root.is_dir():
            return
        real_root = root.resolve()
        visited: set[tuple[int, int]] = set()

        def unreadable(e: OSError) -> None:
            report_skipped(e.filename or root, f"cannot read this folder: {e.strerror or e}")

        for dirpath, dirnames, filenames in os.walk(root, followlinks=self.follow_symlinks, onerror=unreadable):
            here = Path(dirpath)
            try:
                st = here.stat()
            except OSError as e:
                report_skipped(here, f"cannot read this folder: {e.strerror or e}")
                dirnames[:] = []
                continue
            if (st.st_dev, st.st_ino) in visited:
                report_skipped(here, "a link loop: this folder was already visited")
                dirnames[:] = []
                continue
            if not here.resolve().is_relative_to(real_root):
                report_skipped(here, f"a link that leaves the folder (to {here.resolve()})")
                dirnames[:] = []
                continue
            visited.add((st.st_dev, st.st_ino))
            dirnames.sort()
            if not self.follow_symlinks:
                for name in dirnames:
                    if (here / name).is_symlink():
                        report_skipped(here / name, "a link to a folder (links are not followed)")
            for name in sorted(filenames):
                p = here / name
                if p.is_symlink():
                    if not self.follow_symlinks:
                        report_skipped(p, "a link (links are not followed)")
                        continue
                    try:
                        target = p.resolve(strict=True)
                    except (OSError, RuntimeError):
                        report_skipped(p, "a broken link, or a link loop")
                        continue
                    if not target.is_relative_to(real_root):
                        report_skipped(p, f"a link that leaves the folder (to {target})")
                        continue
                if p.is_file():
                    yield p
                elif not p.is_dir():
                    report_skipped(p, f"not a regular file ({_kind(p)})")


def _kind(path: Path) -> str:
    try:
        mode = path.stat().st_mode
    except OSError as e:
        return f"cannot stat: {e.strerror or e}"
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "a special file"

"""Built-in source plugin: the files under a folder.

Symlinks are followed only while they stay inside the folder, and each directory
is visited once, so a link that leaves the folder or loops back is skipped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

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
        for dirpath, dirnames, filenames in os.walk(root, followlinks=self.follow_symlinks):
            here = Path(dirpath)
            try:
                st = here.stat()
            except OSError:
                dirnames[:] = []
                continue
            if (st.st_dev, st.st_ino) in visited or not here.resolve().is_relative_to(real_root):
                dirnames[:] = []  # a loop, or a link that leaves the folder
                continue
            visited.add((st.st_dev, st.st_ino))
            dirnames.sort()
            for name in sorted(filenames):
                p = here / name
                if p.is_symlink():
                    if not self.follow_symlinks:
                        continue
                    try:
                        if not p.resolve(strict=True).is_relative_to(real_root):
                            continue
                    except (OSError, RuntimeError):
                        continue
                if p.is_file():
                    yield p

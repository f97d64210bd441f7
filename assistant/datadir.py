"""The data folder: created owner-only; a folder that already exists is checked, never changed.

Everything the assistant stores holds the text of the user's documents, so the
process umask is narrowed to owner-only before the first file is written. A
folder the assistant creates (and any parent it creates on the way) gets 0700.
A folder that exists already belongs to the user: its mode is theirs (a shared
``/tmp``-like 1777 folder must stay 1777), so a mode that lets others in is
reported as a ``DataFolderWarning`` (the CLI prints it as one line) and left as it is.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

__all__ = ["DataFolderWarning", "private_dir", "owner_only_umask"]


class DataFolderWarning(UserWarning):
    """The data folder (which holds the documents' text) can be read or entered by other users."""


def owner_only_umask() -> None:
    """Files and folders created from here on are readable by their owner only."""
    os.umask(os.umask(0o077) | 0o077)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as 0700, or check an existing folder without changing it."""
    path = Path(path)
    owner_only_umask()
    try:
        path.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        if path.is_dir():
            _check_existing(path)
        # a file in the way: the open that follows names it
        return path
    os.chmod(path, 0o700)  # ours: owner-only, whatever the umask took away
    return path


_warned: set[Path] = set()  # one warning per folder and process, however many parts open it


def _check_existing(path: Path) -> None:
    try:
        st = path.stat()
    except OSError:
        return
    if path in _warned:
        return
    if st.st_uid != os.geteuid() or st.st_mode & 0o077:
        _warned.add(path)
    if st.st_uid != os.geteuid():
        warnings.warn(
            DataFolderWarning(
                f"the data folder {path} belongs to another user (uid {st.st_uid}); it holds your documents' "
                "text: point [library] data_dir (or ASSISTANT_DATA_DIR) at a folder of your own"
            ),
            stacklevel=3,
        )
    elif st.st_mode & 0o077:
        warnings.warn(
            DataFolderWarning(
                f"the data folder {path} is open to other users (mode {stat.filemode(st.st_mode)}, "
                f"{oct(st.st_mode & 0o7777)}); the files in it are owner-only, but to keep even their names "
                f"private use a folder of your own, or `chmod 700 {path}` (the assistant leaves existing folders as they are)"
            ),
            stacklevel=3,
        )

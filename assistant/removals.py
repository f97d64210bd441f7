"""Which indexed files an ingest may remove: only the ones that are really gone.

A file the scan did not yield is not necessarily deleted. Its folder may have
become unreadable (permissions, a network share that went away): that is a
failure of the folder, reported by path, and its indexed files are kept. A
whole root that is suddenly empty is more likely an unmounted drive than a user
who deleted everything: when one run would remove more than
``[ingest] max_prune_share`` of a root's indexed files, nothing under that root
is removed and the report says how to confirm (``assistant ingest --prune``).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

__all__ = ["Removals", "plan_removals"]

_GONE = (errno.ENOENT, errno.ENOTDIR)


@dataclass
class Removals:
    gone: list[str] = field(default_factory=list)  # indexed files to take out of the library
    unreadable: list[dict[str, str]] = field(default_factory=list)  # {path: folder, reason}: a failure, files kept
    held: list[dict[str, str]] = field(default_factory=list)  # {path: root, reason}: waits for --prune


def plan_removals(
    roots: Iterable[Path],
    indexed_under: Callable[[str], list[str]],
    seen: set[str],
    *,
    max_share: float,
    confirmed: bool,
) -> Removals:
    """Sort the indexed files under ``roots`` that this run did not see into gone, kept and held."""
    out = Removals()
    gone: set[str] = set()
    held: set[str] = set()
    blocked: dict[Path, tuple[str, int]] = {}  # unreadable folder -> (reason, indexed files kept under it)
    listable: dict[Path, str | None] = {}  # folder -> why it cannot be listed (None: it can, or it is gone)
    for root in roots:
        indexed = indexed_under(str(root))
        missing = []
        for path in indexed:
            if path in seen:
                continue
            folder = _unreadable_folder(Path(path), root, listable)
            if folder is None:
                missing.append(path)
            else:
                reason, n = blocked.get(folder, (listable[folder] or "", 0))
                blocked[folder] = (reason, n + 1)
        if missing and not confirmed and len(missing) > max_share * len(indexed):
            held.update(missing)
            out.held.append({"path": str(root), "reason": (
                f"would remove {len(missing)} of its {len(indexed)} indexed files, more than ingest.max_prune_share "
                f"({max_share:.0%}); is a drive unmounted or a folder moved? Nothing was removed: if the files are "
                f"really gone, run `assistant ingest --prune {root}`")})
        else:
            gone.update(missing)
    out.gone = sorted(gone - held)
    for folder, (reason, n) in sorted(blocked.items()):
        out.unreadable.append({"path": str(folder), "reason": (
            f"cannot read this folder ({reason}); its {n} indexed file{'s' if n != 1 else ''} "
            f"{'are' if n != 1 else 'is'} kept, not removed")})
    return out


def _unreadable_folder(path: Path, root: Path, listable: dict[Path, str | None]) -> Path | None:
    """The first folder from ``root`` down to ``path``'s folder that exists but cannot be listed, else None."""
    if not path.is_relative_to(root) or path == root:
        return None
    folder = root
    for part in ("", *path.relative_to(root).parts[:-1]):
        folder = folder / part if part else root
        if folder not in listable:
            listable[folder] = _why_unlistable(folder)
        if listable[folder] is not None:
            return folder
    try:  # a folder that can be listed but not entered (r without x): its files cannot be looked at
        os.stat(path)
    except OSError as e:
        if e.errno not in _GONE:
            listable[path.parent] = e.strerror or str(e)
            return path.parent
    return None


def _why_unlistable(folder: Path) -> str | None:
    try:
        with os.scandir(folder) as entries:
            for _ in entries:
                break
    except OSError as e:
        if e.errno in _GONE:
            return None  # really gone: its files are deleted
        return e.strerror or str(e)
    return None

"""`assistant ingest --watch`: keep the index in sync as files change (watchfiles, debounced)."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Callable

from .ingest import IngestReport, LibraryLocked

__all__ = ["watch"]


def _line(report: IngestReport) -> str:
    return (
        f"synced: {report.files_ingested} ingested, {report.files_removed} removed, "
        f"{len(report.files_failed)} failed, {report.chunks_total} chunks in the library ({report.seconds:.1f} s)"
    )


def watch(
    library,
    paths: list[Path] | None = None,
    *,
    as_json: bool = False,
    stop_event: threading.Event | None = None,
    on_sync: Callable[[IngestReport], None] | None = None,
) -> int:
    """Sync once, then again after each burst of changes, until interrupted or ``stop_event`` is set.

    Each sync is the ordinary incremental ingest: unchanged files cost one stat.
    Writes wait for the library lock, so a watcher and a manual ingest take turns.
    """
    from watchfiles import watch as watch_changes

    roots = [Path(p).expanduser().resolve() for p in (paths or library.config.folders())]
    data_dir = library.config.data_dir.resolve()

    def sync() -> None:
        report = library.ingest(roots, wait_for_lock=True)
        if on_sync:
            on_sync(report)
        print(json.dumps(report.as_dict()) if as_json else _line(report), flush=True)
        for f in report.files_failed:
            print(f"  FAILED {f['path']}: {f['reason']}", file=sys.stderr, flush=True)
        for f in report.removals_held:
            print(f"  NOT REMOVED under {f['path']}: {f['reason']}", file=sys.stderr, flush=True)

    def relevant(change, path: str) -> bool:
        return not Path(path).resolve().is_relative_to(data_dir)

    sync()
    if not as_json:
        print(f"watching {', '.join(map(str, roots))} (Ctrl+C to stop)", flush=True)
    try:
        for _ in watch_changes(
            *roots,
            watch_filter=relevant,
            debounce=library.config.ingest.watch_debounce_ms,
            stop_event=stop_event,
            rust_timeout=500,
            yield_on_timeout=False,
        ):
            try:
                sync()
            except LibraryLocked as e:  # only with wait=False; kept for clarity
                print(f"assistant: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    return 0

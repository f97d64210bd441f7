"""A command plugin: ``assistant wordcount`` prints files, chunks and words per file type.

A command plugin object has ``help`` (one line for ``assistant --help``),
``configure(parser)`` (add arguments to its argparse sub-parser) and
``run(args, library) -> int`` (the exit code). It gets the same ``Library`` the
built-in commands use; this one only reads ``library.store``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import PurePath

__all__ = ["WordcountCommand", "count_by_type"]

_WORD = re.compile(r"\w+")


def count_by_type(store) -> dict[str, dict[str, int]]:
    """{".md": {"files": 2, "chunks": 5, "words": 812}, ...} from a Store."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"files": 0, "chunks": 0, "words": 0})
    for row in store.file_rows():
        kind = PurePath(row.path).suffix.lower() or "(none)"
        chunks = store.chunks_of(row.path)
        out[kind]["files"] += 1
        out[kind]["chunks"] += len(chunks)
        out[kind]["words"] += sum(len(_WORD.findall(c.text)) for c in chunks)
    return dict(sorted(out.items()))


class WordcountCommand:
    help = "count indexed files, chunks and words per file type"

    def configure(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def run(self, args, library) -> int:
        counts = count_by_type(library.store)
        if args.json:
            print(json.dumps(counts, indent=2))
            return 0
        if not counts:
            print("nothing is indexed yet")
            return 0
        print(f"{'type':<10} {'files':>7} {'chunks':>8} {'words':>9}")
        for kind, c in counts.items():
            print(f"{kind:<10} {c['files']:>7} {c['chunks']:>8} {c['words']:>9}")
        total = {k: sum(c[k] for c in counts.values()) for k in ("files", "chunks", "words")}
        print(f"{'total':<10} {total['files']:>7} {total['chunks']:>8} {total['words']:>9}")
        return 0

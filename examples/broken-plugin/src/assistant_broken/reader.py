"""A reader whose module cannot be imported: it needs a package that is not installed."""

from __future__ import annotations

import assistant_broken_missing_dependency  # noqa: F401  -> ModuleNotFoundError at import

from assistant.types import Document, Section


class BrokenReader:
    suffixes = (".broken",)

    def read(self, path):
        return Document(sections=[Section(text="never reached")])

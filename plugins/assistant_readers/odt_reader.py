"""OpenDocument text (.odt) via odfpy: headings start sections.

The extracted text has one line per non-empty paragraph or heading, one line
per list item and one per table row ("cell | cell"); ``start_line`` counts
lines of that text, as for .docx. The title is the document's dc:title, else
the first heading.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from assistant.types import Document

from ._common import empty, is_empty_file, open_zip_container, split_at_headings
from ._odf import block_lines, load_odf, text_of


class OdtReader:
    suffixes: ClassVar[tuple[str, ...]] = (".odt",)

    def __init__(self, *, max_unzipped_mb: float = 512.0) -> None:
        self.max_unzipped_mb = max_unzipped_mb

    def read(self, path: Path) -> Document:
        from odf.dc import Title

        if is_empty_file(path):
            return empty("odt")
        open_zip_container(path, "ODT", max_unzipped_mb=self.max_unzipped_mb)
        doc = load_odf(path, "ODT")
        lines: list[str] = []
        headings: list[tuple[int, int, str]] = []
        block_lines(doc.text, headings, lines)
        if not lines:
            return empty("odt")
        titles = [text_of(t) for t in doc.meta.getElementsByType(Title)]
        title = next((t for t in titles if t), None) or (headings[0][2] if headings else None)
        return Document(sections=split_at_headings(lines, headings), title=title, metadata={"file_type": "odt"})

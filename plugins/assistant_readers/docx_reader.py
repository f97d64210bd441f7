"""Word documents (.docx) via python-docx: paragraphs and tables in body order.

The extracted text has one line per non-empty paragraph (a manual line break
starts a new line) and one line per table row (the header row "a | b", then "a: 1 · b: 2"); ``start_line``
counts lines of that text. Paragraphs styled "Title" or "Heading N" start
sections. The title is the core-properties title, else the first Title paragraph.
The ZIP container is checked before parsing (``open_zip_container``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from assistant.types import Document, ReaderError

from ._common import empty, is_empty_file, open_zip_container, row_with_headers, split_at_headings

_HEADING = re.compile(r"^heading\s*(\d)$", re.I)


def _level(paragraph) -> int | None:
    style = paragraph.style
    for name in (getattr(style, "name", None), getattr(style, "style_id", None)):
        if not name:
            continue
        if name.lower() == "title":
            return 0
        m = _HEADING.match(name)
        if m:
            return int(m.group(1))
    return None


def _cells(row) -> list[str]:
    cells, seen = [], set()
    for cell in row.cells:
        if id(cell._tc) in seen:  # a merged cell is returned once per grid column
            continue
        seen.add(id(cell._tc))
        cells.append(" ".join(cell.text.split()))
    return cells


def _table_lines(table) -> list[str]:
    """The header row as "a | b | c", then each row with its header names (see row_with_headers)."""
    rows = [_cells(r) for r in table.rows]
    rows = [r for r in rows if any(r)]
    if len(rows) < 2 or not all(rows[0]):
        return [" | ".join(r) for r in rows]
    return [" | ".join(rows[0])] + [row_with_headers(rows[0], r) for r in rows[1:]]


def _what_failed(path: Path, error: Exception) -> str:
    """The reason for a DOCX python-docx could not open, naming the part at fault: its own
    message often does not ("unknown error" from lxml, a bare KeyError)."""
    import zipfile

    from lxml import etree

    reason = str(error.args[0] if isinstance(error, KeyError) and error.args else error).strip() or type(error).__name__
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.filename.endswith((".xml", ".rels")):
                    continue
                try:
                    etree.fromstring(z.read(info))
                except etree.XMLSyntaxError as e:
                    detail = str(e).strip()
                    if not detail or detail.lower().startswith("unknown error"):
                        detail = "damaged XML (the parser gives no reason)"
                    return f"{info.filename} cannot be parsed: {detail}"
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        pass
    if reason.lower().startswith("unknown error"):
        return f"python-docx failed ({type(error).__name__}) without a reason"
    return reason


class DocxReader:
    suffixes: ClassVar[tuple[str, ...]] = (".docx",)

    def __init__(self, *, max_unzipped_mb: float = 512.0) -> None:
        self.max_unzipped_mb = max_unzipped_mb

    def read(self, path: Path) -> Document:
        import docx
        from docx.table import Table

        if is_empty_file(path):
            return empty("docx")
        open_zip_container(path, "DOCX", max_unzipped_mb=self.max_unzipped_mb)
        try:
            doc = docx.Document(str(path))
            blocks = list(doc.iter_inner_content())
            core_title = (doc.core_properties.title or "").strip()
        except Exception as e:
            raise ReaderError(f"not a valid DOCX: {_what_failed(path, e)}") from e
        lines: list[str] = []
        headings: list[tuple[int, int, str]] = []
        first_title = None
        for block in blocks:
            if isinstance(block, Table):
                lines.extend(_table_lines(block))
                continue
            text = block.text.replace("\r", "\n")
            parts = [p.strip() for p in text.split("\n") if p.strip()]
            if not parts:
                continue
            level = _level(block)
            if level is not None:
                headings.append((len(lines), level, " ".join(parts)))
                if level == 0 and first_title is None:
                    first_title = " ".join(parts)
            lines.extend(parts)
        if not lines:
            return empty("docx")
        title = core_title or first_title
        return Document(sections=split_at_headings(lines, headings), title=title, metadata={"file_type": "docx"})

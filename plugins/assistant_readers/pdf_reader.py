"""PDF (.pdf) via pypdf: one Section per page with text, ``page`` 1-based.

``start_line`` counts lines of that page's extracted text. Pages without text
(scans) are skipped; a file pypdf cannot open raises ReaderError with its reason.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

from assistant.types import Document, ReaderError

from ._common import empty, is_empty_file, section_from_lines

logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed-but-readable files warn a lot


class PdfReader:
    suffixes: ClassVar[tuple[str, ...]] = (".pdf",)

    def __init__(self, *, password: str = "") -> None:
        self.password = password

    def read(self, path: Path) -> Document:
        from pypdf import PdfReader as _Pdf

        if is_empty_file(path):
            return empty("pdf")
        try:
            pdf = _Pdf(path, strict=False)
            if pdf.is_encrypted and not pdf.decrypt(self.password):
                raise ReaderError("encrypted PDF: a password is needed ([plugins.pdf] password)")
            pages = list(pdf.pages)
        except ReaderError:
            raise
        except Exception as e:
            raise ReaderError(f"not a valid PDF: {e or type(e).__name__}") from e
        sections, failed = [], 0
        for number, page in enumerate(pages, start=1):
            try:
                text = page.extract_text() or ""
            except Exception:
                failed += 1
                continue
            lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
            section = section_from_lines(lines, 0, len(lines), page=number)
            if section is not None:
                sections.append(section)
        if failed and failed == len(pages):
            raise ReaderError("not a valid PDF: no page could be read")
        try:
            title = (pdf.metadata.title or "").strip() if pdf.metadata else ""
        except Exception:
            title = ""
        meta = {"file_type": "pdf", "pages": len(pages)}
        if failed:
            meta["unreadable_pages"] = failed
        return Document(sections=sections, title=title or None, metadata=meta)

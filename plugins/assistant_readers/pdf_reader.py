"""PDF (.pdf) via pypdf: one Section per page with text, ``page`` 1-based.

``start_line`` counts lines of that page's extracted text. A page with no text
layer, or almost none (a scan), is rendered with pypdfium2 and read by OCR
(``ocr = "auto"``, the default; ``"always"`` OCRs every page, ``"never"`` skips
such pages); its lines are the OCR lines in reading order. OCR is announced to
the ingest per page and limited by ``[ingest] ocr_seconds_per_page``. A file
pypdf cannot open raises ReaderError with its reason.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

from assistant.types import Document, ReaderError

from ._common import empty, is_empty_file, section_from_lines
from ._ocr import OCR_SECONDS_PER_PAGE, checked_seconds, ocr_page

logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed-but-readable files warn a lot

_OCR_MODES = ("auto", "always", "never")


class PdfReader:
    suffixes: ClassVar[tuple[str, ...]] = (".pdf",)

    def __init__(
        self,
        *,
        password: str = "",
        ocr: str = "auto",
        ocr_min_chars: int = 20,
        ocr_dpi: int = 150,
        ocr_seconds_per_page: float = OCR_SECONDS_PER_PAGE,
    ) -> None:
        if ocr not in _OCR_MODES:
            raise ValueError(f"plugins.pdf.ocr: expected one of {', '.join(_OCR_MODES)}, got {ocr!r}")
        self.password = password
        self.ocr = ocr
        self.ocr_min_chars = ocr_min_chars  # fewer letters and digits than this on a page: "no text layer"
        self.ocr_dpi = ocr_dpi
        self.ocr_seconds_per_page = checked_seconds(ocr_seconds_per_page)

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
        sections, failed, scanned = [], 0, []
        texts: dict[int, str] = {}
        for number, page in enumerate(pages, start=1):
            try:
                texts[number] = "" if self.ocr == "always" else (page.extract_text() or "")
            except Exception:
                failed += 1
                continue
            if self.ocr != "never" and sum(ch.isalnum() for ch in texts[number]) < self.ocr_min_chars:
                scanned.append(number)
        if scanned:
            texts.update(self._ocr(path, scanned, len(pages)))
        for number, text in texts.items():
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
        if scanned:
            meta["ocr_pages"] = len(scanned)
        return Document(sections=sections, title=title or None, metadata=meta)

    def _ocr(self, path: Path, numbers: list[int], total: int) -> dict[int, str]:
        """page number -> OCR text, for the pages in ``numbers`` (rendered at ``ocr_dpi``)."""
        import pypdfium2 as pdfium

        try:
            pdf = pdfium.PdfDocument(str(path), password=self.password or None)
        except Exception as e:
            raise ReaderError(f"not a valid PDF: cannot render it for OCR: {e or type(e).__name__}") from e
        out = {}
        try:
            for number in numbers:
                try:
                    image = pdf[number - 1].render(scale=self.ocr_dpi / 72).to_pil()
                except Exception as e:
                    raise ReaderError(f"not a valid PDF: cannot render page {number} for OCR: {e or type(e).__name__}") from e
                where = f"page {number}"
                lines = ocr_page(image, number, total, seconds=self.ocr_seconds_per_page, where=where)
                out[number] = "\n".join(lines)
        finally:
            pdf.close()
        return out

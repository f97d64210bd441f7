"""Images (.png .jpg .jpeg .tif .tiff .bmp .webp) through offline OCR: one Section per image.

Text lines come in reading order (top to bottom, left to right within a
line); ``start_line`` counts those lines. A TIFF may hold several pages: each
is a Section with ``page`` set (1-based); other images have no page. OCR is
slow, so each page is announced to the ingest ("OCR page 2/5") and limited by
``[ingest] ocr_seconds_per_page``; a page that takes longer fails the file,
naming the page.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from assistant.types import Document, ReaderError, Section

from ._common import empty, is_empty_file, section_from_lines
from ._ocr import OCR_SECONDS_PER_PAGE, checked_seconds, ocr_page


class ImageReader:
    suffixes: ClassVar[tuple[str, ...]] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")

    def __init__(self, *, ocr_seconds_per_page: float = OCR_SECONDS_PER_PAGE, max_pages: int = 200, max_megapixels: float = 60.0) -> None:
        self.ocr_seconds_per_page = checked_seconds(ocr_seconds_per_page)
        self.max_pages = max_pages
        self.max_pixels = int(max_megapixels * 1_000_000)

    def read(self, path: Path) -> Document:
        from PIL import Image, ImageSequence

        path = Path(path)
        if is_empty_file(path):
            return empty("image")
        paged = path.suffix.lower() in (".tif", ".tiff")
        try:
            with Image.open(path) as img:
                total = min(getattr(img, "n_frames", 1), self.max_pages)
                if img.width * img.height > self.max_pixels:
                    raise ReaderError(f"image too large: {img.width}x{img.height} pixels (limit {self.max_pixels / 1e6:g} megapixels)")
                sections: list[Section] = []
                for number, frame in enumerate(ImageSequence.Iterator(img), start=1):
                    if number > total:
                        break
                    frame.load()
                    where = f"page {number}" if paged else "the image"
                    lines = ocr_page(frame, number, total, seconds=self.ocr_seconds_per_page, where=where)
                    section = section_from_lines(lines, 0, len(lines), page=number if paged else None)
                    if section is not None:
                        sections.append(section)
        except ReaderError:
            raise
        except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as e:
            raise ReaderError(f"not a valid image: {e or type(e).__name__}") from e
        meta = {"file_type": "image", "ocr": True}
        if paged:
            meta["pages"] = total
        return Document(sections=sections, metadata=meta)

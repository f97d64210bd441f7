"""EPUB (.epub) via ebooklib: one Section per document in spine order.

``heading`` is the chapter title (table of contents, else the chapter's first
heading or <title>, else its file name). The text comes from ``html_to_lines``;
chapters are laid out one after another with a blank line between them and
``start_line`` counts lines of that whole extracted text. The ZIP container is
checked before parsing (``open_zip_container``).
"""

from __future__ import annotations

import posixpath
import warnings
from pathlib import Path
from typing import ClassVar

from assistant.types import Document, ReaderError

from ._common import empty, is_empty_file, open_zip_container, stack_blocks
from .html_reader import html_to_lines


def _toc_titles(toc, out: dict[str, str]) -> dict[str, str]:
    for entry in toc:
        if isinstance(entry, (tuple, list)):
            _toc_titles(entry[:1], out)
            _toc_titles(entry[1] if len(entry) > 1 else [], out)
            continue
        href, title = getattr(entry, "href", ""), getattr(entry, "title", "")
        if href and title:
            out.setdefault(posixpath.basename(href.split("#")[0]), " ".join(title.split()))
    return out


class EpubReader:
    suffixes: ClassVar[tuple[str, ...]] = (".epub",)

    def __init__(self, *, max_unzipped_mb: float = 512.0) -> None:
        self.max_unzipped_mb = max_unzipped_mb

    def read(self, path: Path) -> Document:
        import ebooklib
        from ebooklib import epub

        if is_empty_file(path):
            return empty("epub")
        open_zip_container(path, "EPUB", max_unzipped_mb=self.max_unzipped_mb)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                book = epub.read_epub(str(path), {"ignore_ncx": True})
            items = [book.get_item_with_id(idref) for idref, _ in book.spine]
            titles = _toc_titles(book.toc, {})
            meta_title = book.get_metadata("DC", "title")
        except Exception as e:
            reason = getattr(e, "msg", None) or str(e) or type(e).__name__
            raise ReaderError(f"not a valid EPUB: {reason}") from e
        blocks = []
        for item in items:
            if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT or isinstance(item, epub.EpubNav):
                continue
            try:
                page_title, lines, headings = html_to_lines(item.get_content())
            except Exception as e:
                raise ReaderError(f"not a valid EPUB: cannot read {item.get_name()}: {e}") from e
            name = item.get_name()
            heading = titles.get(posixpath.basename(name)) or (headings[0][2] if headings else None) or page_title or name
            blocks.append(("\n".join(lines), heading))
        sections = stack_blocks(blocks)
        title = " ".join(meta_title[0][0].split()) if meta_title and meta_title[0][0] else None
        return Document(sections=sections, title=title or None, metadata={"file_type": "epub"})

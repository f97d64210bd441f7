"""Slide decks (.pptx via python-pptx, .odp via odfpy): one Section per slide.

``page`` is the slide number (citations show it where a PDF shows its page),
``heading`` the slide title (else "Slide N"). A slide's text, with
``start_line`` 1, is: the title, the body text (shapes in the slide's reading
order, one line per paragraph), each table as self-describing rows
("Table, row 3: Model: K3 · Price: 899", see the spreadsheet reader), then the
speaker notes, each line starting "Notes: ". The ZIP container is checked
before parsing.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Iterator

from assistant.types import Document, ReaderError, Section

from ._common import empty, is_empty_file, open_zip_container, table_lines
from ._odf import block_lines, load_odf, local, odf_rows, text_of

_TABLE_WHERE = "Table, row {row}"


def _table(rows: Iterator[tuple[int, list[str]]]) -> list[str]:
    return [line for _, line in table_lines(rows, _TABLE_WHERE)]


def _paragraph_lines(text: str) -> list[str]:
    return [" ".join(part.split()) for part in text.replace("\v", "\n").split("\n") if part.strip()]


def _slide_section(number: int, title: str, body: list[str], notes: list[str]) -> Section | None:
    lines = ([title] if title else []) + body + [f"Notes: {n}" for n in notes]
    if not lines:
        return None
    return Section(text="\n".join(lines), page=number, start_line=1, heading=title or f"Slide {number}")


def _pptx_shapes(shapes) -> Iterator:
    """Shapes in the slide's order (PowerPoint's reading order, as a screen reader follows it), groups opened."""
    from pptx.shapes.group import GroupShape

    for shape in shapes:
        if isinstance(shape, GroupShape):
            yield from _pptx_shapes(shape.shapes)
        else:
            yield shape


class SlidesReader:
    suffixes: ClassVar[tuple[str, ...]] = (".pptx", ".odp")

    def __init__(self, *, notes: bool = True, max_unzipped_mb: float = 512.0) -> None:
        self.notes = notes
        self.max_unzipped_mb = max_unzipped_mb

    def read(self, path: Path) -> Document:
        path = Path(path)
        file_type = path.suffix.lower().lstrip(".")
        if is_empty_file(path):
            return empty(file_type)
        open_zip_container(path, file_type.upper(), max_unzipped_mb=self.max_unzipped_mb)
        try:
            slides = list(self._odp(path) if file_type == "odp" else self._pptx(path))
        except ReaderError:
            raise
        except Exception as e:
            raise ReaderError(f"not a valid {file_type.upper()}: {e or type(e).__name__}") from e
        sections = [s for s in (_slide_section(n, *parts) for n, parts in enumerate(slides, start=1)) if s]
        return Document(sections=sections, metadata={"file_type": file_type, "slides": len(slides)})

    def _pptx(self, path: Path) -> Iterator[tuple[str, list[str], list[str]]]:
        from pptx import Presentation

        try:
            deck = Presentation(str(path))
        except Exception as e:
            raise ReaderError(f"not a valid PPTX: {e or type(e).__name__}") from e
        for slide in deck.slides:
            title_shape = slide.shapes.title
            title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
            body: list[str] = []
            for shape in _pptx_shapes(slide.shapes):
                if shape == title_shape:  # shapes compare by their XML element
                    continue
                if getattr(shape, "has_table", False) and shape.has_table:
                    rows = ((i, [" ".join(c.text.split()) for c in row.cells]) for i, row in enumerate(shape.table.rows, 1))
                    body.extend(_table(rows))
                elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
                    for paragraph in shape.text_frame.paragraphs:
                        body.extend(_paragraph_lines(paragraph.text))
            frame = slide.notes_slide.notes_text_frame if self.notes and slide.has_notes_slide else None
            yield title, body, _paragraph_lines(frame.text) if frame is not None else []

    def _odp(self, path: Path) -> Iterator[tuple[str, list[str], list[str]]]:
        from odf.draw import Page
        from odf.namespaces import PRESENTATIONNS

        doc = load_odf(path, "ODP")
        for page in doc.presentation.getElementsByType(Page):
            title, body, notes = "", [], []
            for child in page.childNodes:
                name = local(child)
                if name == "frame" and child.getAttrNS(PRESENTATIONNS, "class") == "title" and not title:
                    title = text_of(child)
                elif name == "notes":
                    if self.notes:
                        block_lines(child, [], notes, table=lambda t: _table(odf_rows(t)), skip=("page-thumbnail",))
                else:
                    block_lines(child, [], body, table=lambda t: _table(odf_rows(t)))
            yield title, body, notes

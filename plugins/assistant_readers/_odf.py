"""OpenDocument helpers (odfpy) shared by the .ods, .odp and .odt readers."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from assistant.types import ReaderError

from ._common import MergedCells, cell_text

__all__ = ["load_odf", "local", "text_of", "odf_rows", "block_lines"]

_MAX_REPEAT = 1000  # a non-empty row "repeated" more often than this is shown this often
_ROW_CONTAINERS = {"table-header-rows", "table-row-group", "table-rows"}


def load_odf(path: Path, kind: str):
    """The odfpy document; ReaderError for a file odfpy cannot load (call open_zip_container first)."""
    from odf.opendocument import load

    try:
        return load(str(path))
    except Exception as e:
        raise ReaderError(f"not a valid {kind}: {e or type(e).__name__}") from e


def local(element) -> str:
    """The element's name without its namespace ("table-cell"); "" for text nodes."""
    qname = getattr(element, "qname", None)
    return qname[1] if qname else ""


def text_of(element) -> str:
    from odf import teletype

    return " ".join(teletype.extractText(element).split())


def _int(element, attribute: str) -> int:
    try:
        return max(1, int(element.getAttribute(attribute) or 1))
    except (TypeError, ValueError):
        return 1


def _table_rows(element) -> Iterator:
    for child in element.childNodes:
        name = local(child)
        if name == "table-row":
            yield child
        elif name in _ROW_CONTAINERS:
            yield from _table_rows(child)


def _cell_value(cell) -> str:
    text = text_of(cell)
    if text:
        return text
    for attribute in ("value", "datevalue", "timevalue", "booleanvalue", "stringvalue"):
        value = cell.getAttribute(attribute)
        if value:
            return cell_text(value)
    return ""


def odf_rows(table) -> Iterator[tuple[int, list[str]]]:
    """(row number, cell texts) of a table:table; repeated rows and cells expanded, spans filled."""
    merged = MergedCells()
    number = 0
    for row in _table_rows(table):
        values: list[str] = []
        blanks = 0  # empty cells not yet added: trailing ones never are
        for cell in row.childNodes:
            if local(cell) not in ("table-cell", "covered-table-cell"):
                continue
            repeat = _int(cell, "numbercolumnsrepeated")
            value = _cell_value(cell) if local(cell) == "table-cell" else ""
            if not value:
                blanks += repeat
                continue
            values.extend([""] * blanks)
            blanks = 0
            column = len(values) + 1
            rows_spanned, columns_spanned = _int(cell, "numberrowsspanned"), _int(cell, "numbercolumnsspanned")
            merged.add(number + 1, column, number + rows_spanned, column + columns_spanned - 1)
            values.extend([value] * min(repeat, _MAX_REPEAT))
        repeat = _int(row, "numberrowsrepeated")
        if not values:
            number += repeat
            continue
        for _ in range(min(repeat, _MAX_REPEAT)):
            number += 1
            yield number, merged.fill(number, list(values))
        number += repeat - min(repeat, _MAX_REPEAT)


def _plain_table(table) -> list[str]:
    return [" | ".join(values) for _, values in odf_rows(table)]


def block_lines(element, headings: list[tuple[int, int, str]], lines: list[str], *, table=_plain_table, skip=()) -> None:
    """Paragraphs, headings, lists and tables of an ODF body, in order, appended to ``lines``.

    A heading (text:h) is recorded in ``headings`` as (line index, outline level, text);
    ``table(element)`` gives a table's lines (default: one per row, "cell | cell");
    elements named in ``skip`` are left out.
    """
    for child in element.childNodes:
        name = local(child)
        if name == "h":
            text = text_of(child)
            if text:
                headings.append((len(lines), _int(child, "outlinelevel"), text))
                lines.append(text)
        elif name == "p":
            text = text_of(child)
            if text:
                lines.append(text)
        elif name == "table":
            lines.extend(table(child))
        elif name in skip:
            continue
        elif name in ("list", "list-item", "list-header", "section", "frame", "text-box", "notes", "g"):
            block_lines(child, headings, lines, table=table, skip=skip)

"""Spreadsheets (.xlsx, .xlsm via openpyxl; .ods via odfpy): one Section per sheet.

Every row becomes one line that names its sheet, its row and its column
headers (the first non-empty row of the sheet), so a single row is
self-describing when retrieved::

    Sheet "Prices", row 14: Model: K3 · Price: 899 · SKU: LR-K3

``heading`` is the sheet name and line N of a Section is row N of its sheet
(``start_line`` is the first row shown; skipped empty rows are blank lines, a
long run of them starts a new Section). Values, not formulas: the values a
spreadsheet program saved with the file. Hidden sheets are read too; a merged
range's value fills all its cells (a header spanning two columns names both).
The ZIP container is checked before parsing (``open_zip_container``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar, Iterator

from assistant.types import Document, ReaderError, Section

from ._common import MergedCells, cell_text, empty, is_empty_file, open_zip_container, rows_as_sections, table_lines
from ._odf import load_odf, odf_rows

_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]+)(\d+):([A-Z]+)(\d+)"')


def _column(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n


def _xlsx_merges(archive, sheet_path: str) -> MergedCells:
    """The merged ranges of one sheet, from its XML (read-only openpyxl does not expose them)."""
    merged = MergedCells()
    tail = b""
    with archive.open(sheet_path) as f:
        while block := f.read(1 << 20):
            data = tail + block
            for m in _MERGE.finditer(data):
                merged.add(int(m[2]), _column(m[1]), int(m[4]), _column(m[3]))
            cut = data.rfind(b"<")
            tail = data[cut:] if cut >= 0 and b">" not in data[cut:] else b""
    return merged


def _where(sheet: str) -> str:
    return 'Sheet "' + sheet.replace("{", "{{").replace("}", "}}") + '", row {row}'


class SpreadsheetReader:
    suffixes: ClassVar[tuple[str, ...]] = (".xlsx", ".xlsm", ".ods")

    def __init__(self, *, max_rows: int = 100_000, max_unzipped_mb: float = 512.0) -> None:
        self.max_rows = max_rows
        self.max_unzipped_mb = max_unzipped_mb

    def read(self, path: Path) -> Document:
        path = Path(path)
        file_type = "ods" if path.suffix.lower() == ".ods" else "xlsx"
        if is_empty_file(path):
            return empty(file_type)
        open_zip_container(path, file_type.upper(), max_unzipped_mb=self.max_unzipped_mb)
        sheets = self._ods(path) if file_type == "ods" else self._xlsx(path)
        sections: list[Section] = []
        names = []
        try:
            for name, rows in sheets:
                names.append(name)
                sections.extend(rows_as_sections(table_lines(rows, _where(name), max_rows=self.max_rows), heading=name))
        except ReaderError:
            raise
        except Exception as e:
            raise ReaderError(f"not a valid {file_type.upper()}: {e or type(e).__name__}") from e
        return Document(sections=sections, metadata={"file_type": file_type, "sheets": len(names)})

    def _xlsx(self, path: Path) -> Iterator[tuple[str, Iterator[tuple[int, list[str]]]]]:
        import openpyxl

        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
        except Exception as e:
            raise ReaderError(f"not a valid XLSX: {e or type(e).__name__}") from e
        try:
            for ws in wb.worksheets:  # hidden sheets too; chart sheets have no cells
                merged = _xlsx_merges(wb._archive, ws._worksheet_path)
                ws.reset_dimensions()  # a stale <dimension> must not cut rows off

                def rows(ws=ws, merged=merged) -> Iterator[tuple[int, list[str]]]:
                    for number, values in enumerate(ws.iter_rows(min_row=1, values_only=True), start=1):
                        yield number, merged.fill(number, [cell_text(v) for v in values])

                yield ws.title, rows()
        finally:
            wb.close()

    def _ods(self, path: Path) -> Iterator[tuple[str, Iterator[tuple[int, list[str]]]]]:
        from odf.table import Table

        doc = load_odf(path, "ODS")
        for table in doc.spreadsheet.getElementsByType(Table):
            yield table.getAttribute("name") or "Sheet", odf_rows(table)

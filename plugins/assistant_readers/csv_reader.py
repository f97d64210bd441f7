"""CSV and TSV (.csv, .tsv): each row as "header1: value1 · header2: value2".

The first row is the header. Rows are grouped into Sections of ``rows_per_section``
rows; ``start_line`` is the file line of the section's first row, and a row
spanning several file lines (quoted newlines) keeps them, so every row sits on
its real file line. The delimiter of a .csv file is sniffed among , ; | and tab.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import ClassVar

from assistant.types import Document, ReaderError, Section

from ._common import empty, read_text, row_with_headers

csv.field_size_limit(16 * 1024 * 1024)


def _render(header: list[str], row: list[str]) -> str:
    return row_with_headers(header, [v.replace("\n", " ") for v in row])


class CsvReader:
    suffixes: ClassVar[tuple[str, ...]] = (".csv", ".tsv")

    def __init__(self, *, rows_per_section: int = 20, max_rows: int = 100_000) -> None:
        self.rows_per_section = max(1, rows_per_section)
        self.max_rows = max_rows

    def read(self, path: Path) -> Document:
        text = read_text(path)
        if not text.strip():
            return empty("csv")
        delimiter = "\t" if Path(path).suffix.lower() == ".tsv" else self._sniff(text)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        rows: list[tuple[int, str]] = []  # (file line, rendered row)
        header: list[str] | None = None
        truncated = False
        try:
            last = 0
            for record in reader:
                first, last = last + 1, reader.line_num
                if not any(v.strip() for v in record):
                    continue
                if header is None:
                    header = record
                    continue
                if len(rows) >= self.max_rows:
                    truncated = True
                    break
                rendered = _render(header, record)
                # keep the row's own line count so later rows stay on their file lines
                rendered += "\n" * max(0, (last - first) - rendered.count("\n"))
                rows.append((first, rendered))
        except csv.Error as e:
            raise ReaderError(f"not valid CSV at line {reader.line_num}: {e}") from e
        sections = []
        for i in range(0, len(rows), self.rows_per_section):
            group = rows[i : i + self.rows_per_section]
            lines: list[str] = []
            for line_no, rendered in group:
                lines.extend([""] * (line_no - group[0][0] - len(lines)))  # skipped blank lines
                lines.extend(rendered.split("\n"))
            sections.append(Section(text="\n".join(lines).rstrip(), start_line=group[0][0]))
        meta = {"file_type": "csv", "rows": len(rows)}
        if truncated:
            meta["truncated_at_rows"] = self.max_rows
        return Document(sections=sections, metadata=meta)

    @staticmethod
    def _sniff(text: str) -> str:
        try:
            return csv.Sniffer().sniff(text[:20000], delimiters=",;|\t").delimiter
        except csv.Error:
            return ","

"""Helpers shared by the built-in readers: text decoding and line-based sections.

Line numbers everywhere count ``"\\n"`` only: decoded text has its line endings
normalised (``\\r\\n`` and ``\\r`` become ``\\n``), so a Section's lines are
``text.split("\\n")`` and line ``start_line + k`` is ``text.split("\\n")[k]``.
"""

from __future__ import annotations

import codecs
import datetime as _dt
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable

from assistant.types import Document, ReaderError, Section

__all__ = [
    "decode_bytes",
    "looks_binary",
    "read_text",
    "empty",
    "is_empty_file",
    "HeadingPath",
    "section_from_lines",
    "split_at_headings",
    "stack_blocks",
    "row_with_headers",
    "open_zip_container",
    "render_row",
    "rows_as_sections",
    "cell_text",
    "MergedCells",
    "table_lines",
]

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_TEXT_CONTROLS = {9, 10, 11, 12, 13, 27}  # tab, newlines, vertical tab, form feed, escape
_BINARY = "binary content, not text"
_PREFERRED = ("cp1252", "latin_1", "iso8859_15")


def looks_binary(data: bytes) -> bool:
    sample = data[:65536]
    if b"\x00" in sample:
        return True
    controls = sum(1 for b in sample if b < 32 and b not in _TEXT_CONTROLS)
    return controls > len(sample) * 0.05


def _mostly_unprintable(text: str) -> bool:
    """For a guessed decoding: control characters, or too few letters, digits and spaces."""
    sample = text[:65536]
    bad = sum(1 for ch in sample if (ord(ch) < 32 and ord(ch) not in _TEXT_CONTROLS) or 0x7F <= ord(ch) < 0xA0 or ch == "\ufffd")
    wordy = sum(1 for ch in sample if ch.isalnum() or ch.isspace())
    return bad > len(sample) * 0.05 or wordy < len(sample) * 0.5


def decode_bytes(data: bytes) -> str:
    """Bytes -> text with ``\\n`` line endings; ReaderError for binary or undecodable data."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as e:
                raise ReaderError(f"cannot decode text as {codec.upper()} despite its byte-order mark: {e.reason}") from e
            return _normalise(text.lstrip("\ufeff"))
    if looks_binary(data):
        raise ReaderError(_BINARY)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        matches = from_bytes(data)
        best = matches.best()
        if best is None:
            raise ReaderError("cannot decode text: not UTF-8 and no other encoding fits") from None
        # equally good guesses (cp1250 vs cp1252 for short French text): prefer the Western ones
        tied = {m.encoding: m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)}
        best = next((tied[e] for e in _PREFERRED if e in tied), best)
        text = str(best)
        if _mostly_unprintable(text):
            raise ReaderError(_BINARY)
    return _normalise(text)


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_text(path: Path) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ReaderError(f"cannot read file: {e.strerror or e}") from e
    return decode_bytes(data)


def empty(file_type: str) -> Document:
    return Document(sections=[], metadata={"file_type": file_type})


def is_empty_file(path: Path) -> bool:
    """True for a zero-byte (or unreadable-size) file; binary readers return ``empty`` for it."""
    try:
        return Path(path).stat().st_size == 0
    except OSError as e:
        raise ReaderError(f"cannot read file: {e.strerror or e}") from e


class HeadingPath:
    """Nested headings -> "Install > Linux"; ``push(level, text)`` returns the path."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    def push(self, level: int, text: str) -> str:
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, " ".join(text.split())))
        return " > ".join(t for _, t in self._stack if t)


def section_from_lines(
    lines: list[str], start: int, end: int, *, first_line: int = 1, heading: str | None = None, page: int | None = None
) -> Section | None:
    """``lines[start:end]`` as a Section, blank lines trimmed at both ends; None when nothing is left.

    ``first_line`` is the line number of ``lines[0]``.
    """
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    if start >= end:
        return None
    text = "\n".join(line.rstrip() for line in lines[start:end])
    return Section(text=text, page=page, start_line=first_line + start, heading=heading)


def split_at_headings(
    lines: list[str], headings: list[tuple[int, int, str]], *, first_line: int = 1, page: int | None = None
) -> list[Section]:
    """Split ``lines`` into sections, each starting at a heading.

    ``headings`` are (index into lines, level, text) in document order; the text
    before the first heading is a section with no heading.
    """
    path = HeadingPath()
    bounds: list[tuple[int, str | None]] = [(0, None)]
    for index, level, text in headings:
        bounds.append((index, path.push(level, text)))
    sections = []
    for i, (start, heading) in enumerate(bounds):
        end = bounds[i + 1][0] if i + 1 < len(bounds) else len(lines)
        section = section_from_lines(lines, start, end, first_line=first_line, heading=heading, page=page)
        if section is not None:
            sections.append(section)
    return sections


def stack_blocks(blocks: list[tuple[str, str | None]], *, first_line: int = 1, page: int | None = None) -> list[Section]:
    """Blocks of derived text (chapters, cells, messages) laid out one after another.

    Each block becomes one Section; a blank line separates blocks in the derived
    text, so ``start_line`` counts lines of the whole derived text.
    """
    sections = []
    line = first_line
    for text, heading in blocks:
        lines = text.split("\n")
        section = section_from_lines(lines, 0, len(lines), heading=heading, page=page)
        if section is not None:  # leading blank lines are dropped, not counted
            sections.append(replace(section, start_line=line))
            line += section.text.count("\n") + 2
    return sections


# --- ZIP-based formats (xlsx, pptx, odt, ods, odp) -----------------------------

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # encrypted OOXML and legacy .xls/.ppt/.doc
MAX_UNZIPPED_MB = 512.0
MAX_ZIP_ENTRIES = 10_000
MAX_ZIP_RATIO = 200  # uncompressed / compressed, for an entry over 1 MB: XML rarely passes 50


def open_zip_container(path: Path, kind: str, *, max_unzipped_mb: float = MAX_UNZIPPED_MB) -> None:
    """Refuse a file before a parser unpacks it: not a ZIP, encrypted, or a zip bomb.

    Reads only the central directory (sizes as declared; the parsers' own
    zipfile reads stop at the declared size, so a lying entry cannot exceed it).
    Raises ReaderError naming ``kind`` ("XLSX") and the limit that was hit.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise ReaderError(f"cannot read file: {e.strerror or e}") from e
    if head == _OLE_MAGIC:
        raise ReaderError(f"not a valid {kind}: an encrypted (password-protected) or legacy binary Office file")
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise ReaderError(f"not a valid {kind}: {e or type(e).__name__}") from e
    if len(infos) > MAX_ZIP_ENTRIES:
        raise ReaderError(f"refused {kind}: {len(infos)} entries in the archive (limit {MAX_ZIP_ENTRIES}), a zip bomb?")
    total = sum(i.file_size for i in infos)
    if total > max_unzipped_mb * 1024 * 1024:
        raise ReaderError(f"refused {kind}: {total / 1e6:.0f} MB uncompressed (limit {max_unzipped_mb:g} MB), a zip bomb?")
    for i in infos:
        if i.file_size > 1 << 20 and i.file_size > MAX_ZIP_RATIO * max(i.compress_size, 1):
            raise ReaderError(f"refused {kind}: {i.filename} expands {i.file_size // max(i.compress_size, 1)}x (limit {MAX_ZIP_RATIO}x), a zip bomb?")
        if i.flag_bits & 0x1:
            raise ReaderError(f"not a valid {kind}: encrypted entries")


# --- tables (spreadsheets, slide tables) ----------------------------------------


def cell_text(value: Any) -> str:
    """A cell value as the text a person reads: 12.0 -> "12", a datetime at midnight -> its date."""
    kind = type(value)  # the common cases first: this runs for every cell
    if kind is str:
        return " ".join(value.split())
    if value is None:
        return ""
    if kind is int:
        return str(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, _dt.datetime):
        return value.date().isoformat() if value.time() == _dt.time() else value.isoformat(sep=" ")
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    return " ".join(str(value).split())


def render_row(values: list[str], header: list[str] | None, *, where: str = "") -> str:
    """One table row as a self-describing line: 'Sheet "Prices", row 14: Model: K3 · Price: 899'.

    Empty cells are left out; a column without a header is "column N".
    """
    pairs = []
    for i, value in enumerate(values):
        if not value:
            continue
        if header is None:
            pairs.append(value)
            continue
        name = header[i] if i < len(header) and header[i] else f"column {i + 1}"
        pairs.append(f"{name}: {value}")
    text = " · ".join(pairs)
    return f"{where}: {text}" if where else text


def rows_as_sections(rows: Iterable[tuple[int, str]], *, heading: str | None, page: int | None = None, max_gap: int = 20) -> list[Section]:
    """(line number, line) pairs, increasing, as Sections whose lines are those numbers.

    Lines skipped in between become blank lines, so line N of a sheet is its row
    N; a gap of more than ``max_gap`` starts a new Section instead.
    """
    sections: list[Section] = []
    lines: list[str] = []
    first = last = 0
    for number, line in rows:
        if lines and number - last > max_gap:
            sections.append(Section(text="\n".join(lines), page=page, start_line=first, heading=heading))
            lines = []
        if not lines:
            first = number
        else:
            lines.extend([""] * (number - last - 1))
        lines.append(line)
        last = number
    if lines:
        sections.append(Section(text="\n".join(lines), page=page, start_line=first, heading=heading))
    return sections


class MergedCells:
    """Merged ranges of a table: the top-left value fills every cell of its range.

    ``add(r1, c1, r2, c2)`` with 1-based inclusive bounds; ``fill(r, values)``
    for each row in order (``values`` is changed in place and returned).
    """

    def __init__(self) -> None:
        self._ranges: list[tuple[int, int, int, int]] = []
        self._values: dict[tuple[int, int], str] = {}

    def add(self, r1: int, c1: int, r2: int, c2: int) -> None:
        if (r2, c2) != (r1, c1):
            self._ranges.append((r1, c1, r2, c2))

    def fill(self, row: int, values: list[str]) -> list[str]:
        for r1, c1, r2, c2 in self._ranges:
            if not r1 <= row <= r2:
                continue
            if row == r1 and c1 <= len(values):
                self._values[(r1, c1)] = values[c1 - 1]
            value = self._values.get((r1, c1), "")
            if not value:
                continue
            if len(values) < c2:
                values.extend([""] * (c2 - len(values)))
            for c in range(c1, c2 + 1):
                if not values[c - 1]:
                    values[c - 1] = value
        return values


def table_lines(rows: Iterable[tuple[int, list[str]]], where: str, *, max_rows: int | None = None) -> Iterable[tuple[int, str]]:
    """(row number, cell texts) -> (row number, line): the first row with two different values is the header.

    Every later row is rendered with the headers (``render_row``), prefixed by
    ``where.format(row=N)``; the header row is a line of its own; rows above it
    with one value (a title, merged over the table or not) are lines as they
    are; empty rows are skipped. Stops after ``max_rows`` data rows.
    """
    header: list[str] | None = None
    count = 0
    for number, values in rows:
        if not any(values):
            continue
        prefix = where.format(row=number)
        if header is None:
            distinct = list(dict.fromkeys(v for v in values if v))
            if len(distinct) == 1:
                yield number, f"{prefix}: {distinct[0]}"
                continue
            header = values
            yield number, f"{prefix} (headers): " + " · ".join(v for v in values if v)
            continue
        if max_rows is not None and count >= max_rows:
            return
        count += 1
        yield number, render_row(values, header, where=prefix)


def row_with_headers(header: list[str], row: list[str]) -> str:
    """One table row that says what each value is: "Product: Ferrow 3 · Weight: 12.8 kg · SKU: FR-3-BL".

    A retrieved row then answers on its own, without the header row it came under (CSV, DOCX,
    HTML and Markdown tables; spreadsheets and slides add where the row is, see ``render_row``).
    """
    return render_row([" ".join(v.split()) for v in row], [" ".join(h.split()) for h in header])

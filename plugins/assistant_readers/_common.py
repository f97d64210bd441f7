"""Helpers shared by the built-in readers: text decoding and line-based sections.

Line numbers everywhere count ``"\\n"`` only: decoded text has its line endings
normalised (``\\r\\n`` and ``\\r`` become ``\\n``), so a Section's lines are
``text.split("\\n")`` and line ``start_line + k`` is ``text.split("\\n")[k]``.
"""

from __future__ import annotations

import codecs
from dataclasses import replace
from pathlib import Path

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


def row_with_headers(header: list[str], row: list[str]) -> str:
    """One table row that says what each value is: "Product: Ferrow 3 · Weight: 12.8 kg · SKU: FR-3-BL".

    A retrieved row then answers on its own, without the header row it came under.
    Empty cells are left out; a column with no header name is "column N".
    """
    pairs = []
    for i, value in enumerate(row):
        value = " ".join(value.split())
        if not value:
            continue
        name = " ".join(header[i].split()) if i < len(header) and header[i].strip() else f"column {i + 1}"
        pairs.append(f"{name}: {value}")
    return " · ".join(pairs)

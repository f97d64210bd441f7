"""Rich Text Format (.rtf) via striprtf: the plain text, one Section.

``start_line`` counts lines of the text striprtf derives (one per paragraph
or line break). A file that does not start with ``{\\rtf`` is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from assistant.types import Document, ReaderError

from ._common import empty, is_empty_file, section_from_lines


class RtfReader:
    suffixes: ClassVar[tuple[str, ...]] = (".rtf",)

    def __init__(self, *, encoding: str = "cp1252") -> None:
        self.encoding = encoding  # for 8-bit \\'xx escapes when the file names no \\ansicpg

    def read(self, path: Path) -> Document:
        from striprtf.striprtf import rtf_to_text

        if is_empty_file(path):
            return empty("rtf")
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise ReaderError(f"cannot read file: {e.strerror or e}") from e
        if not data.lstrip()[:5] == b"{\\rtf":
            raise ReaderError("not a valid RTF: it does not start with {\\rtf")
        try:
            text = rtf_to_text(data.decode("latin-1"), encoding=self.encoding, errors="replace")
        except Exception as e:
            raise ReaderError(f"not a valid RTF: {e or type(e).__name__}") from e
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        section = section_from_lines(lines, 0, len(lines))
        return Document(sections=[section] if section else [], metadata={"file_type": "rtf"})

"""Plain text (.txt, .text, .log): the whole file as one Section with real file lines."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from assistant.types import Document

from ._common import empty, read_text, section_from_lines


class TextReader:
    suffixes: ClassVar[tuple[str, ...]] = (".txt", ".text", ".log")

    def __init__(self) -> None:
        pass

    def read(self, path: Path) -> Document:
        lines = read_text(path).split("\n")
        section = section_from_lines(lines, 0, len(lines))
        if section is None:
            return empty("text")
        return Document(sections=[section], metadata={"file_type": "text"})

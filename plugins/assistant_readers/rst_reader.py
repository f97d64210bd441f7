"""reStructuredText (.rst): sections split at titles found by the underline convention.

A title is a text line (non-indented unless overlined) followed by a line of one repeated
punctuation character at least as long (optionally with an overline too).
Levels follow the order in which adornment styles first appear, as docutils does.
Lines are the real file lines; the title is the first section title.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from assistant.types import Document

from ._common import empty, read_text, split_at_headings

_ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1{2,}\s*$")


def rst_headings(lines: list[str]) -> list[tuple[int, int, str]]:
    styles: list[tuple[str, bool]] = []
    out = []
    i = 0
    while i + 1 < len(lines):
        title, under = lines[i], lines[i + 1]
        m = _ADORNMENT.match(under)
        over = bool(m) and i > 0 and lines[i - 1].rstrip() == under.rstrip()
        if (
            m
            and title.strip()
            and (over or not title[0].isspace())
            and not _ADORNMENT.match(title)
            and len(under.rstrip()) >= len(title.rstrip())
        ):
            style = (m.group(1), over)
            if style not in styles:
                styles.append(style)
            start = i - 1 if over else i
            out.append((start, styles.index(style) + 1, title.strip()))
            i += 2
            continue
        i += 1
    return out


class RstReader:
    suffixes: ClassVar[tuple[str, ...]] = (".rst",)

    def __init__(self) -> None:
        pass

    def read(self, path: Path) -> Document:
        text = read_text(path)
        if not text.strip():
            return empty("rst")
        lines = text.split("\n")
        headings = rst_headings(lines)
        title = headings[0][2] if headings else None
        return Document(sections=split_at_headings(lines, headings), title=title, metadata={"file_type": "rst"})

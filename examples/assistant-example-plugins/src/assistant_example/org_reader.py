"""A reader plugin for Emacs org-mode files (``.org``).

Every heading starts a section; ``heading`` is the heading path without TODO
keywords, priorities or tags ("Garden > Planting"). Section text is the file's
own lines, so ``start_line`` is the real line in the file. Lines that are markup
rather than content are left out, and a section is split around them:
``#+KEYWORD:`` lines (``#+TITLE:`` becomes the document title), ``#+BEGIN_``/
``#+END_`` block markers, ``# comment`` lines and, unless ``keep_drawers`` is
set, property/logbook drawers (``:PROPERTIES:`` ... ``:END:``).

Settings (``[plugins.org]`` in config.toml): ``keep_drawers = true`` indexes
the drawers too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from assistant.types import Document, ReaderError, Section

__all__ = ["OrgReader", "org_heading"]

_HEADING = re.compile(r"^(\*+)\s+(.*)$")
_TODO = re.compile(r"^(?:TODO|DONE|NEXT|WAITING|CANCELLED|CANCELED)\b\s*")
_PRIORITY = re.compile(r"^\[#[A-Za-z0-9]\]\s*")
_TAGS = re.compile(r"\s+:(?:[\w@#%]+:)+\s*$")
_KEYWORD = re.compile(r"^\s*#\+(\w+):\s*(.*)$")
_BLOCK = re.compile(r"^\s*#\+(?:begin|end)_\w*", re.I)
_COMMENT = re.compile(r"^\s*#(?:\s|$)")
_DRAWER_START = re.compile(r"^\s*:([\w-]+):\s*$")
_DRAWER_END = re.compile(r"^\s*:END:\s*$", re.I)


def org_heading(line: str) -> tuple[int, str] | None:
    """(level, clean text) for a heading line, else None."""
    m = _HEADING.match(line)
    if not m:
        return None
    text = _TAGS.sub("", m.group(2))
    text = _PRIORITY.sub("", _TODO.sub("", text))
    return len(m.group(1)), " ".join(text.split())


def _decode(data: bytes) -> str:
    sample = data[:65536]
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    if b"\x00" in sample or controls > len(sample) * 0.05:
        raise ReaderError("binary content, not an org file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ReaderError(f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _closes(lines: list[str], after: int) -> bool:
    """A drawer is one only if an ``:END:`` line follows before the next heading."""
    for line in lines[after:]:
        if _DRAWER_END.match(line):
            return True
        if _HEADING.match(line):
            return False
    return False


class OrgReader:
    suffixes: ClassVar[tuple[str, ...]] = (".org",)

    def __init__(self, *, keep_drawers: bool = False) -> None:
        self.keep_drawers = keep_drawers

    def read(self, path: Path) -> Document:
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise ReaderError(f"cannot read file: {e.strerror or e}") from e
        lines = _decode(data).split("\n")
        title: str | None = None
        stack: list[tuple[int, str]] = []
        heading: str | None = None
        sections: list[Section] = []
        run: list[tuple[int, str]] = []  # (line number, line) of the section being built

        def flush() -> None:
            while run and not run[-1][1].strip():
                run.pop()
            while run and not run[0][1].strip():
                run.pop(0)
            if run:
                sections.append(Section(text="\n".join(t for _, t in run), start_line=run[0][0], heading=heading))
            run.clear()

        in_drawer = False
        for number, raw in enumerate(lines, start=1):
            line = raw.rstrip()
            if in_drawer:
                if _DRAWER_END.match(line):
                    in_drawer = False
                if self.keep_drawers:
                    run.append((number, line))
                continue
            if (h := org_heading(line)) is not None:
                flush()
                level, text = h
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, text))
                heading = " > ".join(t for _, t in stack if t) or None
                run.append((number, line))
                continue
            if _DRAWER_START.match(line) and not _DRAWER_END.match(line) and _closes(lines, number):
                in_drawer = True
                if self.keep_drawers:
                    run.append((number, line))
                else:
                    flush()
                continue
            if (m := _KEYWORD.match(line)) or _BLOCK.match(line) or _COMMENT.match(line):
                if m and m.group(1).lower() == "title" and title is None:
                    title = m.group(2).strip() or None
                flush()
                continue
            run.append((number, line))
        flush()
        return Document(sections=sections, title=title, metadata={"file_type": "org"})

"""Markdown (.md, .markdown): sections split at headings (markdown-it-py token maps).

Each Section starts at its heading's file line; ``heading`` is the heading path
("Install > Linux"). The title is the first level-1 heading. A YAML front-matter
block is kept as text but never mistaken for a heading.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from markdown_it import MarkdownIt

from assistant.types import Document

from ._common import empty, read_text, row_with_headers, split_at_headings

_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def tables_with_headers(lines: list[str]) -> list[str]:
    """Pipe-table rows rewritten to carry their header names ("Item: Weight · Value: 11.8 kg"),
    one line per row, so every line stays on its file line (the separator row becomes blank)."""
    out = list(lines)
    i = 0
    while i + 1 < len(lines):
        if "|" in lines[i] and _TABLE_SEP.match(lines[i + 1]) and "-" in lines[i + 1]:
            header = _cells(lines[i])
            out[i + 1] = ""
            j = i + 2
            while j < len(lines) and "|" in lines[j] and lines[j].strip():
                out[j] = row_with_headers(header, _cells(lines[j]))
                j += 1
            i = j
        else:
            i += 1
    return out


_FRONT_MATTER = re.compile(r"\A---\n.*?\n(?:---|\.\.\.)\n", re.S)


def inline_text(token) -> str:
    parts = [c.content if c.type in ("text", "code_inline") else " " for c in token.children or [] if c.type in ("text", "code_inline", "softbreak")]
    return " ".join("".join(parts).split()) or token.content.strip()


def markdown_headings(text: str) -> list[tuple[int, int, str]]:
    """(0-based line, level, text) for every heading in ``text``."""
    front = _FRONT_MATTER.match(text)
    if front:  # blank it out, keeping the line count
        text = "\n" * front.group(0).count("\n") + text[front.end():]
    tokens = MarkdownIt("commonmark").parse(text)
    out = []
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.map:
            out.append((tok.map[0], int(tok.tag[1]), inline_text(tokens[i + 1])))
    return out


class MarkdownReader:
    suffixes: ClassVar[tuple[str, ...]] = (".md", ".markdown")

    def __init__(self) -> None:
        pass

    def read(self, path: Path) -> Document:
        text = read_text(path)
        if not text.strip():
            return empty("markdown")
        headings = markdown_headings(text)
        title = next((t for _, level, t in headings if level == 1 and t), None)
        sections = split_at_headings(tables_with_headers(text.split("\n")), headings)
        # a heading with no body of its own lives on in the next section's heading path
        sections = [
            s for i, s in enumerate(sections)
            if i + 1 == len(sections) or not (s.heading and s.text.strip().startswith("#") and "\n" not in s.text.strip())
        ]
        return Document(sections=sections, title=title, metadata={"file_type": "markdown"})

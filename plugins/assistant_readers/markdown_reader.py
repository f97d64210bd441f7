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

from ._common import empty, read_text, split_at_headings

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
        sections = split_at_headings(text.split("\n"), headings)
        # a heading with no body of its own lives on in the next section's heading path
        sections = [
            s for i, s in enumerate(sections)
            if i + 1 == len(sections) or not (s.heading and s.text.strip().startswith("#") and "\n" not in s.text.strip())
        ]
        return Document(sections=sections, title=title, metadata={"file_type": "markdown"})

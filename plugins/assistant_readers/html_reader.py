"""HTML (.html, .htm): visible text via beautifulsoup4, sections split at h1-h6.

The extracted text has one line per block element (paragraph, list item, table
row as "cell | cell", heading, ...), with blank lines dropped; ``start_line``
counts lines of that text. The title comes from <title>, else the first <h1>.
``html_to_lines`` is shared with the EPUB and e-mail readers.

Markup nested deeper than ``MAX_DEPTH`` elements (measured first with lxml's
pull parser, in C, linear) is not given to BeautifulSoup, whose tree edits
take time quadratic in the depth (issue 18: 20k nested tags took 103 s):
its text is taken with the tags stripped instead, one line per block tag, so
nothing is lost but the headings. Real pages nest a few dozen deep.
"""

from __future__ import annotations

import html
import re
import warnings
from pathlib import Path
from typing import ClassVar

from bs4 import BeautifulSoup, Comment, Declaration, Doctype, ProcessingInstruction

from assistant.types import Document

from ._common import empty, read_text, split_at_headings, row_with_headers

_HIDDEN = ["script", "style", "noscript", "template", "head", "iframe", "object", "svg"]
_BLOCK = [
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tr", "ul", "option", "textarea",
]  # fmt: skip
_MARK = "\ue000"  # (private use) marks the start of a heading's text; removed from the input first
_NON_TEXT = (Comment, Declaration, Doctype, ProcessingInstruction)
MAX_DEPTH = 200
_HIDDEN_BLOCK = re.compile(r"<(script|style|noscript|template|head|svg)\b.*?</\1\s*>", re.I | re.S)
_BLOCK_TAG = re.compile(r"</?(?:%s|br|h[1-6])\b[^>]*>" % "|".join(_BLOCK), re.I)
_ANY_TAG = re.compile(r"<[^>]*>|<!--.*?-->", re.S)
_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.I | re.S)


def _deeper_than(markup: str | bytes, limit: int) -> bool:
    """True when elements nest more than ``limit`` deep (lxml's HTML parser, events only)."""
    from lxml import etree

    parser = etree.HTMLPullParser(events=("start", "end"))
    depth = 0
    for i in range(0, len(markup), 1 << 16):
        parser.feed(markup[i : i + (1 << 16)])
        for event, _ in parser.read_events():
            depth += 1 if event == "start" else -1
            if depth > limit:
                return True
    return False


def _flat_lines(markup: str | bytes) -> tuple[str | None, list[str], list[tuple[int, int, str]]]:
    """``html_to_lines`` for markup too deep for a tree: tags stripped, a line break at each block tag."""
    text = markup.decode("utf-8", "replace") if isinstance(markup, bytes) else markup
    m = _TITLE.search(text)
    title = _clean(html.unescape(_ANY_TAG.sub("", m.group(1)))) if m else ""
    text = _ANY_TAG.sub("", _BLOCK_TAG.sub("\n", _HIDDEN_BLOCK.sub("", text)))
    lines = [_clean(line) for line in html.unescape(text).split("\n")]
    return title or None, [line for line in lines if line], []


def _clean(text: str) -> str:
    return " ".join(text.split())


def html_to_lines(markup: str | bytes) -> tuple[str | None, list[str], list[tuple[int, int, str]]]:
    """(title, non-blank text lines, headings as (line index, level, text))."""
    if _deeper_than(markup, MAX_DEPTH):
        return _flat_lines(markup)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # XHTML parsed as HTML, markup-like text
        soup = BeautifulSoup(markup, "lxml")
    title = _clean(soup.title.get_text(" ")) if soup.title else ""
    for tag in soup.find_all(_HIDDEN):
        tag.decompose()
    for s in soup.find_all(string=True):
        if isinstance(s, _NON_TEXT):
            s.extract()
        elif s.find_parent(["pre", "textarea"]) is None:
            s.replace_with(re.sub(r"\s+", " ", s.replace(_MARK, "")))
        elif _MARK in s:
            s.replace_with(s.replace(_MARK, ""))
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for table in soup.find_all("table"):
        rows = [tr for tr in table.find_all("tr") if tr.find_parent("table") is table]
        cells = [[_clean(c.get_text(" ")) for c in tr.find_all(["td", "th"], recursive=False)] for tr in rows]
        if len(rows) >= 2 and cells[0] and all(cells[0]):
            for tr, row in zip(rows[1:], cells[1:]):  # each row says what its values are
                tr.clear()
                tr.append(row_with_headers(cells[0], row))
    for tr in soup.find_all("tr"):
        for cell in tr.find_all(["td", "th"], recursive=False)[1:]:
            cell.insert_before(" | ")
    for h in soup.find_all(re.compile(r"^h[1-6]$")):
        h.insert(0, _MARK + h.name[1])
    for tag in soup.find_all(_BLOCK):
        if tag.parent is not None:
            tag.insert_before("\n")
            tag.insert_after("\n")
    lines: list[str] = []
    headings: list[tuple[int, int, str]] = []
    pending = 0  # a heading level whose text starts on the next line
    for raw in soup.get_text().split("\n"):
        line = raw.strip()
        level = 0
        if line.startswith(_MARK):
            level, line = int(line[1]), line[2:].strip()
        level = level or pending
        if not line:
            pending = level
            continue
        if level:
            headings.append((len(lines), level, line))
        pending = 0
        lines.append(line)
    if not title:
        title = next((text for _, level, text in headings if level == 1), "")
    return title or None, lines, headings


class HtmlReader:
    suffixes: ClassVar[tuple[str, ...]] = (".html", ".htm")

    def __init__(self) -> None:
        pass

    def read(self, path: Path) -> Document:
        markup = read_text(path)
        if not markup.strip():
            return empty("html")
        title, lines, headings = html_to_lines(markup)
        return Document(sections=split_at_headings(lines, headings), title=title, metadata={"file_type": "html"})

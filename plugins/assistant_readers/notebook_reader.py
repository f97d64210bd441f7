"""Jupyter notebooks (.ipynb): markdown, code and raw cells in order, outputs left out.

Each cell is a Section with heading "cell N (markdown|code|raw)", N counting
every cell from 1. Cells are laid out one after another with a blank line
between them; ``start_line`` counts lines of that extracted text. The title is
the notebook's metadata title, else the first level-1 markdown heading.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from assistant.types import Document, ReaderError

from ._common import empty, read_text, stack_blocks
from .markdown_reader import markdown_headings


def _source(cell: dict) -> str:
    src = cell.get("source", cell.get("input", ""))
    text = "".join(src) if isinstance(src, list) else str(src)
    return text.replace("\r\n", "\n").replace("\r", "\n")


class NotebookReader:
    suffixes: ClassVar[tuple[str, ...]] = (".ipynb",)

    def __init__(self) -> None:
        pass

    def read(self, path: Path) -> Document:
        text = read_text(path)
        if not text.strip():
            return empty("notebook")
        try:
            nb = json.loads(text)
        except json.JSONDecodeError as e:
            raise ReaderError(f"not a valid notebook: {e.msg} (line {e.lineno}, column {e.colno})") from e
        if not isinstance(nb, dict):
            raise ReaderError("not a valid notebook: top level is not an object")
        cells = nb.get("cells")
        if cells is None:  # nbformat 3
            cells = [c for ws in nb.get("worksheets", []) for c in ws.get("cells", [])]
        if not isinstance(cells, list):
            raise ReaderError("not a valid notebook: no list of cells")
        blocks, title = [], None
        for n, cell in enumerate(cells, start=1):
            if not isinstance(cell, dict):
                continue
            kind = cell.get("cell_type", "")
            if kind in ("heading",):  # nbformat 3 heading cells are markdown
                kind = "markdown"
            if kind not in ("markdown", "code", "raw"):
                continue
            source = _source(cell)
            if kind == "markdown" and title is None:
                title = next((t for _, level, t in markdown_headings(source) if level == 1 and t), None)
            blocks.append((source, f"cell {n} ({kind})"))
        meta = nb.get("metadata") or {}
        language = (meta.get("kernelspec") or {}).get("language") or (meta.get("language_info") or {}).get("name")
        metadata = {"file_type": "notebook"}
        if language:
            metadata["language"] = str(language)
        title = meta.get("title") or title
        return Document(sections=stack_blocks(blocks), title=str(title) if title else None, metadata=metadata)

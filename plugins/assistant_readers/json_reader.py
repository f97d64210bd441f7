"""JSON (.json) and JSON Lines (.jsonl, .ndjson).

JSON is flattened to one "a.b[0].c: value" line per leaf, in document order;
``start_line`` counts lines of that flattened text and sections hold at most
``lines_per_section`` lines, split where the top-level key changes (``heading``
= that key). JSON Lines keeps one line per record ("a: 1; b.c: x"), on its real
file line; a line that is not valid JSON is kept as it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Iterator

from assistant.types import Document, ReaderError, Section

from ._common import empty, read_text


def _key(prefix: str, key: str) -> str:
    simple = key.replace("_", "").replace("-", "").isalnum()
    name = key if simple else json.dumps(key, ensure_ascii=False)
    return f"{prefix}.{name}" if prefix else name


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(path, rendered scalar) for every leaf of a JSON value."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from flatten(v, _key(prefix, str(k)))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from flatten(v, f"{prefix}[{i}]")
    else:
        if isinstance(value, str):
            text = " ".join(value.split()) if "\n" in value or "\r" in value else value
        else:
            text = json.dumps(value, ensure_ascii=False)
        yield prefix, text


def _grouped(data: Any) -> Iterator[tuple[str | None, str, str]]:
    """(top-level key or None, path, value) for every leaf."""
    if isinstance(data, dict) and data:
        for k, v in data.items():
            for path, value in flatten(v, _key("", str(k))):
                yield str(k), path, value
    else:
        for path, value in flatten(data):
            yield None, path, value


class JsonReader:
    suffixes: ClassVar[tuple[str, ...]] = (".json", ".jsonl", ".ndjson")

    def __init__(self, *, lines_per_section: int = 40) -> None:
        self.lines_per_section = max(1, lines_per_section)

    def read(self, path: Path) -> Document:
        text = read_text(path)
        if not text.strip():
            return empty("json")
        if Path(path).suffix.lower() in (".jsonl", ".ndjson"):
            return self._read_lines(text)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ReaderError(f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from e
        except RecursionError as e:
            raise ReaderError("not readable JSON: nested too deeply") from e
        sections: list[Section] = []
        lines: list[str] = []
        group, start = None, 1
        for number, (top, key, value) in enumerate(_grouped(data), start=1):
            if lines and (top != group or len(lines) >= self.lines_per_section):
                sections.append(Section(text="\n".join(lines), start_line=start, heading=group))
                lines, start = [], number
            group = top
            lines.append(f"{key}: {value}" if key else value)
        if lines:
            sections.append(Section(text="\n".join(lines), start_line=start, heading=group))
        return Document(sections=sections, metadata={"file_type": "json"})

    def _read_lines(self, text: str) -> Document:
        sections: list[Section] = []
        block: list[str] = []
        start = 0
        for number, raw in enumerate(text.split("\n"), start=1):
            if not raw.strip():
                line = ""
            else:
                try:
                    line = "; ".join(f"{k}: {v}" if k else v for k, v in flatten(json.loads(raw)))
                except (json.JSONDecodeError, RecursionError):
                    line = raw.strip()
            if line and not block:
                start = number
            if block or line:
                block.append(line)
            if sum(1 for b in block if b) >= self.lines_per_section:
                sections.append(Section(text="\n".join(block).rstrip("\n"), start_line=start))
                block = []
        if any(block):
            sections.append(Section(text="\n".join(block).rstrip("\n"), start_line=start))
        return Document(sections=sections, metadata={"file_type": "json"})

"""Use a llama-index reader (anything with ``load_data(file)``) as a reader plugin.

    def GeoJsonReader(*, levels_back: int = 0):  # an assistant.readers entry point
        return LlamaIndexReader("llama_index.core.readers.json:JSONReader", (".geojson",), levels_back=levels_back)

``reader_cls`` is a class or a ``"module:Class"`` string; it is imported and
built with ``reader_kwargs`` on the first ``read``, so listing and loading the
plugin never imports llama-index. Each llama-index Document becomes a Section:
numeric ``page_label`` (or ``page``) metadata becomes ``page`` and its lines
count from 1 in that page; other documents are laid out one after another, a
blank line apart, and ``start_line`` counts lines of that derived text.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any, Iterable

from .types import Document, Section

__all__ = ["LlamaIndexReader"]

_PAGE_KEYS = ("page_label", "page")


class LlamaIndexReader:
    def __init__(self, reader_cls: Any, suffixes: Iterable[str], *, file_type: str | None = None, **reader_kwargs: Any):
        self.suffixes = tuple(s.lower() for s in suffixes)
        self.file_type = file_type or self.suffixes[0].lstrip(".")
        self._cls, self._kwargs, self._reader = reader_cls, reader_kwargs, None

    def _llama_reader(self) -> Any:
        if self._reader is None:
            cls = self._cls
            if isinstance(cls, str):
                module, _, name = cls.partition(":")
                cls = getattr(import_module(module), name)
            self._reader = cls(**self._kwargs)
        return self._reader

    def read(self, path: Path) -> Document:
        sections, line, title = [], 1, None
        meta: dict[str, str | int | float | bool] = {}
        for doc in self._llama_reader().load_data(Path(path)) or []:
            md = dict(getattr(doc, "metadata", None) or {})
            label = str(next((md[k] for k in _PAGE_KEYS if k in md), "")).strip()
            page = int(label) if label.isdigit() and int(label) >= 1 else None
            text = "\n".join(s.rstrip() for s in (getattr(doc, "text", "") or "").strip("\n").split("\n"))
            if text.strip():
                sections.append(Section(text=text, page=page, start_line=1 if page else line))
                line += 0 if page else text.count("\n") + 2
            title = title or (md.get("title") if isinstance(md.get("title"), str) else None)
            meta.update({k: v for k, v in md.items() if k not in _PAGE_KEYS and isinstance(v, (str, int, float, bool))})
        meta["file_type"] = self.file_type
        return Document(sections=sections, title=title, metadata=meta)

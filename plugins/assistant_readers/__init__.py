"""Built-in reader plugins for the ``assistant.readers`` entry-point group.

One module per format family, each with one reader class. ``BUILTIN`` lists
them by plugin name; ``reader_for_suffix`` finds one by file suffix (used by the
e-mail reader for attachments) and imports only what it needs.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["BUILTIN", "reader_for_suffix"]

BUILTIN = {
    "text": "text_reader:TextReader",
    "markdown": "markdown_reader:MarkdownReader",
    "rst": "rst_reader:RstReader",
    "html": "html_reader:HtmlReader",
    "pdf": "pdf_reader:PdfReader",
    "docx": "docx_reader:DocxReader",
    "epub": "epub_reader:EpubReader",
    "email": "email_reader:EmailReader",
    "csv": "csv_reader:CsvReader",
    "json": "json_reader:JsonReader",
    "notebook": "notebook_reader:NotebookReader",
    "code": "code_reader:CodeReader",
    "spreadsheet": "spreadsheet_reader:SpreadsheetReader",
    "slides": "slides_reader:SlidesReader",
    "odt": "odt_reader:OdtReader",
    "rtf": "rtf_reader:RtfReader",
    "image": "image_reader:ImageReader",
}

_instances: dict[str, Any] = {}


def reader_for_suffix(suffix: str) -> Any | None:
    """A default-configured built-in reader for ``suffix`` (".csv"), or None."""
    suffix = suffix.lower()
    for name, target in BUILTIN.items():
        module, cls_name = target.split(":")
        cls = getattr(import_module(f"{__name__}.{module}"), cls_name)
        if suffix in cls.suffixes:
            if name not in _instances:
                _instances[name] = cls()
            return _instances[name]
    return None

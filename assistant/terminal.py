"""Text from documents and file names, made safe to print on a terminal.

A document (or a file name) can hold escape sequences: ``ESC ] 0 ; ...`` sets
the window title, ``ESC [ 2 J`` clears the screen, a C1 ``CSI`` (U+009B) does the
same on some terminals, and bidi overrides (U+202E) reorder what is shown. The
CLI prints through ``SafeStream``, so nothing it prints (passages, answers, paths,
reasons, errors) reaches the terminal as a control character: each becomes
U+FFFD, visible and inert. JSON output escapes them instead (``json_safe``), so
the data is kept exactly. The TUI removes them from every line it draws (a line
filter of the app, ``without_controls``): Rich and Textual pass them through.
"""

from __future__ import annotations

import re
from typing import TextIO

__all__ = ["printable", "without_controls", "has_controls", "json_safe", "SafeStream"]

# C0 controls but tab and newline, DEL, C1 controls, bidi embeddings/overrides/isolates
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# what json.dumps(ensure_ascii=False) leaves raw (it escapes C0 itself)
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every control character (tab and newline aside) replaced by U+FFFD."""
    return _UNSAFE.sub("\ufffd", text)


def has_controls(text: str) -> bool:
    return _UNSAFE.search(text) is not None


def without_controls(text: str) -> str:
    """``text`` with every control character (tab and newline aside) removed: for the TUI, where a
    control character takes no cell, so removing it keeps every line's width."""
    return _UNSAFE.sub("", text)


def json_safe(text: str) -> str:
    """JSON text (from ``json.dumps(..., ensure_ascii=False)``) with the controls it leaves raw escaped.

    They can only occur inside JSON strings, so the result is the same JSON value."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class SafeStream:
    """A text stream that writes ``printable`` text to ``stream``.

    One exception: a carriage return that starts a write is kept, so a progress
    line (``"\\r[####....] 3/10 files"``, one write) still redraws in place;
    a ``\\r`` anywhere else (inside a file name) is replaced like the rest."""

    def __init__(self, stream: TextIO):
        self._stream = stream

    def write(self, text: str) -> int:
        lead = "\r" if text.startswith("\r") else ""
        self._stream.write(lead + printable(text[len(lead):]))
        return len(text)

    def __getattr__(self, name: str):  # flush, isatty, fileno, encoding, ...
        return getattr(self._stream, name)

"""Source code and config files: the text with real file lines, heading = the file name."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from assistant.types import Document

from ._common import read_text, section_from_lines

LANGUAGES = {
    ".py": "python", ".js": "javascript", ".ts": "typescript", ".tsx": "typescript", ".jsx": "javascript",
    ".java": "java", ".c": "c", ".h": "c", ".cpp": "cpp", ".hpp": "cpp", ".cc": "cpp", ".go": "go",
    ".rs": "rust", ".rb": "ruby", ".php": "php", ".cs": "csharp", ".swift": "swift", ".kt": "kotlin",
    ".scala": "scala", ".sh": "shell", ".bash": "shell", ".sql": "sql", ".lua": "lua", ".r": "r",
    ".m": "objective-c/matlab", ".pl": "perl", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml",
    ".ini": "ini", ".cfg": "ini", ".css": "css", ".scss": "scss",
}  # fmt: skip


class CodeReader:
    suffixes: ClassVar[tuple[str, ...]] = tuple(LANGUAGES)

    def __init__(self) -> None:
        pass

    def read(self, path: Path) -> Document:
        path = Path(path)
        lines = read_text(path).split("\n")
        section = section_from_lines(lines, 0, len(lines), heading=path.name)
        meta = {"file_type": "code", "language": LANGUAGES.get(path.suffix.lower(), "unknown")}
        if section is None:
            return Document(sections=[], metadata=meta)
        return Document(sections=[section], metadata=meta)

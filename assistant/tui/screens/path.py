"""Type a file or folder to ingest."""

from __future__ import annotations

from .prompt import PromptScreen

__all__ = ["PathScreen"]


class PathScreen(PromptScreen):
    """Type a file or folder to ingest."""

    def __init__(self) -> None:
        super().__init__("Ingest a file or folder", "e.g. ~/Documents/manuals", "enter to ingest · esc to cancel")

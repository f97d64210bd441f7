"""What screens ask of the app, as typed messages that bubble up from the screen.

A screen posts one (``self.post_message(...)``, thread-safe, so workers post too)
and the app handles it in its own queue. Results never go back to a screen that
may have been closed meanwhile: the app, which lives as long as the UI, receives
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message

from ..config import Config
from ..conversation import ConversationInfo
from ..retrieve import Filters
from ..types import Source

__all__ = [
    "ShowError",
    "OpenSource",
    "CopyText",
    "SwitchCollection",
    "NewCollection",
    "ConversationDeleted",
    "SettingsSaved",
    "StatusChanged",
]


@dataclass
class ShowError(Message):
    message: str
    notify: bool = True


@dataclass
class OpenSource(Message):
    source: Source
    collection: str | None = None  # the collection of the answer it belongs to (None: the one in use)


@dataclass
class CopyText(Message):
    text: str
    what: str  # "the answer and its 3 sources"


@dataclass
class SwitchCollection(Message):
    name: str


@dataclass
class NewCollection(Message):
    pass


@dataclass
class ConversationDeleted(Message):
    info: ConversationInfo


@dataclass
class SettingsSaved(Message):
    target: Path
    updates: dict[str, Any]
    config: Config | None
    filters: Filters
    matching: int | None
    created: bool = False


@dataclass
class StatusChanged(Message):
    """Something changed what is indexed (a file removed): the app re-reads the status."""

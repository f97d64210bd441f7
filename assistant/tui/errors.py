"""How the UI words an error: a user error as it is, anything else with its type."""

from __future__ import annotations

from ..config import ConfigError
from ..ingest import LibraryLocked
from ..library import LibraryError
from ..plugins import PluginError
from ..store import StoreError

__all__ = ["USER_ERRORS", "error_text"]

# Errors whose message is meant for the user: shown as they are, never as a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (LibraryError, LibraryLocked, ConfigError, StoreError, PluginError)


def error_text(e: BaseException) -> str:
    """What the UI says about an error: a user error's own message; anything else with its type."""
    return str(e) if isinstance(e, USER_ERRORS) else f"{type(e).__name__}: {e}"

"""The terminal UI: a thin Textual front end over :class:`assistant.library.Library`.

Textual is imported only when the UI is built, so ``import assistant`` (and the
CLI) never pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from textual.app import App

    from ..library import Library

__all__ = ["create_app", "run_tui"]


def create_app(library: "Library | None" = None, *, show_timings: bool = True, collection: str | None = None) -> "App":
    """Build the app. With no ``library`` one is created from the config when the app starts,
    over ``collection`` if given (else the config's ``[library] collection``).

    ``show_timings=False`` hides wall-clock numbers (for deterministic screenshots).
    """
    from .app import AssistantApp

    return AssistantApp(library, show_timings=show_timings, collection=collection)


def run_tui(collection: str | None = None) -> int:
    app = create_app(collection=collection)
    result = app.run()
    return result if isinstance(result, int) else (app.return_code or 0)

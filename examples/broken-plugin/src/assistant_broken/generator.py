"""A generator whose module imports fine but whose factory raises when the plugin is loaded."""

from __future__ import annotations


class BrokenGenerator:
    def __init__(self) -> None:
        raise RuntimeError("BrokenGenerator cannot start: no backend configured (deliberately broken test plugin)")

    def info(self):  # pragma: no cover - never built
        raise NotImplementedError

    def stream(self, request):  # pragma: no cover
        raise NotImplementedError

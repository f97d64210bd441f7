"""``boost``: a retrieval stage (``assistant.rerankers``) that favours some files.

Hits from files matching one of ``paths`` (fnmatch globs, ``*`` crosses ``/``) have
their score multiplied by ``factor`` and the hits are sorted again: the team
handbook over old e-mail, the current folder over the archive. The whole plugin is
this class and one entry point; enable it with

    [retrieval]
    stages = ["boost"]

    [plugins.boost]
    paths = ["*/handbook/*"]
    factor = 2.0
"""

from __future__ import annotations

import dataclasses
import fnmatch

from assistant.types import Hit, StageContext


class PathBoost:
    def __init__(self, *, paths: list[str] | None = None, factor: float = 2.0):
        if factor <= 0:
            raise ValueError("plugins.boost.factor: must be above 0")
        self.paths = list(paths or [])
        self.factor = factor

    def rerank(self, query: str, hits: list[Hit], context: StageContext) -> list[Hit]:
        def boosted(h: Hit) -> Hit:
            if any(fnmatch.fnmatch(h.path, p) for p in self.paths):
                return dataclasses.replace(h, score=h.score * self.factor)
            return h

        return sorted((boosted(h) for h in hits), key=lambda h: -h.score)  # stable: ties keep their order

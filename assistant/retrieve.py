"""Query -> hits: dense (Chroma), keyword (FTS5 BM25), and their fusion."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from .config import RetrievalConfig
from .store import Store
from .types import Hit

__all__ = ["Retriever", "Filters", "rrf", "weighted"]


@dataclass(frozen=True)
class Filters:
    """Metadata filters: a path glob and file types (suffixes without the dot)."""

    path_glob: str | None = None
    file_types: tuple[str, ...] = ()

    def active(self) -> bool:
        return bool(self.path_glob or self.file_types)

    def allowed_paths(self, store: Store) -> list[str]:
        out = []
        for row in store.file_rows():
            if self.path_glob and not fnmatch.fnmatch(row.path, self.path_glob):
                continue
            if self.file_types and row.path.rsplit(".", 1)[-1].lower() not in self.file_types:
                continue
            out.append(row.path)
        return out


def rrf(rankings: list[list[tuple[str, float]]], k: int, weights: list[float]) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: sum of weight / (k + rank), rank from 1."""
    scores: dict[str, float] = {}
    for ranking, w in zip(rankings, weights):
        for rank, (cid, _) in enumerate(ranking, start=1):
            scores[cid] = scores.get(cid, 0.0) + w / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def weighted(rankings: list[list[tuple[str, float]]], weights: list[float]) -> list[tuple[str, float]]:
    """Convex combination of min-max normalised scores (missing = 0)."""
    scores: dict[str, float] = {}
    for ranking, w in zip(rankings, weights):
        if not ranking:
            continue
        vals = [s for _, s in ranking]
        lo, hi = min(vals), max(vals)
        span = (hi - lo) or 1.0
        for cid, s in ranking:
            scores[cid] = scores.get(cid, 0.0) + w * (s - lo) / span
    return sorted(scores.items(), key=lambda kv: -kv[1])


class Retriever:
    def __init__(self, cfg: RetrievalConfig, store: Store, embedder):
        self.cfg = cfg
        self.store = store
        self.embedder = embedder

    def rank(
        self, query: str, *, depth: int | None = None, mode: str | None = None, filters: Filters | None = None
    ) -> tuple[list[tuple[str, float]], float]:
        """(chunk id, fused score) best first, at most ``depth`` of them, and the best dense cosine similarity."""
        mode = mode or self.cfg.mode
        depth = depth or self.cfg.top_k
        n = max(self.cfg.candidates, depth)
        paths = filters.allowed_paths(self.store) if filters and filters.active() else None
        dense: list[tuple[str, float]] = []
        keyword: list[tuple[str, float]] = []
        if mode in ("dense", "hybrid"):
            dense = self.store.dense_search(self.embedder.embed_query(query), n, paths)
        if mode in ("keyword", "hybrid"):
            keyword = self.store.keyword_search(query, n, paths)
        best_dense = dense[0][1] if dense else 0.0
        if mode == "dense":
            fused = dense
        elif mode == "keyword":
            fused = keyword
        elif self.cfg.fusion == "rrf":
            fused = rrf([dense, keyword], self.cfg.rrf_k, [self.cfg.dense_weight, self.cfg.keyword_weight])
        else:
            fused = weighted([dense, keyword], [self.cfg.dense_weight, self.cfg.keyword_weight])
        return fused[:depth], best_dense

    def search(
        self, query: str, *, top_k: int | None = None, mode: str | None = None, filters: Filters | None = None
    ) -> tuple[list[Hit], float]:
        """Hits best first, and the best dense cosine similarity (a relevance signal)."""
        k = top_k or self.cfg.top_k
        fused, best_dense = self.rank(query, depth=k * 2, mode=mode, filters=filters)
        return self.store.hits(fused)[:k], best_dense

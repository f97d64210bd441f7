"""Query -> hits: dense (Chroma), keyword (in-memory BM25, see keyword_index.py), and their fusion."""

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


def weighted(
    rankings: list[list[tuple[str, float]]], weights: list[float], complete: list[bool] | None = None
) -> list[tuple[str, float]]:
    """Weighted sum of each list's scores divided by its best score.

    A chunk missing from a list scores 0 there if the list holds every match
    (``complete``), else the list's lowest score: it ranked below all of them, and
    0 would sink a chunk that one retriever put just past the cut. Scaling from 0
    rather than min-max keeps a lone keyword match (a code, a name) at full weight.
    """
    complete = complete or [False] * len(rankings)
    scaled: list[tuple[dict[str, float], float, float]] = []
    for ranking, w, whole in zip(rankings, weights, complete):
        if not ranking:
            continue
        best = max(s for _, s in ranking)
        scale = best if best > 0 else 1.0
        part = {cid: s / scale for cid, s in ranking}
        scaled.append((part, w, 0.0 if whole else min(part.values())))
    ids = dict.fromkeys(cid for part, _, _ in scaled for cid in part)
    scores = {cid: sum(w * part.get(cid, missing) for part, w, missing in scaled) for cid in ids}
    return sorted(scores.items(), key=lambda kv: -kv[1])


class Retriever:
    def __init__(self, cfg: RetrievalConfig, store: Store, embedder):
        self.cfg = cfg
        self.store = store
        self.embedder = embedder

    def rank(
        self, query: str, *, depth: int | None = None, mode: str | None = None, filters: Filters | None = None
    ) -> tuple[list[tuple[str, float]], float]:
        """(chunk id, fused score) best first, at most ``depth`` of them, and the best dense cosine similarity.

        Each retriever gives ``candidates`` chunks to the fusion; a single-retriever
        mode gives ``depth`` if that is more (a longer list, the same order).
        """
        mode = mode or self.cfg.mode
        depth = depth or self.cfg.top_k
        n = self.cfg.candidates if mode == "hybrid" else max(self.cfg.candidates, depth)
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
            fused = weighted(
                [dense, keyword],
                [self.cfg.dense_weight, self.cfg.keyword_weight],
                [len(dense) < n, len(keyword) < n],
            )
        return fused[:depth], best_dense

    def search(
        self, query: str, *, top_k: int | None = None, mode: str | None = None, filters: Filters | None = None
    ) -> tuple[list[Hit], float]:
        """Hits best first, and the best dense cosine similarity (a relevance signal)."""
        k = top_k or self.cfg.top_k
        fused, best_dense = self.rank(query, depth=k * 2, mode=mode, filters=filters)
        return self.store.hits(fused)[:k], best_dense

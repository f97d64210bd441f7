"""Query -> hits, as one pipeline of stages that ``ask``, ``search``, ``eval`` and the APIs all take.

    candidates (dense: the snapshot's vectors or Chroma; keyword: in-memory BM25; see keyword_index.py)
      -> fusion -> hydrate (text and location of the best ``pool`` chunks, from SQLite)
      -> the stages of ``[retrieval] stages``, in order (plugins of ``assistant.rerankers``)
      -> the first ``top_k``

Hydrating ``pool`` (default 30) rather than ``top_k`` hits gives the stages room:
a reranker reorders more than it keeps, and ``neighbours``/``diversify`` merge
hits away; it also covers a vector whose chunk row is gone (an interrupted write),
which hydration drops. Every hit keeps its score at each step in ``Hit.scores``
(``search --explain``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Sequence

from .config import RetrievalConfig
from .store import Store
from .types import Hit, Reranker, Retrieval

__all__ = ["Retriever", "Filters", "StageError", "rrf", "weighted"]


class StageError(Exception):
    """A retrieval stage raised; the message names it."""


@dataclass(frozen=True)
class Filters:
    """Metadata filters: a path glob and file types (suffixes without the dot)."""

    path_glob: str | None = None
    file_types: tuple[str, ...] = ()

    def active(self) -> bool:
        return bool(self.path_glob or self.file_types)

    def allowed_paths(self, store: Store) -> list[str]:
        return store.paths_matching(self.path_glob, self.file_types)


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


class _Context:
    """A ``StageContext`` for one search: the file's chunks, read once per search."""

    def __init__(self, store: Store, top_k: int):
        self.store = store
        self.top_k = top_k
        self._chunks: dict[str, list[Hit]] = {}

    def chunks_of(self, path: str) -> list[Hit]:
        if path not in self._chunks:
            self._chunks[path] = [
                Hit(r.id, r.path, r.text, 0.0, r.page, r.start_line, r.end_line, r.heading)
                for r in self.store.chunks_of(path)
            ]
        return self._chunks[path]


class Retriever:
    """The retrieval pipeline. ``stages``: (name, reranker) pairs, run in order after hydration."""

    def __init__(self, cfg: RetrievalConfig, store: Store, embedder, stages: Sequence[tuple[str, Reranker]] = ()):
        self.cfg = cfg
        self.store = store
        self.embedder = embedder
        self.stages = list(stages)

    def candidates(
        self, query: str, n: int, mode: str, paths: list[str] | None
    ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """(dense, keyword): each retriever's (chunk id, score) list, best first, ``n`` at most."""
        dense: list[tuple[str, float]] = []
        keyword: list[tuple[str, float]] = []
        if mode in ("dense", "hybrid"):
            dense = self.store.dense_search(self.embedder.embed_query(query), n, paths)
        if mode in ("keyword", "hybrid"):
            keyword = self.store.keyword_search(query, n, paths)
        return dense, keyword

    def fuse(self, mode: str, dense, keyword, n: int) -> list[tuple[str, float]]:
        if mode == "dense":
            return dense
        if mode == "keyword":
            return keyword
        weights = [self.cfg.dense_weight, self.cfg.keyword_weight]
        if self.cfg.fusion == "rrf":
            return rrf([dense, keyword], self.cfg.rrf_k, weights)
        return weighted([dense, keyword], weights, [len(dense) < n, len(keyword) < n])

    def retrieve(
        self, query: str, *, top_k: int | None = None, mode: str | None = None, filters: Filters | None = None
    ) -> Retrieval:
        """The best ``top_k`` hits for ``query`` after every stage, with the scores of each step.

        Each retriever gives ``candidates`` chunks to the fusion; a single-retriever
        mode gives ``pool`` if that is more (a longer list, the same order).
        """
        mode = mode or self.cfg.mode
        k = top_k or self.cfg.top_k
        pool = max(self.cfg.pool, k)
        n = self.cfg.candidates if mode == "hybrid" else max(self.cfg.candidates, pool)
        timings: dict[str, float] = {}
        t = time.perf_counter()
        paths = filters.allowed_paths(self.store) if filters and filters.active() else None
        dense, keyword = self.candidates(query, n, mode, paths)
        timings["candidates"], t = time.perf_counter() - t, time.perf_counter()
        fused = self.fuse(mode, dense, keyword, n)[:pool]
        timings["fusion"], t = time.perf_counter() - t, time.perf_counter()
        dense_of, keyword_of = dict(dense), dict(keyword)
        hits = []
        for h in self.store.hits(fused):
            scores = {}
            if h.chunk_id in dense_of:
                scores["dense"] = dense_of[h.chunk_id]
            if h.chunk_id in keyword_of:
                scores["keyword"] = keyword_of[h.chunk_id]
            scores["fused"] = h.score
            hits.append(dataclasses.replace(h, scores=scores))
        timings["hydrate"], t = time.perf_counter() - t, time.perf_counter()
        context = _Context(self.store, k)
        for name, stage in self.stages:
            try:
                out = stage.rerank(query, hits, context)
            except Exception as e:
                raise StageError(f"retrieval stage '{name}' failed: {type(e).__name__}: {e}") from e
            hits = [dataclasses.replace(h, scores={**h.scores, name: h.score}) for h in out]
            timings[name], t = time.perf_counter() - t, time.perf_counter()
        best_dense = dense[0][1] if dense else 0.0
        return Retrieval(query, hits[:k], best_dense, tuple(name for name, _ in self.stages), timings)

"""Retrieval latency at 10k and 100k chunks: Retriever.search against raw Chroma query + query embedding.

    .venv/bin/python bench/query.py [--sizes 10000,100000] [--queries 200] [--keep DIR]

Builds a store in a fresh data folder (or reuses ``--keep DIR``) by writing
synthetic chunks straight through ``Store.replace_files`` (no readers, no
chunker): each chunk is 4-9 sentences drawn at random from the SciFact
abstracts in ../shared/data/scifact (generated sentences when that is missing),
so term statistics look like real prose. The first 10,000 chunks get vectors
from the real embedder (the ONNX int8 backend when it is there, for speed;
``--bulk-backend torch`` for the torch one); chunks past 10,000 REUSE those
vectors with Gaussian noise (cos ~0.9 to their source), so their vectors do not
describe their texts. The output says so.

At each size, every query (SciFact claims, else generated questions) runs
through, interleaved and in alternating order:

  assistant : Retriever.search(q) as the assistant calls it, default config:
              query embedding (torch, on [embedding] query_threads threads),
              dense = Chroma collection.query for ids and distances, keyword =
              the in-memory BM25 index (one counter read per search to check
              it is current), fusion, chunk rows from SQLite
  raw       : SentenceTransformer.encode(q) (torch's default threads) +
              collection.query(n_results=candidates)

plus the parts of the assistant path on their own and the onnx int8 query
embedding as an alternative. Prints p50/p95 in ms, the ratio assistant/raw, the
time to rebuild the keyword index from SQLite (what the first search after a
change pays), the load average (other jobs on the machine move every number),
and the peak RSS of the process after the largest build.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact"
REAL_VECTORS = 10_000
CHUNKS_PER_FILE = 10


def _sentences(seed: int) -> tuple[list[str], str]:
    corpus = SCIFACT / "corpus.jsonl.gz"
    if corpus.is_file():
        out = []
        with gzip.open(corpus, "rt", encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                out.extend(s for s in re.split(r"(?<=[.!?])\s+", d.get("text", "")) if len(s) > 20)
        return out, "sentences of SciFact abstracts"
    sys.path.insert(0, str(ROOT / "bench"))
    from ingest import _para

    rng = random.Random(seed)
    return [_para(rng, 1) for _ in range(50_000)], "generated sentences"


def _queries(n: int, seed: int) -> tuple[list[str], str]:
    qfile = SCIFACT / "queries.jsonl"
    if qfile.is_file():
        qs = [json.loads(line)["text"] for line in qfile.open(encoding="utf-8")]
        random.Random(seed).shuffle(qs)
        return qs[:n], "SciFact claims"
    sys.path.insert(0, str(ROOT / "bench"))
    from ingest import WORDS

    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(4, 10))) + "?" for _ in range(n)], "generated questions"


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def _du_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def build(lib, target: int, sentences: list[str], args, state: dict) -> None:
    """Grow the store to ``target`` chunks."""
    import numpy as np

    from assistant.chunking import chunk_id, text_hash
    from assistant.store import ChunkRow, FileRow

    store = lib.store
    have = store.counts()["chunks"]
    if have >= target:
        return
    rng = random.Random(args.seed + have)
    nrng = np.random.default_rng(args.seed + have)
    t0 = time.perf_counter()
    t_embed = 0.0
    f = have // CHUNKS_PER_FILE
    while have < target:
        group_files, group_chunks, texts = [], [], []
        while len(group_chunks) < 2000 and have + len(group_chunks) < target:
            path = f"/bench/synthetic/doc{f:07}.txt"
            content_hash = f"{f:032x}"
            n = min(CHUNKS_PER_FILE, target - have - len(group_chunks))
            for o in range(n):
                text = " ".join(rng.sample(sentences, rng.randint(4, 9)))
                texts.append(text)
                group_chunks.append(
                    ChunkRow(chunk_id(path, content_hash, o), path, o, text, text, text_hash(text), None, o * 5 + 1, o * 5 + 5, None)
                )
            group_files.append(FileRow(path, content_hash, 1000, 0, n, "text", None, time.time()))
            f += 1
        start = have
        real = max(0, min(REAL_VECTORS - start, len(texts)))
        parts = []
        if real:
            t = time.perf_counter()
            parts.append(state["bulk"].encode(texts[:real], batch_size=32, normalize_embeddings=True))
            t_embed += time.perf_counter() - t
            state.setdefault("real", []).append(parts[-1])
        if real < len(texts):
            pool = state.get("pool")
            if pool is None:
                pool = state["pool"] = (
                    np.concatenate(state["real"]) if state.get("real") else _load_pool(store, REAL_VECTORS)
                )
            src = pool[nrng.integers(0, len(pool), len(texts) - real)]
            noisy = src + nrng.standard_normal(src.shape).astype(np.float32) * (0.5 / np.sqrt(src.shape[1]))
            parts.append(noisy / np.linalg.norm(noisy, axis=1, keepdims=True))
        vecs = np.concatenate(parts).astype(np.float32)
        store.replace_files(group_files, group_chunks, vecs)
        have += len(group_chunks)
        if not args.quiet:
            print(f"  built {have}/{target} chunks ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    dt = time.perf_counter() - t0
    state.setdefault("builds", []).append((target, dt, t_embed))


def _load_pool(store, n):
    import numpy as np

    got = store.collection.get(limit=n, include=["embeddings"])
    return np.asarray(got["embeddings"], dtype=np.float32)


def measure(lib, st_model, queries: list[str], candidates: int) -> dict[str, list[float]]:
    """ms per query for each path, interleaved, alternating which goes first."""
    store, retriever = lib.store, lib.retriever
    col = store.collection
    times: dict[str, list[float]] = {k: [] for k in (
        "assistant", "raw", "embed_query", "embed_default_threads", "dense_search", "raw_chroma_query",
        "keyword_search", "keyword_fresh_check", "hits", "embed_query_onnx")}
    onnx = _onnx_encoder(lib)

    def assistant(q):
        retriever.retrieve(q)

    def raw(q):
        v = st_model.encode(q, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        col.query(query_embeddings=[v.tolist()], n_results=candidates)

    for q in queries[:5]:  # warm-up: models, caches, HNSW index load, keyword index build
        assistant(q)
        raw(q)
    for i, q in enumerate(queries):
        order = (("assistant", assistant), ("raw", raw)) if i % 2 == 0 else (("raw", raw), ("assistant", assistant))
        for name, fn in order:
            t = time.perf_counter()
            fn(q)
            times[name].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        v = lib.embedder.embed_query(q)
        times["embed_query"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        st_model.encode(q, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        times["embed_default_threads"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        dense = store.dense_search(v, candidates)
        times["dense_search"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        col.query(query_embeddings=[v.tolist()], n_results=candidates)
        times["raw_chroma_query"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        kw = store.keyword_search(q, candidates)
        times["keyword_search"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        store.keyword_index.refresh()
        times["keyword_fresh_check"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        store.hits((dense + kw)[:20])
        times["hits"].append((time.perf_counter() - t) * 1000)
    if onnx is not None:  # apart, so onnxruntime's threads (which spin-wait after a run) do not compete with torch's above
        for q in queries:
            t = time.perf_counter()
            onnx.encode([q], normalize_embeddings=True)
            times["embed_query_onnx"].append((time.perf_counter() - t) * 1000)
    return {k: v for k, v in times.items() if v}


def keyword_rebuilds(store, rounds: int = 3) -> list[float]:
    """Seconds to build the keyword index from SQLite, as a search after a change does (fresh index each round)."""
    from assistant.keyword_index import KeywordIndex

    out = []
    for _ in range(rounds):
        index = KeywordIndex(store.db_path)
        t = time.perf_counter()
        index.refresh()
        out.append(time.perf_counter() - t)
        index.close()
    return out


def _onnx_encoder(lib):
    try:
        from assistant.onnx_backend import OnnxSentenceEncoder

        return OnnxSentenceEncoder(lib.embedder.path, lib.config.embedding.max_seq_length)
    except ImportError:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--keep", type=Path, default=None, help="data folder to build in / reuse")
    ap.add_argument("--bulk-backend", choices=("onnx", "torch"), default="onnx",
                    help="embedder for the first 10,000 chunk vectors (default: onnx, faster)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT))
    data = args.keep or Path(tempfile.mkdtemp(prefix="bench-query-")) / "data"
    os.environ["ASSISTANT_DATA_DIR"] = str(data)

    from assistant.config import Config
    from assistant.library import Library

    cfg = Config()  # defaults: hybrid, weighted fusion, candidates 100, top_k 5, torch embedder, query_threads 1
    lib = Library(cfg)
    lib.store.check_embed_model(lib.embedder.name)
    st_model = lib.embedder.model  # the SentenceTransformer the assistant uses: same object for both paths
    lib.embedder.embed_query("warm-up")
    state: dict = {}
    if args.bulk_backend == "onnx":
        try:
            from assistant.onnx_backend import OnnxSentenceEncoder

            state["bulk"] = OnnxSentenceEncoder(lib.embedder.path, cfg.embedding.max_seq_length)
        except ImportError as e:
            print(f"onnx backend unavailable ({e}); bulk vectors from torch", file=sys.stderr)
            args.bulk_backend = "torch"
    if args.bulk_backend == "torch":
        state["bulk"] = st_model
    sentences, sent_src = _sentences(args.seed)
    queries, q_src = _queries(args.queries, args.seed)
    rss_start = _rss_mb()

    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"data folder: {data}")
    print(f"chunks: 4-9 random {sent_src} each; vectors: first {REAL_VECTORS:,} from the real embedder "
          f"({args.bulk_backend}), the rest = those vectors + Gaussian noise (NOT the vectors of their texts)")
    print(f"queries: {len(queries)} {q_src}; retrieval: mode={cfg.retrieval.mode} fusion={cfg.retrieval.fusion} "
          f"candidates={cfg.retrieval.candidates} top_k={cfg.retrieval.top_k}; query embedder: torch, "
          f"assistant on query_threads={cfg.embedding.query_threads}, raw on torch's {_torch_threads()} threads")
    print(f"peak RSS after loading the models: {rss_start:.0f} MB; load average {_load()}")
    rows = []
    for size in sizes:
        build(lib, size, sentences, args, state)
        rss = _rss_mb()
        rebuilds = keyword_rebuilds(lib.store)
        t = measure(lib, st_model, queries, cfg.retrieval.candidates)
        rows.append((size, t, rss))
        rss_q = _rss_mb()
        a, r = t["assistant"], t["raw"]
        print(f"\n== {lib.store.counts()['chunks']:,} chunks ({lib.store.collection.count():,} vectors); "
              f"load average after the queries {_load()} ==")
        print(f"{'path (ms per query)':<44}{'p50':>9}{'p95':>9}")
        for name, label in (
            ("assistant", "assistant: Retriever.search (hybrid)"),
            ("raw", "raw: ST.encode + collection.query"),
            ("embed_query", f"  part: embed_query ({cfg.embedding.query_threads or 'default'} torch thread(s))"),
            ("embed_default_threads", f"  alt embed: ST.encode ({_torch_threads()} torch threads)"),
            ("dense_search", "  part: Store.dense_search (ids+distances)"),
            ("raw_chroma_query", "  part: collection.query, default include"),
            ("keyword_search", "  part: Store.keyword_search (BM25)"),
            ("keyword_fresh_check", "  part: keyword index freshness check"),
            ("hits", "  part: Store.hits (20 rows)"),
            ("embed_query_onnx", "  alt embed: onnx int8 query embedding"),
        ):
            if name not in t:
                continue
            v = t[name]
            print(f"{label:<44}{_pct(v, 50):>9.1f}{_pct(v, 95):>9.1f}")
        print(f"{'ratio assistant / raw':<44}{_pct(a, 50) / _pct(r, 50):>9.2f}{_pct(a, 95) / _pct(r, 95):>9.2f}")
        kw_share = statistics.median(t["keyword_search"]) / statistics.median(a)
        print(f"keyword index rebuild from SQLite: {', '.join(f'{x:.2f}' for x in rebuilds)} s; "
              f"keyword search = {kw_share:.0%} of the assistant's p50")
        print(f"peak RSS {rss:.0f} MB after building, {rss_q:.0f} MB after the queries; "
              f"data folder {_du_mb(data):.0f} MB (chroma {_du_mb(data / 'chroma'):.0f} MB)")
    for target, dt, t_embed in state.get("builds", []):
        print(f"build to {target:,}: {dt:.0f} s ({t_embed:.0f} s of it embedding)")
    if state.get("builds"):
        print(f"peak RSS of the process after ingesting {sizes[-1]:,} chunks: {rows[-1][2]:.0f} MB "
              f"(models loaded: {rss_start:.0f} MB)")
    if args.keep is None:
        print(f"(data left in {data}; delete it or pass --keep to reuse)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

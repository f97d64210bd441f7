"""Retrieval benchmark: BEIR SciFact in dense, keyword and hybrid modes, beside published anchors.

    .venv/bin/python bench/retrieval.py [--data ../shared/data/scifact] [--split test] [--limit N]
                                        [--whole-doc] [--json]

Runs what `assistant eval --beir DATA --mode MODE --json` runs (the same
functions, in one process so the models load once) with the config the
assistant would use (config.toml, or ASSISTANT_CONFIG), plus one row of hybrid
with the plain RRF (k=60, equal weights) for comparison. The corpus is indexed
once into its own collection, ``beir-scifact``, in ASSISTANT_DATA_DIR (default
here: ``data/bench`` in the repository, which git ignores); later runs re-use it.
Embedding the 5,183 abstracts (10,252 chunks) takes 10-15 minutes on two CPU cores.

``--whole-doc`` adds the published protocol for the dense anchor: one vector per
abstract (title + " " + text, truncated at the model's 256 tokens) instead of
the assistant's chunks, scored exactly; the vectors are cached beside the index.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "scifact"

# nDCG@10 and recall@100 on the BEIR SciFact test split (300 queries); see the data folder's README.
ANCHORS = {
    "dense": ("all-MiniLM-L6-v2 (MTEB)", 0.6451, 0.925),
    "dense-whole-doc": ("all-MiniLM-L6-v2 (MTEB)", 0.6451, 0.925),
    "keyword": ("BM25, bm25s (MTEB baseline)", 0.6874, 0.9127),
    "hybrid": ("RRF k=60 of the two", 0.717, None),
    "hybrid-rrf60": ("RRF k=60 of the two", 0.717, None),
}
MODES = ("dense", "keyword", "hybrid", "hybrid-rrf60")
RRF60 = {"fusion": "rrf", "rrf_k": 60, "dense_weight": 1.0, "keyword_weight": 1.0}


def whole_doc_dense(lib, data, name: str, limit: int | None) -> dict:
    """Dense retrieval over one vector per document, as MTEB does it (no chunks, no store)."""
    import numpy as np

    from assistant.evaluate import mean_metrics, percentile, query_metrics

    doc_ids = list(data.corpus)
    cache = lib.config.data_dir / f"whole-doc-{name}.npy"
    vecs = np.load(cache) if cache.is_file() else None
    if vecs is None or len(vecs) != len(doc_ids):
        print(f"embedding {len(doc_ids)} whole documents (cached in {cache}) ...", file=sys.stderr)
        vecs = lib.embedder.embed([f"{t} {x}".strip() for t, x in data.corpus.values()], batch_size=32)
        np.save(cache, vecs)
    qids = list(data.queries)[: limit or None]
    per_query, latencies = {}, []
    lib.embedder.embed_query("warm-up")
    for qid in qids:
        t0 = time.perf_counter()
        sims = vecs @ lib.embedder.embed_query(data.queries[qid])
        top = np.argsort(-sims)[:100]
        latencies.append((time.perf_counter() - t0) * 1000)
        per_query[qid] = query_metrics([doc_ids[i] for i in top], data.qrels[qid])
    return {**mean_metrics(per_query), "latency_p50_ms": round(percentile(latencies, 50), 2),
            "latency_p95_ms": round(percentile(latencies, 95), 2), "queries": len(qids),
            "mode": "dense-whole-doc", "documents": len(doc_ids), "chunks": len(doc_ids)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a BEIR folder (default: %(default)s)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated, from: %(default)s")
    ap.add_argument("--whole-doc", action="store_true", help="add dense over whole documents (the MTEB protocol)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    if not (args.data / "qrels" / f"{args.split}.tsv").is_file():
        print(f"skipped: no BEIR data at {args.data} (qrels/{args.split}.tsv missing); "
              "pass --data DIR to point at a BEIR SciFact folder", file=sys.stderr)
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ASSISTANT_DATA_DIR", str(ROOT / "data" / "bench"))
    sys.path.insert(0, str(ROOT))
    from assistant.config import load_config
    from assistant.evaluate import beir_library, evaluate_beir, index_beir, load_beir
    from assistant.library import Library

    config = load_config()
    data = load_beir(args.data, args.split)
    lib = beir_library(Library(config), args.data)
    index_beir(lib, data.corpus, quiet=args.json)
    results = {}
    for mode in args.modes.split(","):
        run = lib
        if mode == "hybrid-rrf60":
            rrf_config = dataclasses.replace(lib.config, retrieval=dataclasses.replace(lib.config.retrieval, **RRF60))
            run = Library(rrf_config, registry=lib.registry, embedder=lib.embedder)
        res = evaluate_beir(run, data, mode=mode.split("-")[0], limit=args.limit)
        res.pop("per_query")
        res["mode"] = mode
        results[mode] = res
    if args.whole_doc:
        results["dense-whole-doc"] = whole_doc_dense(lib, data, args.data.name, args.limit)

    if args.json:
        print(json.dumps({"dataset": args.data.name, "split": args.split, "date": time.strftime("%Y-%m-%d"),
                          "retrieval": dataclasses.asdict(config.retrieval), "results": results}, indent=2))
        return 0
    first = next(iter(results.values()))
    r = config.retrieval
    print(f"BEIR {args.data.name} ({args.split}): {first['queries']} queries, {first['documents']} documents, "
          f"{first['chunks']} chunks; {time.strftime('%Y-%m-%d')}")
    print(f"config: fusion {r.fusion}, dense_weight {r.dense_weight}, keyword_weight {r.keyword_weight}, "
          f"rrf_k {r.rrf_k}, candidates {r.candidates}")
    head = f"{'mode':<16} {'nDCG@10':>8} {'R@10':>6} {'R@100':>6} {'MRR@10':>7} {'p50 ms':>7} {'p95 ms':>7}   anchor"
    print(head)
    print("-" * (len(head) + 50))
    for mode, res in results.items():
        name, a_ndcg, a_r100 = ANCHORS.get(mode, ("", None, None))
        anchor = ""
        if a_ndcg is not None and args.split == "test":
            anchor = f"{name}: {a_ndcg:.3f} (ratio {res['ndcg@10'] / a_ndcg:.3f})"
            if a_r100:
                anchor += f", R@100 {a_r100:.3f}"
        print(f"{mode:<16} {res['ndcg@10']:>8.4f} {res['recall@10']:>6.3f} {res['recall@100']:>6.3f} "
              f"{res['mrr@10']:>7.4f} {res['latency_p50_ms']:>7.1f} {res['latency_p95_ms']:>7.1f}   {anchor}")
    if args.split != "test":
        print("(the published anchors are for the test split)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

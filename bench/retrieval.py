"""Retrieval benchmark: BEIR SciFact in dense, keyword and hybrid modes, beside published anchors.

    .venv/bin/python bench/retrieval.py [--data ../shared/data/scifact] [--split test] [--limit N] [--json]

Runs what `assistant eval --beir DATA --mode MODE --json` runs (the same
functions, in one process so the models load once) with the config the
assistant would use (config.toml, or ASSISTANT_CONFIG). The corpus is indexed
once into its own collection, ``beir-scifact``, in ASSISTANT_DATA_DIR (default
here: ``data/bench`` in the repository, which git ignores); later runs re-use it.
Embedding the 5,183 abstracts takes about ten minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
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
    "keyword": ("BM25, bm25s (MTEB baseline)", 0.6874, 0.9127),
    "hybrid": ("RRF k=60 of the two", 0.717, None),
}
MODES = ("dense", "keyword", "hybrid")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a BEIR folder (default: %(default)s)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    if not (args.data / "qrels" / f"{args.split}.tsv").is_file():
        print(f"skipped: no BEIR data at {args.data} (qrels/{args.split}.tsv missing); "
              "pass --data DIR to point at a BEIR SciFact folder", file=sys.stderr)
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ASSISTANT_DATA_DIR", str(ROOT / "data" / "bench"))
    sys.path.insert(0, str(ROOT))
    from assistant.evaluate import beir_library, evaluate_beir, index_beir, load_beir
    from assistant.library import Library

    data = load_beir(args.data, args.split)
    lib = beir_library(Library(), args.data)
    index_beir(lib, data.corpus, quiet=args.json)
    results = {}
    for mode in args.modes.split(","):
        res = evaluate_beir(lib, data, mode=mode, limit=args.limit)
        res.pop("per_query")
        results[mode] = res

    if args.json:
        print(json.dumps({"dataset": args.data.name, "split": args.split, "date": time.strftime("%Y-%m-%d"),
                          "results": results}, indent=2))
        return 0
    first = next(iter(results.values()))
    print(f"BEIR {args.data.name} ({args.split}): {first['queries']} queries, {first['documents']} documents, "
          f"{first['chunks']} chunks; {time.strftime('%Y-%m-%d')}")
    head = f"{'mode':<8} {'nDCG@10':>8} {'R@10':>6} {'R@100':>6} {'MRR@10':>7} {'p50 ms':>7} {'p95 ms':>7}   anchor"
    print(head)
    print("-" * (len(head) + 40))
    for mode, r in results.items():
        name, a_ndcg, a_r100 = ANCHORS.get(mode, ("", None, None))
        anchor = ""
        if a_ndcg is not None and args.split == "test":
            anchor = f"{name}: nDCG@10 {a_ndcg:.3f} (ratio {r['ndcg@10'] / a_ndcg:.3f})"
            if a_r100:
                anchor += f", R@100 {a_r100:.3f}"
        print(f"{mode:<8} {r['ndcg@10']:>8.4f} {r['recall@10']:>6.3f} {r['recall@100']:>6.3f} {r['mrr@10']:>7.4f} "
              f"{r['latency_p50_ms']:>7.1f} {r['latency_p95_ms']:>7.1f}   {anchor}")
    if args.split != "test":
        print("(the published anchors are for the test split)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Retrieval benchmark: BEIR SciFact in dense, keyword and hybrid modes, beside published anchors;
with ``--stages``, the effect and cost of each retrieval stage on SciFact and on the QA sets.

    .venv/bin/python bench/retrieval.py [--data ../shared/data/scifact] [--split test] [--limit N]
                                        [--whole-doc] [--json]
    .venv/bin/python bench/retrieval.py --stages none,neighbours,diversify [--split train]
        [--qa tests/qa/corpora_qa.jsonl=/tmp/qa-corpora --qa tests/qa/hard_qa.jsonl=/tmp/qa-hard]

``--stages`` takes comma-separated stage lists (``+`` joins stages in order, ``none`` is
fusion alone) and runs each through ``Library.retrieve`` in the default hybrid mode, in
the same process, so the rows share the models, the index and the machine's load:
nDCG@10 and R@100 on SciFact, the right file in the top 3 on each ``--qa FILE=DATA_DIR``
(a QA file and the data folder its corpus was ingested into with ``assistant ingest``;
a follow-up is searched the way ``ask`` searches it, made standalone from the earlier
question), and the stage's own time per query (p50, from ``Retrieval.timings``) over
the QA queries, where it sees the default ``pool`` of hits, and over SciFact, where it
sees ~300. Rows run in turn, ``--rounds`` times, alternating the order; a time is the
best round's p50.

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


def qa_top3(lib, items: list[dict]) -> dict:
    """Right file in the top 3 hits of ``Library.retrieve`` (the answerable questions), and the stages' ms."""
    from assistant.conversation import standalone_query
    from assistant.evaluate import _path_matches, percentile
    from assistant.serving import history_from_turns

    by_id = {it["id"]: it for it in items}
    right, n, steps = 0, 0, {}
    for it in items:
        if not it.get("source_files"):
            continue
        turns, prev = [], it.get("follows")
        while prev in by_id:
            turns.insert(0, (by_id[prev]["question"], ""))
            prev = by_id[prev].get("follows")
        query = standalone_query(it["question"], history_from_turns(turns))
        found = lib.retrieve(query, top_k=lib.config.answer.passages)
        for step, sec in found.timings.items():
            steps.setdefault(step, []).append(sec * 1000)
        n += 1
        right += any(_path_matches(h.path, it["source_files"]) for h in found.hits[:3])
    return {"top3": round(right / max(n, 1), 4), "questions": n,
            "step_p50_ms": {k: round(percentile(v, 50), 3) for k, v in steps.items()}}


def run_stages(args, lib, data) -> int:
    """One row per stage list: SciFact nDCG@10 / R@100 and the QA sets' top-3, with each stage's ms."""
    from assistant.evaluate import evaluate_beir, load_qa
    from assistant.library import Library

    combos = [tuple(s for s in c.split("+") if s and s != "none") for c in args.stages.split(",")]
    qa_libs = []
    for spec in args.qa:  # each QA set reads the data folder its corpus was ingested into
        qa_file, _, data_dir = spec.partition("=")
        cfg = dataclasses.replace(lib.config, library=dataclasses.replace(lib.config.library, data_dir=data_dir,
                                                                          collection="default"))
        qa_libs.append((Path(qa_file).name, cfg, load_qa(Path(qa_file))))

    def library(cfg, stages):
        cfg = dataclasses.replace(cfg, retrieval=dataclasses.replace(cfg.retrieval, stages=list(stages)))
        return Library(cfg, registry=lib.registry, embedder=lib.embedder)

    beir_libs = {c: library(lib.config, c) for c in combos}
    qa_by_combo = {c: [(name, library(cfg, c), items) for name, cfg, items in qa_libs] for c in combos}
    for c in combos:
        if data is not None:
            beir_libs[c].retriever  # loads the stages
    env_dir = os.environ.pop("ASSISTANT_DATA_DIR", None)  # a store reads its folder when it opens
    try:
        for c in combos:
            for _, ql, _ in qa_by_combo[c]:
                ql.retriever
    finally:
        if env_dir is not None:
            os.environ["ASSISTANT_DATA_DIR"] = env_dir
    rows: dict[tuple, dict] = {}
    for r in range(args.rounds):
        for c in (combos if r % 2 == 0 else combos[::-1]):
            row = rows.setdefault(c, {"stages": "+".join(c) or "none", "ndcg@10": None, "recall@100": None,
                                      "beir_ms": [], "beir_p50_ms": None, "qa": {}, "qa_ms": []})
            if data is not None:
                res = evaluate_beir(beir_libs[c], data, limit=args.limit)
                row.update({"ndcg@10": res["ndcg@10"], "recall@100": res["recall@100"], "beir_p50_ms": res["latency_p50_ms"]})
                row["beir_ms"].append(sum(res["step_p50_ms"].get(s, 0.0) for s in c))
            for name, ql, items in qa_by_combo[c]:
                q = qa_top3(ql, items)
                row["qa"][name] = q["top3"]
                row["qa_ms"].append(sum(q["step_p50_ms"].get(s, 0.0) for s in c))
    out = [{**row, "beir_ms": round(min(row["beir_ms"]), 3) if row["beir_ms"] else None,
            "qa_ms": round(min(row["qa_ms"]), 3) if row["qa_ms"] else None} for row in rows.values()]
    if args.json:
        print(json.dumps({"dataset": args.data.name if data else None, "split": args.split, "date": time.strftime("%Y-%m-%d"),
                          "rounds": args.rounds, "rows": out}, indent=2))
        return 0
    print(f"{f'BEIR {args.data.name} ({args.split})' if data else 'no BEIR'} and {', '.join(n for n, _, _ in qa_libs) or 'no QA set'}; "
          f"hybrid, pool {lib.config.retrieval.pool}; best of {args.rounds} round(s); {time.strftime('%Y-%m-%d')}")
    qa_names = [n for n, _, _ in qa_libs]
    head = f"{'stages':<24} {'nDCG@10':>8} {'R@100':>6} " + " ".join(f"{n[:16] + ' top3':>21}" for n in qa_names)
    head += f" {'stage ms (QA)':>14} {'stage ms (BEIR)':>16} {'search p50':>11}"
    print(head)
    for row in out:
        qa = " ".join(f"{row['qa'][n]:>21.3f}" for n in qa_names)
        qa_ms = "-" if row["qa_ms"] is None else f"{row['qa_ms']:.2f}"
        def num(v, fmt):
            return "-" if v is None else format(v, fmt)

        print(f"{row['stages']:<24} {num(row['ndcg@10'], '.4f'):>8} {num(row['recall@100'], '.3f'):>6} {qa} {qa_ms:>14} "
              f"{num(row['beir_ms'], '.2f'):>16} {num(row['beir_p50_ms'], '.1f'):>11}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a BEIR folder (default: %(default)s)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated, from: %(default)s")
    ap.add_argument("--whole-doc", action="store_true", help="add dense over whole documents (the MTEB protocol)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--stages", default=None, help="compare stage lists instead of modes: e.g. none,neighbours,diversify")
    ap.add_argument("--qa", action="append", default=[], metavar="FILE=DATA_DIR",
                    help="with --stages: a QA file and the data folder its corpus is ingested in (repeatable)")
    ap.add_argument("--rounds", type=int, default=1, help="with --stages: rounds, the order alternating")
    ap.add_argument("--no-beir", action="store_true", help="with --stages: the QA sets only (no BEIR index needed)")
    args = ap.parse_args(argv)

    if args.stages is not None and args.no_beir:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        sys.path.insert(0, str(ROOT))
        from assistant.config import load_config
        from assistant.library import Library

        return run_stages(args, Library(load_config()), None)
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
    if args.stages is not None:
        return run_stages(args, lib, data)
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

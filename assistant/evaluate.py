"""`assistant eval`: retrieval quality on a BEIR folder, answer quality on a QA file.

Retrieval (``--beir DIR``): the corpus is ingested into its own collection
(``beir-<folder name>``) in the data folder, through the same chunker, embedder
and store as ``assistant ingest``, so it never mixes with the user's library and
a second run re-uses the index. Every test query goes through ``Library.retrieve``,
the path of ``ask`` and ``search`` with the configured stages; chunk hits become document hits (a document
ranks where its best chunk ranks) and the top 100 documents are scored with the
usual BEIR metrics (nDCG@10 with graded gains as in pytrec_eval, recall@10,
recall@100, MRR@10) and per-query retrieval latency.

Answers (``--qa FILE``): every question goes through ``Library.ask``; the answer
is checked against expected strings, the cited sources against the expected
files, and questions with no source file must be refused.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Iterable, Sequence

__all__ = [
    "cmd_eval",
    "load_beir",
    "index_beir",
    "beir_library",
    "evaluate_beir",
    "evaluate_qa",
    "ndcg_at_k",
    "recall_at_k",
    "mrr_at_k",
    "percentile",
    "doc_ranking",
    "query_metrics",
    "mean_metrics",
]

EXIT_OK = 0
EXIT_USAGE = 2

BEIR_PREFIX = "beir://"
DOC_DEPTH = 100  # documents kept per query (recall@100)
FOLLOW_UP_RULE = "follow-up questions are asked with the earlier turns as conversation history (see assistant/conversation.py)"


# --- metrics -------------------------------------------------------------------


def ndcg_at_k(ranked: Sequence[str], gains: dict[str, float], k: int = 10) -> float:
    """nDCG@k with linear graded gains and a log2(rank + 1) discount (trec_eval's ndcg_cut)."""
    dcg = sum(gains.get(d, 0.0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((g for g in gains.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], gains: dict[str, float], k: int) -> float:
    """Share of the relevant documents (gain > 0) found in the top k."""
    relevant = {d for d, g in gains.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def mrr_at_k(ranked: Sequence[str], gains: dict[str, float], k: int = 10) -> float:
    """1 / rank of the first relevant document in the top k, else 0."""
    for i, d in enumerate(ranked[:k], start=1):
        if gains.get(d, 0.0) > 0:
            return 1.0 / i
    return 0.0


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile with linear interpolation (numpy's default)."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * p / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def doc_ranking(chunk_docs: Iterable[str], depth: int = DOC_DEPTH) -> list[str]:
    """Chunk hits (as document ids, best first) -> documents, each where its best chunk ranks."""
    return list(dict.fromkeys(chunk_docs))[:depth]


METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


def query_metrics(ranked: Sequence[str], gains: dict[str, float]) -> dict[str, float]:
    """The BEIR metrics of one query's ranked document ids."""
    return {
        "ndcg@10": ndcg_at_k(ranked, gains, 10),
        "recall@10": recall_at_k(ranked, gains, 10),
        "recall@100": recall_at_k(ranked, gains, 100),
        "mrr@10": mrr_at_k(ranked, gains, 10),
    }


def mean_metrics(per_query: dict[str, dict[str, float]]) -> dict[str, float]:
    n = max(len(per_query), 1)
    return {k: round(sum(m[k] for m in per_query.values()) / n, 4) for k in METRICS}


# --- BEIR data -----------------------------------------------------------------


@dataclasses.dataclass
class BeirData:
    corpus: dict[str, tuple[str, str]]  # doc id -> (title, text)
    queries: dict[str, str]  # query id -> text, only those judged in the split
    qrels: dict[str, dict[str, float]]  # query id -> doc id -> gain


def _jsonl(path: Path) -> Iterable[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def load_beir(folder: Path, split: str = "test") -> BeirData:
    folder = Path(folder)
    corpus_path = next((folder / n for n in ("corpus.jsonl", "corpus.jsonl.gz") if (folder / n).is_file()), None)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for p, what in ((corpus_path, "corpus.jsonl[.gz]"), (folder / "queries.jsonl", "queries.jsonl"), (qrels_path, f"qrels/{split}.tsv")):
        if p is None or not p.is_file():
            raise FileNotFoundError(f"{folder}: no {what} (not a BEIR folder?)")
    corpus = {str(d["_id"]): (d.get("title") or "", d.get("text") or "") for d in _jsonl(corpus_path)}
    qrels: dict[str, dict[str, float]] = {}
    with open(qrels_path, encoding="utf-8", newline="") as f:
        for i, line in enumerate(f):
            cols = line.rstrip("\r\n").split("\t")
            if len(cols) < 3 or (i == 0 and not cols[2].strip().lstrip("-").isdigit()):
                continue  # the header, or a blank line
            qrels.setdefault(cols[0], {})[cols[1]] = float(cols[2])
    all_queries = {str(q["_id"]): q["text"] for q in _jsonl(folder / "queries.jsonl")}
    queries = {qid: all_queries[qid] for qid in qrels if qid in all_queries}
    return BeirData(corpus, queries, qrels)


def beir_config(config, folder: Path):
    """The library's config with the collection switched to this BEIR folder's own."""
    name = "beir-" + re.sub(r"[^A-Za-z0-9_-]+", "-", Path(folder).resolve().name).strip("-")
    return dataclasses.replace(config, library=dataclasses.replace(config.library, collection=name))


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def index_beir(library, corpus: dict[str, tuple[str, str]], *, quiet: bool = False) -> dict[str, int]:
    """Ingest BEIR documents into ``library`` (one file-like unit per document), skipping unchanged ones."""
    from .ingest import Ingestor, _Pending, write_lock
    from .store import FileRow
    from .types import Document, Section

    store, embedder = library.store, library.embedder
    with write_lock(library.config.data_dir, wait=True):
        store.collection  # settles any interrupted write
        store.check_embed_model(embedder.name)
        ingestor = Ingestor(library.config, store, embedder, library.registry)
        known = {r.path: r.content_hash for r in store.file_rows() if r.path.startswith(BEIR_PREFIX)}
        wanted = {BEIR_PREFIX + i for i in corpus}
        gone = [p for p in known if p not in wanted]
        removed = store.remove_files(gone) if gone else 0
        todo = []
        for doc_id, (title, text) in corpus.items():
            path = BEIR_PREFIX + doc_id
            digest = hashlib.sha256(f"{title}\0{text}".encode("utf-8")).hexdigest()
            if known.get(path) != digest:
                todo.append((path, digest, title, text))
        t0, done, embedded = time.perf_counter(), 0, 0
        pending: list[_Pending] = []
        pending_chunks = 0
        for path, digest, title, text in todo:
            doc = Document(sections=[Section(text=text or title)], title=title or None)
            chunks = ingestor.chunker.chunks(path, digest, doc)
            row = FileRow(path, digest, len(f"{title}{text}".encode()), 0, len(chunks), "beir", title or None, time.time())
            pending.append(_Pending(row, chunks))
            pending_chunks += len(chunks)
            done += 1
            if pending_chunks >= ingestor.group_chunks or done == len(todo):
                embedded += ingestor._write(pending)[2]  # the same embed + Store.replace_files path as ingest
                pending, pending_chunks = [], 0
                if not quiet:
                    rate = done / (time.perf_counter() - t0)
                    _log(f"indexing: {done}/{len(todo)} documents, {embedded} chunks embedded, ETA {(len(todo) - done) / rate:.0f} s")
        store.snapshot_vectors()  # as `assistant ingest` leaves it: the searches below are the ones a user's make
    return {"documents_indexed": len(todo), "documents_removed": len(gone), "chunks_removed": removed, "chunks_embedded": embedded}


def evaluate_beir(library, data: BeirData, *, mode: str | None = None, limit: int | None = None, depth: int | None = None) -> dict:
    """Run every judged query through ``Library.retrieve`` (the path of ``ask`` and ``search``, stages
    included), ``depth`` hits deep; the metrics as one dict, with each step's median time."""
    mode = mode or library.config.retrieval.mode
    counts = library.store.counts()
    # enough chunks to fill DOC_DEPTH documents (several chunks can come from one document)
    depth = depth or max(library.config.retrieval.candidates, math.ceil(DOC_DEPTH * counts["chunks"] / max(counts["files"], 1) * 1.5))
    qids = list(data.queries)[: limit or None]
    library.retrieve("warm-up", top_k=depth, mode=mode)  # loads the models; not timed
    per_query: dict[str, dict[str, float]] = {}
    latencies = []
    steps: dict[str, list[float]] = {}
    for qid in qids:
        t0 = time.perf_counter()
        found = library.retrieve(data.queries[qid], top_k=depth, mode=mode)
        latencies.append((time.perf_counter() - t0) * 1000)
        for step, seconds in found.timings.items():
            steps.setdefault(step, []).append(seconds * 1000)
        ranked = doc_ranking(h.path.removeprefix(BEIR_PREFIX) for h in found.hits)
        per_query[qid] = query_metrics(ranked, data.qrels[qid])
    out: dict = mean_metrics(per_query)
    out.update(
        latency_p50_ms=round(percentile(latencies, 50), 2),
        latency_p95_ms=round(percentile(latencies, 95), 2),
        step_p50_ms={step: round(percentile(v, 50), 2) for step, v in steps.items()},
        queries=len(qids),
        mode=mode,
        documents=counts["files"],
        chunks=counts["chunks"],
        retrieval=dataclasses.asdict(library.config.retrieval),
    )
    out["per_query"] = per_query
    return out


# --- QA ------------------------------------------------------------------------


def _norm(s: str) -> str:
    return re.sub(r"(?<=\d),(?=\d{3}\b)", "", s).lower()


def _contains(answer: str, needles: Iterable[str]) -> bool:
    a = _norm(answer)
    return any(_norm(n) in a for n in needles if n)


def _path_matches(path: str, wanted: Iterable[str]) -> bool:
    return any(path == w or path.endswith("/" + w.lstrip("/")) for w in wanted)


def _answer_part(text: str) -> str:
    """The answer without its note on an older version (that note quotes another file on purpose)."""
    return text.split(" An older version, `", 1)[0]


def unsupported(answer) -> list[str]:
    """Facts (numbers, dates, codes, names) of a non-refusal answer that no cited passage holds."""
    from .facts import facts

    cited = "\n".join(f"{s.hit.heading or ''}\n{s.hit.text}" for s in answer.sources if s.cited)
    return facts(_answer_part(answer.text)).missing_from(facts(cited), cited)


def evaluate_qa(library, items: list[dict]) -> dict:
    """Every question through ``Library.ask`` (the path the CLI and TUI take).

    An answer is right when it holds one of ``must_contain`` and none of ``must_not_contain``;
    a question with no ``source_files`` is right when refused. A citation is right only when a
    cited passage is from one of ``source_files`` and itself holds the answer. ``unsupported_rate``
    is the share of non-refusal answers with a fact that no cited passage holds.
    """
    from .types import NOT_FOUND_HOW

    by_id = {it["id"]: it for it in items}
    answers: dict[str, object] = {}
    results = []
    first_tokens, totals = [], []
    answerable_ok, answerable_n, refusal_ok, refusal_n = 0, 0, 0, 0
    non_refusals, unsupported_n = 0, 0
    for it in items:
        history = []
        prev = it.get("follows")
        while prev in by_id and prev in answers:  # the conversation this question continues, oldest first
            history.insert(0, answers[prev])
            prev = by_id[prev].get("follows")
        ans = library.ask(it["question"], history=history)
        answers[it["id"]] = ans
        first_tokens.append(ans.timings.get("first_token_s", 0.0))
        totals.append(ans.timings.get("total_s", 0.0))
        refused = ans.how == NOT_FOUND_HOW or not ans.grounded
        bad = _contains(_answer_part(ans.text), it.get("must_not_contain") or [])
        sources = it.get("source_files") or []
        missing = [] if refused else unsupported(ans)
        if not refused:
            non_refusals += 1
            unsupported_n += bool(missing)
        if sources:
            want = it.get("must_contain") or []
            correct = _contains(_answer_part(ans.text), want) and not bad
            cited_ok = any(s.cited and _path_matches(s.hit.path, sources) and _contains(s.hit.text, want)
                           for s in ans.sources)
            answerable_n += 1
            answerable_ok += cited_ok
        else:  # not in the documents: the right answer is a refusal
            correct = refused and not bad
            cited_ok = None
            refusal_n += 1
            refusal_ok += refused
        results.append({
            "id": it["id"], "kind": it.get("kind", ""), "question": it["question"], "answer": ans.text,
            "how": ans.how, "correct": correct, "cited_ok": cited_ok, "unsupported": missing,
            "sources": [{"n": s.n, "path": s.hit.path, "page": s.hit.page, "start_line": s.hit.start_line,
                         "end_line": s.hit.end_line, "cited": s.cited} for s in ans.sources],
        })
    n = len(results)
    kinds: dict[str, list[bool]] = {}
    for r in results:
        kinds.setdefault(r["kind"] or "-", []).append(r["correct"])
    hows: dict[str, int] = {}
    for r in results:
        hows[r["how"]] = hows.get(r["how"], 0) + 1
    return {
        "answer_accuracy": round(sum(r["correct"] for r in results) / n, 4) if n else 0.0,
        "citation_accuracy": round(answerable_ok / answerable_n, 4) if answerable_n else None,
        "refusal_accuracy": round(refusal_ok / refusal_n, 4) if refusal_n else None,
        "unsupported_rate": round(unsupported_n / non_refusals, 4) if non_refusals else 0.0,
        "by_kind": {k: {"questions": len(v), "accuracy": round(sum(v) / len(v), 4)} for k, v in sorted(kinds.items())},
        "how": hows,
        "first_token_p50_s": round(percentile(first_tokens, 50), 3),
        "total_p50_s": round(percentile(totals, 50), 3),
        "questions": n,
        "results": results,
    }


def load_qa(path: Path) -> list[dict]:
    items = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, start=1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{i}: not valid JSON: {e}") from None
    return items


# --- the command ---------------------------------------------------------------


def beir_library(library, folder: Path):
    """A Library over the BEIR folder's own collection, sharing ``library``'s embedder and plugins."""
    from .library import Library

    return Library(beir_config(library.config, folder), registry=library.registry, embedder=library.embedder)


def _print_beir(folder: Path, split: str, res: dict) -> None:
    print(f"BEIR {Path(folder).name} ({split}): {res['queries']} queries, {res['documents']} documents, "
          f"{res['chunks']} chunks, mode {res['mode']}")
    rows = [("nDCG@10", res["ndcg@10"]), ("recall@10", res["recall@10"]), ("recall@100", res["recall@100"]),
            ("MRR@10", res["mrr@10"])]
    for name, v in rows:
        print(f"  {name:<12} {v:.4f}")
    print(f"  {'latency':<12} p50 {res['latency_p50_ms']:.1f} ms, p95 {res['latency_p95_ms']:.1f} ms")


def _print_qa(res: dict) -> None:
    for r in res["results"]:
        mark = "ok " if r["correct"] else "BAD"
        cite = {True: "cited", False: "not cited", None: "-"}[r["cited_ok"]]
        print(f"  {mark} {r['id']:<6} {r['kind'][:14]:<14} {r['how']:<14} [{cite}] {r['answer'][:100]}")

    def pct(v):
        return "n/a" if v is None else f"{v:.1%}"

    print(f"{res['questions']} questions: answers {pct(res['answer_accuracy'])}, "
          f"citations {pct(res['citation_accuracy'])}, refusals {pct(res['refusal_accuracy'])}, "
          f"unsupported {pct(res['unsupported_rate'])}; "
          f"first token p50 {res['first_token_p50_s']:.2f} s, total p50 {res['total_p50_s']:.2f} s")
    if len(res["by_kind"]) > 1:
        print("by kind: " + ", ".join(f"{k} {v['accuracy']:.0%} of {v['questions']}" for k, v in res["by_kind"].items()))
    print("how: " + ", ".join(f"{k} {v}" for k, v in sorted(res["how"].items())))
    print(f"note: {FOLLOW_UP_RULE}")


def cmd_eval(args, library) -> int:
    from .library import LibraryError

    if bool(args.beir) == bool(args.qa):
        print("assistant eval: give exactly one of --beir DIR or --qa FILE", file=sys.stderr)
        return EXIT_USAGE
    if args.beir:
        try:
            data = load_beir(args.beir, args.split)
        except FileNotFoundError as e:
            raise LibraryError(str(e)) from None
        lib = beir_library(library, args.beir)
        info = index_beir(lib, data.corpus, quiet=args.json)
        res = evaluate_beir(lib, data, mode=args.mode, limit=args.limit)
        res.pop("per_query")
        res.update(dataset=Path(args.beir).name, split=args.split, collection=lib.store.collection_name, index=info)
        if args.json:
            print(json.dumps(res, indent=2))
        else:
            _print_beir(args.beir, args.split, res)
        return EXIT_OK
    try:
        items = load_qa(args.qa)[: args.limit or None]
    except (OSError, ValueError) as e:
        raise LibraryError(f"cannot read the QA file: {e}") from None
    res = evaluate_qa(library, items)
    if args.json:
        print(f"note: {FOLLOW_UP_RULE}", file=sys.stderr)
        print(json.dumps(res, indent=2, ensure_ascii=False))
    else:
        _print_qa(res)
    return EXIT_OK

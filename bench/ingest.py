"""Ingest throughput against raw SentenceTransformer.encode of the same texts, and the cost of a no-change re-run.

    .venv/bin/python bench/ingest.py [--files 2000] [--rounds 1] [--batch-size 16[,32]]
                                     [--read-ahead on[,off]] [--reader-process on[,off]] [--threads N] [--keep DIR]

Generates a corpus of mixed formats (txt, md, html, csv, json, py, docx, pdf) and
ingests it with the real embedded model into a fresh data folder. The baseline is
one raw ``SentenceTransformer.encode`` call over the very texts that ingest
embedded, with the same model object, batch size and torch threads, in the same
process. A second reference, "encode by token count", encodes the same texts in
batches cut from them sorted by token count, one call per batch, which is how
ingest batches them: ingest against it is the cost of everything but the
embedding. A second ingest with nothing changed follows the first.

``--reader-process on,off`` compares reading in a child process (the default,
which makes ``[ingest] file_timeout_s`` enforceable: assistant/reader_process.py)
with reading in the ingest's own process (``file_timeout_s = 0``).

Several batch sizes, read-ahead or reader-process settings are compared in one run, interleaved:
each round ingests once per setting (each time into a new data folder) and
encodes both references once per batch size, in reverse order every other round,
so a change in the machine's load hurts every setting alike. With ``--rounds`` > 1
the best time of each is used (the least disturbed), and every run is printed.
The model is loaded before any timing. The first ingest, which also gives the
texts and is followed by the no-change re-run, is the "cold" one: it pays the
one-time imports of the readers and llama-index, as a real ``assistant ingest``
does; it is printed with its ratio to the best baseline, and takes no part in
the comparison of settings. The load average is printed; it counts this process
too (about 2 while it embeds on 2 threads).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

WORDS = (
    "garden robot battery charge blade motor sensor rain slope meter firmware update schedule "
    "station boundary wire signal error restart warranty month price euro spare part stock order "
    "report revenue employee market export season lawn height quiet mode sunday hedge orchard root"
).split()


def _para(rng: random.Random, n: int) -> str:
    out = []
    for _ in range(n):
        words = rng.choices(WORDS, k=rng.randint(8, 18))
        out.append(" ".join(words).capitalize() + f" {rng.randint(1, 9999)}.")
    return " ".join(out)


def make_corpus(root: Path, n_files: int, seed: int = 7) -> None:
    from docx import Document as Docx
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    rng = random.Random(seed)
    kinds = ["txt", "md", "html", "csv", "json", "py", "txt", "md", "docx", "pdf"]
    for i in range(n_files):
        kind = kinds[i % len(kinds)]
        folder = root / f"group{i % 20:02}"
        folder.mkdir(parents=True, exist_ok=True)
        p = folder / f"doc{i:05}.{kind}"
        paras = [_para(rng, rng.randint(3, 8)) for _ in range(rng.randint(1, 4))]
        if kind == "txt":
            p.write_text("\n\n".join(paras))
        elif kind == "md":
            p.write_text("".join(f"## Section {j}\n\n{t}\n\n" for j, t in enumerate(paras)))
        elif kind == "html":
            p.write_text(f"<html><head><title>Doc {i}</title></head><body>" + "".join(f"<p>{t}</p>" for t in paras) + "</body></html>")
        elif kind == "csv":
            p.write_text("id,name,note\n" + "".join(f"{j},{rng.choice(WORDS)},{t[:120]}\n" for j, t in enumerate(paras)))
        elif kind == "json":
            p.write_text(json.dumps({"id": i, "items": [{"note": t} for t in paras]}))
        elif kind == "py":
            p.write_text("".join(f"# {t}\nVALUE_{j} = {j}\n\n" for j, t in enumerate(paras)))
        elif kind == "docx":
            d = Docx()
            for t in paras:
                d.add_paragraph(t)
            d.save(p)
        else:
            c = canvas.Canvas(str(p), pagesize=A4)
            for t in paras:
                y = 800
                for k in range(0, len(t), 90):
                    c.drawString(40, y, t[k : k + 90])
                    y -= 14
                c.showPage()
            c.save()


def _load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--keep", type=Path, default=None, help="corpus folder to reuse/keep")
    ap.add_argument("--rounds", type=int, default=1, help="rounds of every setting and baseline, alternating order")
    ap.add_argument("--batch-size", default="", help="ingest.batch_size, a comma list to compare (default: config's)")
    ap.add_argument("--read-ahead", default="on", help="on, off or on,off: read the next files while embedding")
    ap.add_argument("--reader-process", default="on",
                    help="on, off or on,off: readers in a child process (ingest.file_timeout_s > 0) or in-process")
    ap.add_argument("--threads", type=int, default=None, help="embedding.threads (default: the config's; 0 = torch's)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    corpus = args.keep or work / "corpus"
    if not corpus.exists() or not any(corpus.iterdir()):
        t = time.perf_counter()
        make_corpus(corpus, args.files)
        print(f"generated {args.files} files in {time.perf_counter() - t:.1f} s: {corpus}")

    import torch

    from assistant.config import Config
    from assistant.embed import Embedder
    from assistant.ingest import Ingestor
    from assistant.library import Library

    cfg = Config()
    if args.threads is not None:
        cfg.embedding.threads = args.threads
    batch_sizes = [int(b) for b in args.batch_size.split(",")] if args.batch_size else [cfg.ingest.batch_size]
    read_aheads = [{"on": True, "off": False}[x.strip()] for x in args.read_ahead.split(",")]
    processes = [{"on": True, "off": False}[x.strip()] for x in args.reader_process.split(",")]
    timeout = cfg.ingest.file_timeout_s or 120.0
    embedder = Embedder(cfg.embedding)
    embedder.embed(["warm-up"])  # model load is not ingest throughput
    print(f"torch threads {torch.get_num_threads()}, os.cpu_count {os.cpu_count()}; {_load()}")

    runs = 0

    def ingest(batch: int, read_ahead: bool, process: bool):
        nonlocal runs
        runs += 1
        os.environ["ASSISTANT_DATA_DIR"] = str(work / f"data{runs}")
        cfg.ingest.batch_size = batch
        Ingestor.read_ahead = read_ahead
        cfg.ingest.file_timeout_s = timeout if process else 0.0
        lib = Library(cfg, embedder=embedder)
        return lib, lib.ingest([corpus])

    def baseline(texts: list[str], batch: int) -> float:
        t = time.perf_counter()
        embedder.model.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True,
                              show_progress_bar=False)
        return time.perf_counter() - t

    def by_tokens(texts: list[str], batch: int) -> float:
        """The same encode calls, one per batch, on batches cut from the texts sorted by token count."""
        t = time.perf_counter()
        for i in range(0, len(texts), batch):
            embedder.model.encode(texts[i : i + batch], batch_size=batch, normalize_embeddings=True,
                                  convert_to_numpy=True, show_progress_bar=False)
        return time.perf_counter() - t

    settings = [(b, r, p) for b in batch_sizes for r in read_aheads for p in processes]
    lib, first = ingest(*settings[0])
    second = lib.ingest([corpus])
    # the texts ingest embedded: each distinct chunk text once, in ingest order
    texts = list(dict.fromkeys(r[0] for r in lib.store.db.execute("SELECT embed_text FROM chunks ORDER BY rowid")))
    assert len(texts) == first.chunks_embedded, (len(texts), first.chunks_embedded)
    n = len(texts)
    counts = embedder.tokenizer(texts, add_special_tokens=False)["input_ids"]
    token_sorted = [t for _, t in sorted(zip((-len(c) for c in counts), texts), key=lambda x: x[0])]
    ingest_s: dict[tuple[int, bool, bool], list[float]] = {s: [] for s in settings}
    raw_s: dict[int, list[float]] = {b: [] for b in batch_sizes}
    sorted_s: dict[int, list[float]] = {b: [] for b in batch_sizes}

    def name(s: tuple[int, bool, bool]) -> str:
        return f"batch {s[0]}, read-ahead {'on' if s[1] else 'off'}, reader process {'on' if s[2] else 'off'}"

    print(f"\n{'round':<6}{'run':<70}{'chunks/s':>10}   after the run")
    print(f"{'cold':<6}{'ingest, ' + name(settings[0]):<70}{n / first.seconds:>10.1f}   {_load()}")
    for rnd in range(args.rounds):
        steps = [(k, b) for b in batch_sizes for k in ("raw", "by tokens")] + [("ingest", s) for s in settings]
        if rnd % 2:
            steps.reverse()
        for kind, what in steps:
            if kind == "ingest":
                seconds = ingest(*what)[1].seconds
                ingest_s[what].append(seconds)
                label = "ingest, " + name(what)
            elif kind == "raw":
                seconds = baseline(texts, what)
                raw_s[what].append(seconds)
                label = f"raw encode, batch {what}"
            else:
                seconds = by_tokens(token_sorted, what)
                sorted_s[what].append(seconds)
                label = f"encode by token count, batch {what}"
            print(f"{rnd + 1:<6}{label:<70}{n / seconds:>10.1f}   {_load()}")

    print(f"\nfiles: {first.files_seen} seen, {first.files_ingested} ingested, {len(first.files_failed)} failed")
    print(f"chunks: {first.chunks_total} stored, {first.chunks_embedded} embedded ({first.chunks_reused} reused)")
    best = " (best of each)" if args.rounds > 1 else ""
    print(f"\n{'chunks/s' + best:<80}{'value':>10}{'baseline':>10}{'ratio':>8}")
    for s in settings:
        ing, raw = min(ingest_s[s]), min(raw_s[s[0]])
        print(f"{'ingest vs raw encode, ' + name(s):<80}{n / ing:>10.1f}{n / raw:>10.1f}{raw / ing:>8.2f}")
    for s in settings:  # the pipeline's own cost, with the batching it uses taken out
        ing, raw = min(ingest_s[s]), min(sorted_s[s[0]])
        print(f"{'ingest vs encode by token count, ' + name(s):<80}{n / ing:>10.1f}{n / raw:>10.1f}"
              f"{raw / ing:>8.2f}")
    cold_raw = min(raw_s[settings[0][0]])
    print(f"{'cold first ingest (with imports), ' + name(settings[0]):<80}{n / first.seconds:>10.1f}"
          f"{n / cold_raw:>10.1f}{cold_raw / first.seconds:>8.2f}")
    print(f"{'ingest files/s (cold first run)':<80}{first.files_seen / first.seconds:>10.1f}")
    print(f"{'no-change re-run s vs first run s':<80}{second.seconds:>10.2f}{first.seconds:>10.2f}"
          f"{second.seconds / first.seconds:>8.3f}")


if __name__ == "__main__":
    main()

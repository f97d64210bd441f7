"""Ingest throughput against raw SentenceTransformer.encode, and the cost of a no-change re-run.

    .venv/bin/python bench/ingest.py [--files 2000] [--keep DIR]

Generates a corpus of mixed formats (txt, md, html, csv, json, py, docx, pdf),
ingests it with the real embedded model into a fresh data folder, then encodes
the very same chunk texts with the raw SentenceTransformer in the same process
(the baseline), and runs a second ingest with nothing changed. Prints both side
by side with their ratios.
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--keep", type=Path, default=None, help="corpus folder to reuse/keep")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    corpus = args.keep or work / "corpus"
    if not corpus.exists() or not any(corpus.iterdir()):
        t = time.perf_counter()
        make_corpus(corpus, args.files)
        print(f"generated {args.files} files in {time.perf_counter() - t:.1f} s: {corpus}")
    os.environ["ASSISTANT_DATA_DIR"] = str(work / "data")

    from assistant.config import Config
    from assistant.library import Library

    lib = Library(Config())
    lib.embedder.embed(["warm-up"])  # model load is not ingest throughput
    first = lib.ingest([corpus])
    second = lib.ingest([corpus])
    texts = [r[0] for r in lib.store.db.execute("SELECT embed_text FROM chunks ORDER BY rowid")]
    unique = list(dict.fromkeys(texts))
    t = time.perf_counter()
    lib.embedder.model.encode(unique, batch_size=lib.config.ingest.batch_size, normalize_embeddings=True)
    raw_s = time.perf_counter() - t

    pipe_rate = first.chunks_embedded / first.seconds
    raw_rate = len(unique) / raw_s
    print(f"\nfiles: {first.files_seen} seen, {first.files_ingested} ingested, {len(first.files_failed)} failed")
    print(f"chunks: {first.chunks_total} stored, {first.chunks_embedded} embedded ({first.chunks_reused} reused)")
    print(f"{'measure':<42}{'value':>12}{'baseline':>12}{'ratio':>8}")
    print(f"{'ingest chunks/s vs raw encode chunks/s':<42}{pipe_rate:>12.1f}{raw_rate:>12.1f}{pipe_rate / raw_rate:>8.2f}")
    print(f"{'ingest files/s':<42}{first.files_seen / first.seconds:>12.1f}{'':>12}{'':>8}")
    print(f"{'no-change re-run s vs first run s':<42}{second.seconds:>12.2f}{first.seconds:>12.2f}{second.seconds / first.seconds:>8.3f}")
    print(f"(first run {first.seconds:.1f} s; raw encode of the same {len(unique)} texts {raw_s:.1f} s)")


if __name__ == "__main__":
    main()

"""Embedding backends side by side: torch SentenceTransformer vs ONNX Runtime int8, same texts, same run.

    .venv/bin/python bench/embed.py [--texts 384] [--batch-sizes 16,32,64,128] [--threads 2] [--rounds 3]

Texts are SciFact abstracts (title + abstract, truncated to 256 tokens like an
ingest chunk) when ../shared/data/scifact is there, else generated paragraphs.
Each (backend, batch size) is timed ``--rounds`` times, interleaved, and the best
round counts (the machine is shared: the best round is the least disturbed).
Prints chunks/s for both backends per batch size with the ratio onnx/torch, and
the cosine agreement of the int8 vectors with the torch ones.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact" / "corpus.jsonl.gz"


def load_texts(n: int, seed: int = 3) -> tuple[list[str], str]:
    if SCIFACT.is_file():
        out = []
        with gzip.open(SCIFACT, "rt", encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                out.append(f"{d.get('title', '')}\n{d.get('text', '')}".strip())
        random.Random(seed).shuffle(out)
        return out[:n], f"SciFact abstracts ({SCIFACT})"
    sys.path.insert(0, str(ROOT / "bench"))
    from ingest import _para

    rng = random.Random(seed)
    return [_para(rng, rng.randint(3, 12)) for _ in range(n)], "generated paragraphs"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=384)
    ap.add_argument("--batch-sizes", default="16,32,64,128")
    ap.add_argument("--threads", default="0", help="comma list; 0 = physical cores (onnx) / torch default")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-seq-length", type=int, default=256)
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT))

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from assistant.cores import physical_cores
    from assistant.embed import model_path
    from assistant.onnx_backend import OnnxSentenceEncoder

    texts, source = load_texts(args.texts)
    path = model_path("builtin")
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    thread_list = [int(t) for t in args.threads.split(",")]
    n_tok = OnnxSentenceEncoder(path, args.max_seq_length).tokenizer(
        texts, truncation=True, max_length=args.max_seq_length
    )["input_ids"]
    mean_tokens = sum(len(x) for x in n_tok) / len(n_tok)
    print(f"{len(texts)} texts: {source}; mean {mean_tokens:.0f} tokens (max_seq_length {args.max_seq_length})")
    print(f"physical cores: {physical_cores()}, os.cpu_count: {os.cpu_count()}, torch default threads: {torch.get_num_threads()}")

    st = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    st.max_seq_length = args.max_seq_length
    default_torch_threads = torch.get_num_threads()

    results: dict[tuple[str, int, int], float] = {}
    cos_report = {}
    for threads in thread_list:
        t_eff = threads or physical_cores()
        onnx = OnnxSentenceEncoder(path, args.max_seq_length, threads=threads)
        ref = None
        for r in range(args.rounds):
            for bs in batch_sizes:
                torch.set_num_threads(threads or default_torch_threads)
                st.encode(texts[:bs], batch_size=bs)  # warm-up of this shape range
                t = time.perf_counter()
                v_t = st.encode(texts, batch_size=bs, normalize_embeddings=True, show_progress_bar=False)
                key = ("torch", t_eff if threads else default_torch_threads, bs)
                results[key] = max(results.get(key, 0.0), len(texts) / (time.perf_counter() - t))
                onnx.encode(texts[:bs], batch_size=bs)
                t = time.perf_counter()
                v_o = onnx.encode(texts, batch_size=bs, normalize_embeddings=True)
                key = ("onnx-int8", t_eff, bs)
                results[key] = max(results.get(key, 0.0), len(texts) / (time.perf_counter() - t))
                if ref is None:
                    ref = v_t
                    cos = (np.asarray(v_o) * np.asarray(v_t)).sum(axis=1)
                    cos_report[t_eff] = (float(cos.mean()), float(cos.min()))
        torch.set_num_threads(default_torch_threads)

    print(f"\nchunks/s, best of {args.rounds} interleaved rounds")
    print(f"{'threads':>7}{'batch':>7}{'torch':>10}{'onnx-int8':>11}{'ratio':>8}")
    for threads in thread_list:
        t_eff = threads or physical_cores()
        t_torch = t_eff if threads else default_torch_threads
        for bs in batch_sizes:
            a, b = results[("torch", t_torch, bs)], results[("onnx-int8", t_eff, bs)]
            print(f"{t_eff:>7}{bs:>7}{a:>10.1f}{b:>11.1f}{b / a:>8.2f}")
    best_t = max((k for k in results if k[0] == "torch"), key=results.get)
    best_o = max((k for k in results if k[0] == "onnx-int8"), key=results.get)
    print(f"best torch: {results[best_t]:.1f}/s (threads {best_t[1]}, batch {best_t[2]}); "
          f"best onnx-int8: {results[best_o]:.1f}/s (threads {best_o[1]}, batch {best_o[2]}); "
          f"ratio of bests {results[best_o] / results[best_t]:.2f}")
    for t_eff, (mean, low) in cos_report.items():
        print(f"cosine(onnx-int8, torch) over {len(texts)} texts, {t_eff} threads: mean {mean:.4f}, min {low:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

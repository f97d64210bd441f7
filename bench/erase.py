"""The cost of erasing removed text (docs/security.md), against the store as it was, in the same run.

    .venv/bin/python bench/erase.py [--chunks 6000] [--rounds 3] [--remove-share 0.1]

Two settings, interleaved (each round runs both, in reverse order every other round;
the best round of each is kept):

- "erase": the store as it is: Chroma's vector index saved (and its write-ahead
  log purged) after every write (hnsw sync_threshold 2), and after the remove ``Store.erase_deleted`` (VACUUM of
  chroma.sqlite3, WAL truncate, unused HNSW rows zeroed);
- "baseline": Chroma's default log (index saved every 1000 records written)
  and no erase after the remove: what the store did before.

Each writes ``--chunks`` synthetic passages (384-dim random vectors, ~600 characters
of text, 20 per file) through ``Store.replace_files`` in groups of 512 (as ingest
does), then removes ``--remove-share`` of the files. No model is loaded: this
times the store alone, which is where the two differ.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _rows(n_chunks: int, rng: np.random.Generator):
    from assistant.store import ChunkRow, FileRow

    files, chunks = [], []
    per_file = 20
    for f in range(0, n_chunks, per_file):
        path = f"/bench/docs/file{f // per_file:05d}.txt"
        n = min(per_file, n_chunks - f)
        files.append(FileRow(path, hashlib.sha256(path.encode()).hexdigest(), 1000, 1, n, "text", None, 0.0))
        for i in range(n):
            text = f"Passage {i} of {path}: " + " ".join(f"word{rng.integers(0, 5000)}" for _ in range(80))
            h = hashlib.sha256(text.encode()).hexdigest()
            chunks.append(ChunkRow(f"{h[:16]}-{f + i}", path, i, text, text, h, None, i + 1, i + 1, None))
    vectors = rng.standard_normal((len(chunks), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return files, chunks, vectors


def _run(setting: str, files, chunks, vectors, remove_share: float) -> tuple[float, float]:
    import assistant.store as store_mod
    from assistant.config import Config

    saved = store_mod._HNSW_LOG, store_mod._COLLECTION_METADATA
    if setting == "baseline":
        store_mod._HNSW_LOG = {"batch_size": 100, "sync_threshold": 1000}  # Chroma's defaults
        store_mod._COLLECTION_METADATA = {"hnsw:space": "cosine"}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-erase-") as tmp:
            cfg = Config()
            cfg.library.data_dir = tmp
            os.environ.pop("ASSISTANT_DATA_DIR", None)
            store = store_mod.Store(cfg)
            store.collection
            by_path: dict[str, list[int]] = {}
            for i, c in enumerate(chunks):
                by_path.setdefault(c.path, []).append(i)
            t0 = time.perf_counter()
            group, rows = [], []
            for f in files:
                group.append(f)
                rows.extend(by_path[f.path])
                if len(rows) >= 512 or f is files[-1]:
                    store.replace_files(group, [chunks[i] for i in rows], vectors[rows], {})
                    group, rows = [], []
            write_s = time.perf_counter() - t0
            gone = [f.path for f in files[:: max(1, round(1 / remove_share))]]
            t0 = time.perf_counter()
            store.remove_files(gone)
            if setting == "erase":
                store.erase_deleted()
            remove_s = time.perf_counter() - t0
            store.close()
            size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
            print(f"  {setting:<8} write {write_s:7.2f} s   remove {len(gone)} files {remove_s:6.2f} s   "
                  f"data folder {size / 1e6:.1f} MB")
            return write_s, remove_s
    finally:
        store_mod._HNSW_LOG, store_mod._COLLECTION_METADATA = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", type=int, default=6000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--remove-share", type=float, default=0.1)
    args = ap.parse_args()
    files, chunks, vectors = _rows(args.chunks, np.random.default_rng(7))
    from llama_index.core.schema import TextNode  # noqa: F401  imported before any timing (seconds, once)
    from llama_index.vector_stores.chroma import ChromaVectorStore  # noqa: F401
    best: dict[str, list[float]] = {}
    for r in range(args.rounds):
        order = ["erase", "baseline"] if r % 2 == 0 else ["baseline", "erase"]
        print(f"round {r + 1}: {len(chunks)} chunks in {len(files)} files (load average {os.getloadavg()[0]:.1f})")
        for setting in order:
            w, rm = _run(setting, files, chunks, vectors, args.remove_share)
            b = best.setdefault(setting, [w, rm])
            best[setting] = [min(b[0], w), min(b[1], rm)]
    (ew, er), (bw, br) = best["erase"], best["baseline"]
    print(f"best of {args.rounds}: write {ew:.2f} s vs baseline {bw:.2f} s (x{ew / bw:.2f}); "
          f"remove {er:.2f} s vs baseline {br:.2f} s (x{er / br:.2f})")


if __name__ == "__main__":
    main()

"""Peak memory and time of reading and chunking hostile files, against ordinary files of the same size.

    .venv/bin/python bench/hostile.py [--mb 30] [--files 200] [--rounds 3]

Each case runs in its own fresh process (peak RSS, VmHWM, never shrinks back),
in the same run: the built-in reader of the file, then the ingest's Chunker with
the embedding model's real tokenizer (whose "words" over 100 characters are one
unknown token: what made a 30 MB line one chunk). Embedding is left out: the
ingest embeds a bounded group of chunks at a time. Cases:

  line.txt   : MB of one "word" (no space, no line break)
  prose.txt  : MB of ordinary sentences and lines (the baseline for line.txt)
  field.csv  : a CSV whose one field is MB/3 of letters
  rows.csv   : a CSV of ordinary rows, the same size (the baseline for field.csv)

Prints, for each, peak RSS above the process's own floor (the interpreter, the
tokenizer and the reader imported, measured in that process before reading),
seconds, chunks and the longest chunk in characters, and the ratios against
the baselines.

Then the cost of the time limit: ``--files`` files of bench/ingest.py's mixed
corpus read by the built-in readers through ``ReaderProcess`` (a child process,
as the ingest does with ``file_timeout_s > 0``) against the same readers called
in this process, interleaved for ``--rounds`` rounds, best of each; the child's
start is counted in the first.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def one(path: Path) -> dict:
    from assistant.chunking import Chunker
    from assistant.config import Config
    from assistant.embed import Embedder
    from assistant_readers import reader_for_suffix

    cfg = Config()
    embedder = Embedder(cfg.embedding)
    tok = embedder.tokenizer
    chunker = Chunker(embedder.count_tokens, lambda s: tok.encode(s, add_special_tokens=False),
                      cfg.ingest.chunk_size, cfg.ingest.chunk_overlap)
    reader = reader_for_suffix(path.suffix)
    chunker.chunks("warm", "up", _tiny())  # llama-index's imports and the tokenizer's caches
    floor = _rss_mb()
    t = time.perf_counter()
    rows = chunker.chunks(str(path), "bench", reader.read(path))
    seconds = time.perf_counter() - t
    return {"peak_mb": _peak_mb() - floor, "seconds": seconds, "chunks": len(rows),
            "longest": max(len(r.text) for r in rows)}


def _tiny():
    from assistant.types import Document, Section

    return Document([Section("A short warm-up sentence.")])


def make(folder: Path, mb: float) -> dict[str, Path]:
    import random

    size = int(mb * 1e6)
    rng = random.Random(5)
    words = "harbour ferry tide lighthouse pier anchor rope gull storm beacon chart keel".split()
    prose = []
    n = 0
    while n < size:
        line = " ".join(rng.choices(words, k=12)).capitalize() + f" {rng.randint(1, 999)}.\n"
        prose.append(line)
        n += len(line)
    cases = {
        "line.txt": "x" * size,
        "prose.txt": "".join(prose)[:size],
        "field.csv": "id,blob\n1," + "y" * (size // 3) + "\n",
        "rows.csv": "id,text\n" + "".join(f"{i},{line}" for i, line in enumerate(prose))[: size // 3],
    }
    out = {}
    for name, text in cases.items():
        out[name] = folder / name
        out[name].write_text(text, encoding="utf-8")
    return out


def reading_cost(files: int, rounds: int) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from ingest import make_corpus

    from assistant.reader_process import ReaderProcess
    from assistant_readers import reader_for_suffix

    with tempfile.TemporaryDirectory(prefix="bench-reading-") as tmp:
        make_corpus(Path(tmp), files)
        paths = sorted(p for p in Path(tmp).rglob("*") if p.is_file())
        for p in paths[:20]:  # imports, in this process
            reader_for_suffix(p.suffix).read(p)
        best = {"in process": float("inf"), "child process": float("inf")}
        for rnd in range(rounds):
            order = list(best) if rnd % 2 == 0 else list(reversed(best))
            for how in order:
                t = time.perf_counter()
                if how == "in process":
                    for p in paths:
                        reader_for_suffix(p.suffix).read(p)
                else:
                    proc = ReaderProcess(120.0)
                    try:
                        for p in paths:
                            proc.read(reader_for_suffix(p.suffix), p)
                    finally:
                        proc.close()
                seconds = time.perf_counter() - t
                best[how] = min(best[how], seconds)
                print(f"round {rnd + 1}: {how:<14}{seconds:>8.2f} s")
    inproc, child = best["in process"], best["child process"]
    print(f"reading {len(paths)} files, best of {rounds}: child process {child:.2f} s vs in process {inproc:.2f} s, "
          f"ratio {child / inproc:.2f} ({(child - inproc) / len(paths) * 1000:.1f} ms per file, the start included)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=30.0)
    ap.add_argument("--files", type=int, default=200, help="files read for the cost of the child process")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--one", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        files = make(Path(tmp), args.mb)
        results, sizes = {}, {name: path.stat().st_size / 1e6 for name, path in files.items()}
        for name, path in files.items():
            run = subprocess.run([sys.executable, __file__, "--one", str(path)], capture_output=True, text=True)
            if run.returncode != 0:
                raise SystemExit(run.stderr)
            results[name] = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"{'file':<12}{'MB':>8}{'peak MB':>10}{'seconds':>10}{'chunks':>10}{'longest':>10}")
    for name, r in results.items():
        print(f"{name:<12}{sizes[name]:>8.1f}{r['peak_mb']:>10.0f}{r['seconds']:>10.1f}{r['chunks']:>10}{r['longest']:>10}")
    for hostile, base in (("line.txt", "prose.txt"), ("field.csv", "rows.csv")):
        h, b = results[hostile], results[base]
        print(f"{hostile} vs {base}: peak memory {h['peak_mb'] / max(b['peak_mb'], 1):.2f}x, "
              f"time {h['seconds'] / max(b['seconds'], 1e-3):.2f}x")
    print()
    reading_cost(args.files, args.rounds)


if __name__ == "__main__":
    main()

"""kill -9 in the middle of an ingest, then a re-run: the same index as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from assistant.config import load_config
    from assistant.library import Library
    from assistant.testing import FakeEmbedder

    class SlowEmbedder(FakeEmbedder):
        def embed(self, texts, batch_size=32):
            time.sleep(float(sys.argv[2]))
            return super().embed(texts, batch_size)

    cfg = load_config()
    cfg.ingest.batch_size = 2  # small write groups, so the kill lands between them
    Library(cfg, embedder=SlowEmbedder()).ingest([sys.argv[1]])
    """
)


def _ingest(folder: Path, data: Path, delay: float) -> subprocess.Popen:
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(data)}
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(folder), str(delay)], env=env)


def _state(data: Path):
    db = sqlite3.connect(data / "state.sqlite")
    chunks = sorted(r[0] for r in db.execute("SELECT id FROM chunks"))
    files = sorted(db.execute("SELECT path, content_hash, n_chunks FROM files"))
    tokens = db.execute("SELECT COUNT(*) FROM chunk_tokens").fetchone()[0]
    db.close()
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(str(data / "chroma"), settings=Settings(anonymized_telemetry=False))
    vectors = sorted(client.get_collection("default").get(include=[])["ids"])
    return chunks, files, tokens, vectors


def test_kill_9_mid_ingest_then_rerun_equals_clean_run(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(60):
        body = "\n".join(f"Document {i} line {j}: the value of item {i}-{j} is {i * j}." for j in range(40))
        (folder / f"doc{i:02}.txt").write_text(body)
    crashed = tmp_path / "crashed"
    proc = _ingest(folder, crashed, delay=0.05)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until some files are committed, then kill
        try:
            db = sqlite3.connect(crashed / "state.sqlite")
            n = db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
            db.close()
        except sqlite3.Error:
            n = 0
        if n >= 5 or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the ingest finished before it could be killed; make it slower"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # one file changes while the library is down
    (folder / "doc00.txt").write_text("Changed after the crash.\n")
    assert _ingest(folder, crashed, delay=0).wait() == 0
    clean = tmp_path / "clean"
    assert _ingest(folder, clean, delay=0).wait() == 0
    c_chunks, c_files, c_tokens, c_vectors = _state(crashed)
    k_chunks, k_files, k_tokens, k_vectors = _state(clean)
    assert c_chunks == k_chunks == c_vectors == k_vectors
    assert c_files == k_files and c_tokens == k_tokens == len(k_chunks)

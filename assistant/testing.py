"""Fakes for fast tests, usable by plugin authors too.

``FakeEmbedder`` hashes words into a fixed-size unit vector (texts sharing words
are close); ``FakeGenerator`` answers with the first sentence of the first
passage it is given, citing it, streamed word by word. Neither loads a model.
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterator

import numpy as np

from .types import GenerationRequest, ModelInfo

__all__ = ["FakeEmbedder", "FakeGenerator"]

_WORD = re.compile(r"\w+")


class _WordTokenizer:
    def encode(self, text: str, add_special_tokens: bool = False) -> list[str]:
        return _WORD.findall(text)


class FakeEmbedder:
    name = "fake-embedder"

    def __init__(self, dim: int = 64):
        self.dim = dim
        self.tokenizer = _WordTokenizer()
        self.calls = 0  # texts embedded so far, to check that nothing is embedded twice

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text))

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for w in _WORD.findall(text.lower()):
            h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little")
            v[h % self.dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v + 1.0 / np.sqrt(self.dim)

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        self.calls += len(texts)
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vec(text)

    def embed_for_query(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


class FakeGenerator:
    """Answers from the first quoted passage in the prompt; records the last request."""

    def __init__(self, *, reply: str | None = None, context_length: int = 2048, chat_template: bool = False):
        self.reply = reply
        self.context_length = context_length
        self.chat_template = chat_template
        self.last_request: GenerationRequest | None = None

    def info(self) -> ModelInfo:
        return ModelInfo("fake-generator", self.context_length, self.chat_template)

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text)) + text.count("\n")

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        self.last_request = request
        if self.reply is not None:
            text = self.reply
        else:
            prompt = request.prompt or "\n".join(m["content"] for m in request.messages or [])
            prompt = prompt[prompt.rfind("[1] "):]  # past a worked example, the passages asked about
            m = re.search(r'\[1\][^\n]*\n"""\n(.*?)(?:\n"""|$)', prompt, re.S)
            q = re.search(r"Question: (.*)", prompt)
            words = set(_WORD.findall(q.group(1).lower())) if q else set()
            sentences = re.split(r"(?<=[.!?])\s+|\n+", m.group(1).strip()) if m else []
            best = max(sentences, key=lambda s: len(words & set(_WORD.findall(s.lower()))), default="")
            text = f"{best} [1]" if best else ""
        for i, word in enumerate(text.split(" ")):
            yield word if i == 0 else " " + word

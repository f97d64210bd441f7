"""``llamacpp_rerank``: a GGUF reranker (a BERT-style cross-encoder with a classification head,
e.g. bge-reranker-v2-m3 converted to GGUF) through llama.cpp's rank pooling.

llama-cpp-python 0.3.x has ``LLAMA_POOLING_TYPE_RANK``: with it, the model's
classification head runs and ``llama_get_embeddings_seq`` returns the score of each
sequence (its first float). ``Llama.embed`` cannot be used as is: it tokenizes one
string with no separator tokens, so each pair is tokenized here the way llama.cpp's
own server does (``BOS query EOS SEP passage EOS``) and decoded through the same
batch and context objects ``Llama.embed`` uses.

A GGUF that does not declare rank pooling (a generative model, an embedding model)
is refused on the first query with a clear error, as is an installed
llama-cpp-python without rank pooling. The project's tests have no
GGUF reranker to run (none is on PyPI and nothing may be downloaded): they check
these errors; see docs/plugins.md.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

from assistant.types import Hit, StageContext


class LlamaCppReranker:
    def __init__(self, *, model: str = "", candidates: int = 30, n_ctx: int = 1024, threads: int = 0):
        if not model:
            raise ValueError("plugins.llamacpp_rerank.model: set it to a reranker .gguf file (nothing is downloaded)")
        path = Path(model).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"plugins.llamacpp_rerank.model: no such file: {path}")
        if candidates < 1 or n_ctx < 64:
            raise ValueError("plugins.llamacpp_rerank: candidates must be 1 or more, n_ctx 64 or more")
        self.path = path
        self.candidates = candidates
        self.n_ctx = n_ctx
        self.threads = threads
        self._llm = None
        self._lock = threading.Lock()

    def _load(self):
        import llama_cpp

        rank = getattr(llama_cpp, "LLAMA_POOLING_TYPE_RANK", None)
        if rank is None:
            raise RuntimeError(f"llama-cpp-python {llama_cpp.__version__} has no rank pooling (LLAMA_POOLING_TYPE_RANK)")
        llm = llama_cpp.Llama(str(self.path), embedding=True, pooling_type=rank, n_ctx=self.n_ctx, n_batch=self.n_ctx,
                              n_ubatch=self.n_ctx, n_threads=self.threads or None, verbose=False)
        # llama.cpp accepts rank pooling for any model and fails only at decode; a reranker's GGUF
        # declares it (convert_hf_to_gguf writes ARCH.pooling_type = 4 for a sequence classifier)
        arch = llm.metadata.get("general.architecture", "")
        if llm.metadata.get(f"{arch}.pooling_type") != str(rank):
            llm.close()
            raise RuntimeError(f"{self.path.name} is not a reranker model: its GGUF does not declare rank pooling "
                               f"({arch}.pooling_type is {llm.metadata.get(f'{arch}.pooling_type', 'unset')})")
        return llm

    def score(self, query: str, text: str) -> float:
        import llama_cpp

        with self._lock:
            if self._llm is None:
                self._llm = self._load()
            llm = self._llm
            vocab = llm._model  # the wrapped model: its special tokens
            q = llm.tokenize(query.encode("utf-8"), add_bos=False, special=False)
            d = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
            room = self.n_ctx - len(q) - 4
            tokens = [vocab.token_bos(), *q, vocab.token_eos(), vocab.token_sep(), *d[: max(room, 0)], vocab.token_eos()]
            llm._ctx.kv_cache_clear()
            llm._batch.reset()
            llm._batch.add_sequence(tokens[: self.n_ctx], 0, True)
            llm._ctx.decode(llm._batch)
            llm._batch.reset()
            return float(llama_cpp.llama_get_embeddings_seq(llm._ctx.ctx, 0)[0])

    def rerank(self, query: str, hits: list[Hit], context: StageContext) -> list[Hit]:
        head, tail = hits[: self.candidates], hits[self.candidates :]
        scored = [dataclasses.replace(h, score=self.score(query, h.text)) for h in head]
        return sorted(scored, key=lambda h: -h.score) + tail

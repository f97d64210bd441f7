"""ONNX Runtime int8 backend for the sentence-transformers embedding model.

``OnnxSentenceEncoder`` is a drop-in for the part of ``SentenceTransformer`` the
:class:`~assistant.embed.Embedder` uses (``encode`` and
``get_sentence_embedding_dimension``). On first use it exports the local
Hugging Face model OFFLINE (``torch.onnx.export``, the TorchScript exporter,
``dynamo=False``: it needs only the ``onnx`` package, not ``onnxscript``) and
quantizes the weights to int8 with ``onnxruntime.quantization.quantize_dynamic``
(per-channel, signed: per-tensor int8 loses too much, mean cosine to torch
~0.94 against ~0.995 per-channel). Both files are cached::

    ${XDG_CACHE_HOME:-~/.cache}/assistant/onnx/<hash>/model.onnx
    ${XDG_CACHE_HOME:-~/.cache}/assistant/onnx/<hash>/model.int8.onnx

Privacy: onnxruntime 1.32's Linux wheel ships Microsoft 1DS telemetry, on by
default: creating a session writes a device id and a queue of "ProcessInfo"
events (OS, CPU, python path, memory) under ``~/.cache/Microsoft/DeveloperTools``
for upload to ``mobile.events.data.microsoft.com``. Only the environment variable
``ORT_DISABLE_TELEMETRY=1``, set before onnxruntime is first imported, stops it
(``onnxruntime.disable_telemetry_events()`` comes too late), so this module sets
it on import.

``<hash>`` covers the model folder's resolved path, its config and the size and
mtime of its weight files, and the export recipe version, so a changed model or
recipe gets a fresh export. Files are written to a temporary name and moved into
place with ``os.replace``; a lock file keeps two processes from exporting at once.

Encoding mirrors sentence-transformers: tokenize with the model's fast tokenizer
(its ``tokenizer.json`` through the ``tokenizers`` library, the very object
transformers would wrap; truncated to ``max_seq_length``; transformers, and with
it torch, is imported only for a model folder without ``tokenizer.json`` and for
the one-time export), batch texts of similar length together
(sorted by token count, longest first), pool as ``1_Pooling/config.json`` says
(mean over the attention mask for all-MiniLM-L6-v2), L2-normalise.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .cores import physical_cores

# Before anything imports onnxruntime (see the module docstring).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__all__ = ["OnnxSentenceEncoder", "onnx_cache_dir", "ensure_exported"]

# Bump when the export or quantization recipe changes: old caches are then ignored.
RECIPE = "bert-ts-opset17-eager/int8-s8-perchannel/v1"
OPSET = 17
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def onnx_cache_dir(model_dir: Path) -> Path:
    """The cache folder of one model folder's export."""
    model_dir = Path(model_dir).resolve()
    h = hashlib.sha256(RECIPE.encode())
    h.update(str(model_dir).encode())
    cfg = model_dir / "config.json"
    if cfg.is_file():
        h.update(cfg.read_bytes())
    for p in sorted(model_dir.iterdir()):
        if p.suffix in (".safetensors", ".bin") and p.is_file():
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    root = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(root) / "assistant" / "onnx" / h.hexdigest()[:16]


@contextmanager
def _locked(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: atomic replace still keeps files whole
        yield
        return
    with open(folder / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _tmp_name(final: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=final.name + ".", suffix=".tmp", dir=final.parent)
    os.close(fd)
    return Path(name)


def _export(model_dir: Path, out: Path) -> None:
    """Export the Hugging Face encoder to ONNX (last_hidden_state), offline."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" would interleave with the notices
    hf_logging.set_verbosity_error()
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True, attn_implementation="eager")
    model.eval()

    class _Encoder(torch.nn.Module):  # keyword call: transformers' positional order changes between versions
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    # A padded dummy batch, so no "mask is all ones" shortcut is traced into the graph.
    ids = torch.tensor([[101, 7592, 2088, 2003, 102], [101, 7592, 102, 0, 0]], dtype=torch.long)
    mask = (ids != 0).long()
    axes = {name: {0: "batch", 1: "sequence"} for name in (*_INPUTS, "last_hidden_state")}
    tmp = _tmp_name(out)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Encoder(model),
                (ids, mask, torch.zeros_like(ids)),
                str(tmp),
                input_names=list(_INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _quantize(src: Path, out: Path) -> None:
    """int8 weights, per output channel; activations quantized dynamically at run time."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = _tmp_name(out)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # "consider pre-processing" advice on the root logger
    try:
        quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(tmp, out)
    finally:
        root.setLevel(level)
        tmp.unlink(missing_ok=True)


def _to_stderr(message: str) -> None:
    print(f"assistant: {message}", file=sys.stderr, flush=True)


def ensure_exported(model_dir: Path, *, quantize: bool = True, notify: Callable[[str], None] | None = _to_stderr) -> Path:
    """The ONNX file for ``model_dir`` (int8 unless ``quantize=False``), exporting it on first use.

    The export is one-time work of several seconds (torch loads): ``notify`` is told when it
    starts and ends, so a first ``assistant ingest`` or ``ask`` does not seem to hang."""
    folder = onnx_cache_dir(model_dir)
    fp32 = folder / "model.onnx"
    int8 = folder / "model.int8.onnx"
    want = int8 if quantize else fp32
    if want.is_file():
        return want
    with _locked(folder):
        if want.is_file():  # another process exported it while this one waited for the lock
            return want
        t0 = time.perf_counter()
        if notify:
            notify(f"preparing the {'int8 ' if quantize else ''}ONNX version of the embedding model "
                   f"(offline, once, about 10-30 s); cached in {folder}")
        if not fp32.is_file():
            _export(Path(model_dir), fp32)
        if quantize and not int8.is_file():
            _quantize(fp32, int8)
        (folder / "source.json").write_text(
            json.dumps({"model_dir": str(Path(model_dir).resolve()), "recipe": RECIPE}, indent=1)
        )
        if notify:
            notify(f"ONNX embedding model ready in {time.perf_counter() - t0:.0f} s")
    return want


def _tokenizer(model_dir: Path, max_length: int):
    """(texts -> (token ids per text, token type ids per text or None), pad id).

    The fast tokenizer's own file when the folder has one: loading it takes ~0.2 s, where
    transformers' ``AutoTokenizer`` imports torch first (seconds on a cold start)."""
    file = model_dir / "tokenizer.json"
    if file.is_file():
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(file))
        pad = tok.padding["pad_id"] if tok.padding else tok.token_to_id("[PAD]") or 0
        tok.no_padding()  # the file may ask for fixed-length padding (MiniLM's: 128); batches pad here
        tok.enable_truncation(max_length)

        def encode(texts: list[str]):
            enc = tok.encode_batch(texts)
            return [e.ids for e in enc], [e.type_ids for e in enc]

        return encode, pad

    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)

    def encode_hf(texts: list[str]):
        out = hf(texts, truncation=True, max_length=max_length, padding=False, return_attention_mask=False)
        return out["input_ids"], out.get("token_type_ids")

    return encode_hf, hf.pad_token_id or 0


def _pooling_config(model_dir: Path) -> tuple[str, bool]:
    """(pooling mode, normalize) from the sentence-transformers module files."""
    mode, normalize = "mean", False
    modules = model_dir / "modules.json"
    if modules.is_file():
        for m in json.loads(modules.read_text()):
            kind = m.get("type", "")
            if kind.endswith("Normalize"):
                normalize = True
            if kind.endswith("Pooling"):
                pcfg = model_dir / m.get("path", "") / "config.json"
                if pcfg.is_file():
                    c = json.loads(pcfg.read_text())
                    for key, name in (
                        ("pooling_mode_cls_token", "cls"),
                        ("pooling_mode_max_tokens", "max"),
                        ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"),
                        ("pooling_mode_mean_tokens", "mean"),
                    ):
                        if c.get(key):
                            mode = name
    return mode, normalize


class OnnxSentenceEncoder:
    """Sentence embeddings from an int8 ONNX export of a local sentence-transformers model."""

    def __init__(
        self, model_dir: Path, max_seq_length: int = 256, *, threads: int = 0, quantize: bool = True,
        notify: Callable[[str], None] | None = _to_stderr,
    ):
        self.model_dir = Path(model_dir)
        cfg = json.loads((self.model_dir / "config.json").read_text())
        self._dim = int(cfg.get("hidden_size") or cfg.get("d_model"))
        limit = int(cfg.get("max_position_embeddings") or max_seq_length)
        self.max_seq_length = min(int(max_seq_length), limit)
        self._tokenize, self._pad_id = _tokenizer(self.model_dir, self.max_seq_length)
        self.pooling, self._normalize_always = _pooling_config(self.model_dir)
        self.onnx_path = ensure_exported(self.model_dir, quantize=quantize, notify=notify)

        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads if threads and threads > 0 else physical_cores()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self.threads = opts.intra_op_num_threads
        self.session = ort.InferenceSession(str(self.onnx_path), opts, providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self.session.get_inputs()]

    def get_sentence_embedding_dimension(self) -> int:
        return self._dim

    get_embedding_dimension = get_sentence_embedding_dimension  # the sentence-transformers >= 6 name

    def encode(
        self,
        sentences: str | Sequence[str],
        batch_size: int = 32,
        normalize_embeddings: bool = False,
        convert_to_numpy: bool = True,
        show_progress_bar: bool | None = None,
        **_ignored,
    ) -> np.ndarray:
        """(n, dim) float32 embeddings, in input order (a 1-D vector for one string)."""
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        if texts:
            ids_list, types_list = self._tokenize(texts)
            lengths = np.fromiter((len(x) for x in ids_list), dtype=np.int64, count=len(ids_list))
            order = np.argsort(-lengths, kind="stable")  # longest first, like sentence-transformers
            pad = self._pad_id
            for start in range(0, len(texts), max(1, int(batch_size))):
                idx = order[start : start + batch_size]
                width = int(lengths[idx].max())
                ids = np.full((len(idx), width), pad, dtype=np.int64)
                mask = np.zeros((len(idx), width), dtype=np.int64)
                types = np.zeros((len(idx), width), dtype=np.int64)
                for row, k in enumerate(idx):
                    n = lengths[k]
                    ids[row, :n] = ids_list[k]
                    mask[row, :n] = 1
                    if types_list is not None:
                        types[row, :n] = types_list[k]
                feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
                hidden = self.session.run(None, {k: feed[k] for k in self._inputs})[0]
                out[idx] = self._pool(hidden, mask)
        if normalize_embeddings or self._normalize_always:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = out / np.maximum(norms, 1e-12)
        return out[0] if single else out

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        m = mask[..., None].astype(np.float32)
        if self.pooling == "cls":
            return hidden[:, 0]
        if self.pooling == "max":
            return np.where(m > 0, hidden, -1e9).max(axis=1)
        summed = (hidden * m).sum(axis=1)
        counts = np.maximum(m.sum(axis=1), 1e-9)
        if self.pooling == "mean_sqrt_len":
            return summed / np.sqrt(counts)
        return summed / counts

    def __repr__(self) -> str:
        return f"OnnxSentenceEncoder({self.onnx_path}, max_seq_length={self.max_seq_length}, threads={self.threads})"

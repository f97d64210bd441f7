"""A private, fully offline document assistant.

The public API is imported lazily so that ``import assistant`` stays cheap and
never imports Textual, torch or Chroma until they are needed.
"""

from __future__ import annotations

import os

# Nothing downloads at run time: every model is loaded from a local path.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # onnxruntime would queue usage events otherwise

__all__ = [
    "Library",
    "LibraryError",
    "LibraryStatus",
    "Config",
    "ConfigError",
    "load_config",
    "Answer",
    "Document",
    "GenerationRequest",
    "Hit",
    "ModelInfo",
    "ReaderError",
    "Section",
    "Source",
    "Retrieval",
    "Reranker",
    "StageContext",
]

_LAZY = {
    "Library": "library",
    "LibraryError": "library",
    "LibraryStatus": "library",
    "Config": "config",
    "ConfigError": "config",
    "load_config": "config",
    "Answer": "types",
    "Document": "types",
    "GenerationRequest": "types",
    "Hit": "types",
    "ModelInfo": "types",
    "ReaderError": "types",
    "Section": "types",
    "Source": "types",
    "Retrieval": "types",
    "Reranker": "types",
    "StageContext": "types",
}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'assistant' has no attribute {name!r}")

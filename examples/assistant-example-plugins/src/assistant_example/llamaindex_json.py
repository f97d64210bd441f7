"""llama-index's ``JSONReader`` as a reader plugin, through ``assistant.llamaindex_glue``.

The whole plugin is the factory below: its keyword parameters are the plugin's
settings (``[plugins.li_json]``), checked against their annotations by the core.
It claims ``.geojson`` and ``.jsonld``, which no built-in reader handles (a
third-party reader claiming ``.json`` would take it over from the built-in one).
llama-index is imported on the first file read, not when the plugin is loaded.
"""

from __future__ import annotations

from assistant.llamaindex_glue import LlamaIndexReader

__all__ = ["LlamaIndexJsonReader"]


def LlamaIndexJsonReader(*, levels_back: int = 0, collapse_length: int | None = None) -> LlamaIndexReader:
    """``levels_back = 0``: each leaf becomes one line "key key ... value" (llama-index's meaning)."""
    return LlamaIndexReader(
        "llama_index.core.readers.json:JSONReader",
        (".geojson", ".jsonld"),
        file_type="json",
        levels_back=levels_back,
        collapse_length=collapse_length,
    )

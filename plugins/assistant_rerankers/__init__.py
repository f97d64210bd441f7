"""Built-in retrieval stages, plugins of the ``assistant.rerankers`` group (registered in pyproject.toml).

Each is a factory whose keyword parameters are its ``[plugins.NAME]`` settings, and
whose object has ``rerank(query, hits, context) -> hits`` (``assistant.types.Reranker``):

- ``neighbours`` (neighbours.py): a hit that starts or ends mid-section gets the
  neighbouring chunks of its section joined to it, within a token budget.
- ``diversify`` (diversify.py): near-duplicate passages collapse to one, "also in" the others.
- ``cross_encoder`` (cross_encoder.py): a sentence-transformers CrossEncoder from a local folder.
- ``llamacpp_rerank`` (llamacpp_rerank.py): a GGUF reranker through llama.cpp's rank pooling.

Importing this package imports nothing heavy; the models load on the first query.
"""

"""``cross_encoder``: a sentence-transformers ``CrossEncoder`` from a local folder reorders the best hits.

``[plugins.cross_encoder] model = "~/models/ms-marco-MiniLM-L-6-v2"`` names a folder
holding a saved CrossEncoder (``CrossEncoder.save_pretrained``: config.json, the
weights, the tokenizer). Nothing is downloaded: the folder must exist, and it is
loaded with ``local_files_only``. The first ``candidates`` hits are scored in
batches of ``batch_size`` (query, passage) pairs and put first, best first, scored
with the model's raw output; the hits past ``candidates`` follow in their order.
The model loads on the first query, not when the plugin is listed.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

from assistant.types import Hit, StageContext


class CrossEncoderReranker:
    def __init__(self, *, model: str = "", candidates: int = 30, batch_size: int = 16, max_length: int = 512):
        if not model:
            raise ValueError("plugins.cross_encoder.model: set it to a local CrossEncoder folder (nothing is downloaded)")
        folder = Path(model).expanduser()
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"plugins.cross_encoder.model: {folder} is not a saved CrossEncoder folder (no config.json)")
        if candidates < 1 or batch_size < 1 or max_length < 8:
            raise ValueError("plugins.cross_encoder: candidates and batch_size must be 1 or more, max_length 8 or more")
        self.folder = folder
        self.candidates = candidates
        self.batch_size = batch_size
        self.max_length = max_length
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                from sentence_transformers import CrossEncoder

                self._model = CrossEncoder(str(self.folder), device="cpu", local_files_only=True, max_length=self.max_length)
            return self._model

    def scores(self, query: str, texts: list[str]) -> list[float]:
        if not texts:
            return []
        out = self.model.predict([(query, t) for t in texts], batch_size=self.batch_size, show_progress_bar=False)
        return [float(s) for s in (out.reshape(len(texts), -1)[:, 0] if out.ndim > 1 else out)]

    def rerank(self, query: str, hits: list[Hit], context: StageContext) -> list[Hit]:
        head, tail = hits[: self.candidates], hits[self.candidates :]
        scored = [dataclasses.replace(h, score=s) for h, s in zip(head, self.scores(query, [h.text for h in head]))]
        return sorted(scored, key=lambda h: -h.score) + tail

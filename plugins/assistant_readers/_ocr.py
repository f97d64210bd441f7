"""Offline OCR with rapidocr-onnxruntime, shared by the image and PDF readers.

The wheel ships its ONNX models (PP-OCRv4 detection and recognition), so
nothing is downloaded. ``ocr_lines`` runs the pipeline stage by stage (detect,
then classify, then recognise line by line) so that the time limit is checked
between stages and a page that runs over is reported, not waited for.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from assistant.types import ReaderError, report_progress

__all__ = ["ocr_lines", "ocr_page", "checked_seconds", "OCR_SECONDS_PER_PAGE"]

OCR_SECONDS_PER_PAGE = 60.0  # [ingest] ocr_seconds_per_page: an A4 page at 150 dpi takes a few seconds on 2 cores
_BATCH = 12  # text boxes classified (turned upright) in one call

_engine: Any = None
_lock = threading.Lock()  # one page at a time: the sessions use every core already


def checked_seconds(value: float) -> float:
    """``ocr_seconds_per_page`` as a reader setting: ValueError naming the key unless > 0."""
    if not value > 0:
        raise ValueError(f"ocr_seconds_per_page: must be > 0, got {value!r}")
    return float(value)


def _get_engine():
    global _engine
    if _engine is None:
        from rapidocr_onnxruntime import RapidOCR

        _engine = RapidOCR()
    return _engine


def _lines(boxes, texts: list[str]) -> list[str]:
    """Boxes (4 corner points, sorted top to bottom) -> lines of text, left to right within a line."""
    rows: list[tuple[float, float, list[tuple[float, str]]]] = []  # (centre y, height, [(x, text)])
    for box, text in zip(boxes, texts):
        if not text.strip():
            continue
        ys = [p[1] for p in box]
        top, bottom, left = min(ys), max(ys), min(p[0] for p in box)
        centre, height = (top + bottom) / 2, bottom - top
        if rows and abs(centre - rows[-1][0]) < 0.5 * max(height, rows[-1][1]):
            rows[-1][2].append((left, text))
        else:
            rows.append((centre, height, [(left, text)]))
    return [" ".join(t.strip() for _, t in sorted(words)) for _, _, words in rows]


def ocr_lines(image, *, seconds: float = OCR_SECONDS_PER_PAGE, where: str = "page 1") -> list[str]:
    """The text lines of a PIL image in reading order; ReaderError past ``seconds``, naming ``where``."""
    import numpy as np

    deadline = time.monotonic() + seconds

    def check() -> None:
        if time.monotonic() > deadline:
            raise ReaderError(f"OCR of {where} took longer than {seconds:g} s (ingest.ocr_seconds_per_page)")

    bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
    with _lock:
        engine = _get_engine()
        check()  # the wait for the lock counts
        img, _, _ = engine.preprocess(bgr)
        img, _ = engine.maybe_add_letterbox(img, {})
        boxes, _ = engine.auto_text_det(img)
        check()
        if boxes is None:
            return []
        crops = engine.get_crop_img_list(img, boxes)
        recognised: list[tuple[str, float]] = []
        for i in range(0, len(crops), _BATCH):
            part, _, _ = engine.text_cls(crops[i : i + _BATCH])
            for crop in part:  # one at a time: in a batch, short lines are padded to the longest and lose spaces
                found, _ = engine.text_rec([crop])
                recognised.extend(found)
                check()
    texts = [text if score >= engine.text_score else "" for text, score in recognised]
    return _lines(boxes, texts)


def ocr_page(image, number: int, total: int, *, seconds: float, where: str) -> list[str]:
    """``ocr_lines`` for page ``number`` of ``total``, announced to the ingest ("OCR page 3/12")."""
    report_progress(f"OCR page {number}/{total}")
    return ocr_lines(image, seconds=seconds, where=where)

"""The office readers and OCR against the bare libraries, in one run.

    .venv/bin/python bench/readers.py [--files 200] [--rounds 3] [--ocr-pages 3] [--ingest] [--keep DIR]
    .venv/bin/python bench/readers.py --files 0 --ocr-pages 3     # OCR only

1. Spreadsheets and decks: ``--files`` generated files, half .xlsx (openpyxl:
   3 sheets x 60 rows x 6 columns) and half .pptx (python-pptx: 10 slides with
   a title, 4 bullet lines, a 5x3 table and speaker notes). Each round reads all
   of them with the assistant's readers, and with the reader libraries alone
   (openpyxl read-only ``iter_rows(values_only=True)`` turning each value into
   text; python-pptx walking every shape's text frame, table cells and notes),
   in reverse order every other round; the best round of each counts. The
   ratio is library time / reader time (1.0 = the readers cost nothing more),
   in CPU time of this process (robust when other jobs share the 2 cores) and
   in wall time.
2. ``--ingest``: the same folder through ``Library.ingest`` with the real
   embedded model into a fresh data folder (files/s, chunks/s; the embedding is
   most of it), beside the readers' files/s.
3. OCR: ``--ocr-pages`` A4 pages at 150 dpi (1240x1754) of rendered text, 40
   lines each, through the image reader's ``ocr_lines`` and through a bare
   ``RapidOCR()(image)`` call, interleaved; seconds per page (best and median)
   and the share of words read right.

The load average is printed at the start and the end: on 2 shared cores other
jobs show up in it.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

WORDS = (
    "garden robot battery charge blade motor sensor rain slope meter firmware update schedule station boundary "
    "wire signal error restart warranty month price euro spare part stock order dealer town service lawn"
).split()


def _phrase(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(lo, hi)))


def make_files(root: Path, n: int, seed: int = 3) -> list[Path]:
    import openpyxl
    from pptx import Presentation
    from pptx.util import Inches

    rng = random.Random(seed)
    paths = []
    for i in range(n):
        if i % 2 == 0:
            wb = openpyxl.Workbook()
            wb.remove(wb.active)
            for s in range(3):
                ws = wb.create_sheet(f"Sheet {s + 1}")
                ws.append(["Item", "Town", "Price", "Stock", "Note", "Date"])
                for r in range(60):
                    ws.append([f"LR-{rng.randrange(10**5)}", rng.choice(WORDS).title(), round(rng.uniform(5, 900), 2),
                               rng.randrange(500), _phrase(rng, 3, 9), f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"])
            path = root / f"sheet_{i:04d}.xlsx"
            wb.save(path)
        else:
            deck = Presentation()
            for s in range(10):
                slide = deck.slides.add_slide(deck.slide_layouts[1])
                slide.shapes.title.text = _phrase(rng, 2, 5).title()
                frame = slide.placeholders[1].text_frame
                frame.text = _phrase(rng, 6, 14)
                for _ in range(3):
                    frame.add_paragraph().text = _phrase(rng, 6, 14)
                table = slide.shapes.add_table(5, 3, Inches(1), Inches(4.5), Inches(8), Inches(2)).table
                for r in range(5):
                    for c in range(3):
                        table.cell(r, c).text = ("Model", "Price", "Note")[c] if r == 0 else _phrase(rng, 1, 3)
                slide.notes_slide.notes_text_frame.text = _phrase(rng, 10, 25)
            path = root / f"deck_{i:04d}.pptx"
            deck.save(str(path))
        paths.append(path)
    return paths


def bare_library(path: Path) -> int:
    """What the reader libraries alone do to get the text out: the baseline."""
    n = 0
    if path.suffix == ".xlsx":
        import openpyxl

        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        for ws in wb.worksheets:
            for row in ws.iter_rows(values_only=True):
                n += len(" ".join("" if v is None else str(v) for v in row))
        wb.close()
        return n
    from pptx import Presentation

    for slide in Presentation(str(path)).slides:
        for shape in slide.shapes:
            if shape.has_text_frame:
                n += len(shape.text_frame.text)
            if getattr(shape, "has_table", False) and shape.has_table:
                n += sum(len(c.text) for row in shape.table.rows for c in row.cells)
        if slide.has_notes_slide:
            n += len(slide.notes_slide.notes_text_frame.text)
    return n


def with_readers(path: Path, readers: dict) -> int:
    return sum(len(s.text) for s in readers[path.suffix].read(path).sections)


def best_of_rounds(paths: list[Path], rounds: int) -> dict[str, tuple[float, float]]:
    from assistant_readers.slides_reader import SlidesReader
    from assistant_readers.spreadsheet_reader import SpreadsheetReader

    readers = {".xlsx": SpreadsheetReader(), ".pptx": SlidesReader()}
    for p in paths[:2]:  # imports and first-use costs out of the timings
        bare_library(p), with_readers(p, readers)
    times: dict[str, list[tuple[float, float]]] = {"readers": [], "library": []}  # (cpu, wall)
    for r in range(rounds):
        order = ["readers", "library"] if r % 2 == 0 else ["library", "readers"]
        for what in order:
            c0, t0 = time.process_time(), time.perf_counter()
            for p in paths:
                with_readers(p, readers) if what == "readers" else bare_library(p)
            times[what].append((time.process_time() - c0, time.perf_counter() - t0))
            cpu, wall = times[what][-1]
            print(f"  round {r + 1} {what:8s} cpu {cpu:6.2f} s  wall {wall:6.2f} s", flush=True)
    return {what: (min(c for c, _ in runs), min(w for _, w in runs)) for what, runs in times.items()}


def ingest(folder: Path, data: Path) -> tuple[float, int, int]:
    os.environ["ASSISTANT_DATA_DIR"] = str(data)
    from assistant.config import Config
    from assistant.library import Library
    from assistant.testing import FakeGenerator

    lib = Library(Config(), generator=FakeGenerator())
    lib.embedder.embed(["warm up"], batch_size=1)
    t0 = time.perf_counter()
    report = lib.ingest([folder])
    return time.perf_counter() - t0, report.files_ingested, report.chunks_embedded


def a4_page(rng: random.Random):
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (1240, 1754), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=26)
    lines = [_phrase(rng, 6, 9) for _ in range(40)]
    for i, line in enumerate(lines):
        draw.text((90, 90 + i * 39), line, fill="black", font=font)
    return img, lines


def words_right(expected: list[str], got: list[str]) -> float:
    import difflib

    a, b = " ".join(expected).split(), " ".join(got).split()
    return sum(m.size for m in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks()) / len(a)


def letters_right(expected: list[str], got: list[str]) -> float:
    """The same over letters and digits, spaces left out: a lost space costs a word above, nothing here."""
    import difflib

    a, b = "".join("".join(expected).split()), "".join("".join(got).split())
    return sum(m.size for m in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks()) / len(a)


def ocr_bench(pages: int) -> None:
    import numpy as np

    from assistant_readers._ocr import _get_engine, ocr_lines

    rng = random.Random(5)
    engine = _get_engine()
    images = [a4_page(rng) for _ in range(pages)]
    engine(np.asarray(images[0][0])[:, :, ::-1])  # warm-up
    ours, bare, right, right_bare, letters, letters_bare = [], [], [], [], [], []
    for i, (img, lines) in enumerate(images):
        for what in (("ours", "bare") if i % 2 == 0 else ("bare", "ours")):
            t0 = time.perf_counter()
            if what == "ours":
                got = ocr_lines(img, seconds=600)
                ours.append(time.perf_counter() - t0)
                right.append(words_right(lines, got))
                letters.append(letters_right(lines, got))
            else:
                result, _ = engine(np.ascontiguousarray(np.asarray(img)[:, :, ::-1]))
                bare.append(time.perf_counter() - t0)
                texts = [r[1] for r in result or []]
                right_bare.append(words_right(lines, texts))
                letters_bare.append(letters_right(lines, texts))
    print(f"OCR, A4 at 150 dpi, 40 lines of text, {pages} pages (onnxruntime threads: all cores)")
    for name, secs, w, c in (("image reader (ocr_lines)", ours, right, letters), ("bare RapidOCR()(image)", bare, right_bare, letters_bare)):
        print(f"  {name:25s} best {min(secs):5.2f} s/page, median {statistics.median(secs):5.2f}; "
              f"words right {statistics.mean(w):.1%}, letters right {statistics.mean(c):.1%}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ocr-pages", type=int, default=3)
    ap.add_argument("--ingest", action="store_true", help="also ingest the folder with the real embedder")
    ap.add_argument("--keep", type=Path, help="generate into (and keep) this folder")
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    if args.files == 0:  # OCR only
        ocr_bench(args.ocr_pages)
        return 0
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-readers-"))
    folder = base / "files"
    folder.mkdir(parents=True, exist_ok=True)
    paths = sorted(folder.glob("*.xlsx")) + sorted(folder.glob("*.pptx"))
    if len(paths) != args.files:
        paths = make_files(folder, args.files)
    size = sum(p.stat().st_size for p in paths) / 1e6
    print(f"{len(paths)} files ({size:.1f} MB): {sum(p.suffix == '.xlsx' for p in paths)} .xlsx, {sum(p.suffix == '.pptx' for p in paths)} .pptx")
    best = best_of_rounds(paths, args.rounds)
    for i, clock in enumerate(("cpu", "wall")):
        ours, bare = best["readers"][i], best["library"][i]
        print(f"{clock:4s} readers {len(paths) / ours:6.1f} files/s ({ours:.2f} s), libraries alone "
              f"{len(paths) / bare:6.1f} files/s ({bare:.2f} s), ratio {bare / ours:.2f} (best of {args.rounds})")
    if args.ingest:
        seconds, files, chunks = ingest(folder, base / "data")
        print(f"ingest (real embedder): {files / seconds:6.1f} files/s, {chunks / seconds:.1f} chunks/s ({files} files, {chunks} chunks, {seconds:.1f} s)")
    if args.ocr_pages:
        ocr_bench(args.ocr_pages)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

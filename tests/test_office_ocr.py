"""Spreadsheets, slides, OpenDocument, RTF and OCR: locations, limits and progress, on real files.

The files are written here with the libraries that write those formats
(openpyxl, python-pptx, odfpy, Pillow); tests/formats.py has the shared cases.
"""

from __future__ import annotations

import json
import random
import time
import zipfile
from pathlib import Path

import pytest

import formats
from assistant.types import ReaderError
from assistant_readers.image_reader import ImageReader
from assistant_readers.pdf_reader import PdfReader
from assistant_readers.slides_reader import SlidesReader
from assistant_readers.spreadsheet_reader import SpreadsheetReader
from conftest import run_cli, unshare_works
from formats import render_text
from plugin_contracts import check_reader


def lines_of(doc) -> dict[tuple[str | None, int | None, int], str]:
    """(heading, page, line number) -> line, over every section."""
    out = {}
    for s in doc.sections:
        for k, line in enumerate(s.text.split("\n")):
            out[(s.heading, s.page, s.start_line + k)] = line
    return out


# --- spreadsheets ----------------------------------------------------------------


def test_xlsx_rows_carry_sheet_row_and_headers(tmp_path):
    path, fact, _, _ = formats.build_xlsx(tmp_path)
    doc = SpreadsheetReader().read(path)
    lines = lines_of(doc)
    assert [s.heading for s in doc.sections] == ["Prices", "Parts"]  # the hidden sheet is read too
    assert lines[("Prices", None, 3)] == 'Sheet "Prices", row 3: Model: Quibble X3 · Price: 1549.5 · SKU: QX-3'
    # "Details" is merged over B1:C1, so it names both columns
    assert lines[("Parts", None, 5)] == f'Sheet "Parts", row 5: Part: gearbox · Details: {fact} · Details: GB-17'
    assert lines[("Parts", None, 3)] == ""  # the empty row is skipped; row numbers stay real
    assert lines[("Parts", None, 4)] == 'Sheet "Parts", row 4: Part: washer · Details: nylon'  # a formula without a saved value
    assert doc.metadata == {"file_type": "xlsx", "sheets": 2}


def test_xlsx_values_not_formulas_and_long_gaps(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Totals"
    ws["A1"], ws["B1"] = "Item", "Total"
    ws["A2"], ws["B2"] = "mower", "=2*3"
    ws["A500"], ws["B500"] = "blade", 7
    path = tmp_path / "t.xlsx"
    wb.save(path)
    # a spreadsheet program saves the formula's value beside it: put one in as it would
    with zipfile.ZipFile(path) as z:
        items = {i.filename: z.read(i.filename) for i in z.infolist()}
    sheet = items["xl/worksheets/sheet1.xml"].decode()
    assert "<f>2*3</f><v></v>" in sheet or "<f>2*3</f><v />" in sheet or "<f>2*3</f>" in sheet
    items["xl/worksheets/sheet1.xml"] = sheet.replace("<f>2*3</f><v></v>", "<f>2*3</f><v>6</v>").replace(
        "<f>2*3</f><v />", "<f>2*3</f><v>6</v>"
    ).encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in items.items():
            z.writestr(name, data)
    doc = SpreadsheetReader().read(path)
    lines = lines_of(doc)
    assert lines[("Totals", None, 2)] == 'Sheet "Totals", row 2: Item: mower · Total: 6'
    assert lines[("Totals", None, 500)] == 'Sheet "Totals", row 500: Item: blade · Total: 7'
    assert [s.start_line for s in doc.sections] == [1, 500]  # a long gap starts a new section
    assert "2*3" not in "".join(s.text for s in doc.sections)


def test_a_title_row_above_the_headers_is_not_the_header(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Dealers"
    ws["A1"] = "Dealer network 2024"
    ws.merge_cells("A1:C1")  # a title over the table's width
    ws.append([])
    ws.append(["Town", "Dealer", "Phone"])
    ws.append(["Hollinsby", "Greenfold", "5310"])
    path = tmp_path / "dealers.xlsx"
    wb.save(path)
    lines = lines_of(SpreadsheetReader().read(path))
    assert lines[("Dealers", None, 1)] == 'Sheet "Dealers", row 1: Dealer network 2024'
    assert lines[("Dealers", None, 3)] == 'Sheet "Dealers", row 3 (headers): Town · Dealer · Phone'
    assert lines[("Dealers", None, 4)] == 'Sheet "Dealers", row 4: Town: Hollinsby · Dealer: Greenfold · Phone: 5310'


def test_ods_repeated_rows_and_spanned_header(tmp_path):
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import CoveredTableCell, Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    table = Table(name="Stock")
    header = TableRow()
    for text, span in (("Tool", 1), ("Count", 2)):
        cell = TableCell(numbercolumnsspanned=span) if span > 1 else TableCell()
        cell.addElement(P(text=text))
        header.addElement(cell)
    header.addElement(CoveredTableCell())
    table.addElement(header)
    row = TableRow(numberrowsrepeated=2)
    for text in ("rake", "4", "6"):
        cell = TableCell()
        cell.addElement(P(text=text))
        row.addElement(cell)
    table.addElement(row)
    table.addElement(TableRow(numberrowsrepeated=1048000))  # the usual empty tail of a sheet
    doc.spreadsheet.addElement(table)
    path = tmp_path / "stock.ods"
    doc.save(str(path))
    started = time.perf_counter()
    lines = lines_of(SpreadsheetReader().read(path))
    assert time.perf_counter() - started < 5
    assert lines[("Stock", None, 3)] == 'Sheet "Stock", row 3: Tool: rake · Count: 4 · Count: 6'
    assert max(n for _, _, n in lines) == 3


# --- slides ----------------------------------------------------------------------


def test_pptx_slides_are_pages_with_tables_and_notes(tmp_path):
    path, fact, _, _ = formats.build_pptx(tmp_path)
    doc = SlidesReader().read(path)
    assert [(s.page, s.heading) for s in doc.sections] == [(1, "Welcome"), (2, "Rollout plan"), (3, "Prices")]
    assert doc.sections[1].text == f"Rollout plan\n{fact}\nNotes: Mention the harbour masters."
    assert doc.sections[2].text.split("\n")[1:] == [
        "Table, row 1 (headers): Model · Price",
        "Table, row 2: Model: K3 · Price: 899",
        "Table, row 3: Model: K3 Pro · Price: 1149",
        "Notes: Prices are net.",
    ]
    assert "Notes" not in "".join(s.text for s in SlidesReader(notes=False).read(path).sections)


def test_odp_slides(tmp_path):
    path, fact, _, _ = formats.build_odp(tmp_path)
    doc = SlidesReader().read(path)
    assert [(s.page, s.heading) for s in doc.sections] == [(1, "Ferries"), (2, "Capacity")]
    assert doc.sections[1].text == f"Capacity\n{fact}\nNotes: Speak slowly."


# --- limits: zip bombs, encrypted and corrupt files ---------------------------------


def _zip_bomb(path: Path, members: dict[str, int]) -> Path:
    """A ZIP whose entries are ``size`` bytes of zeros each (a few KB compressed)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        for name, size in members.items():
            with z.open(name, "w", force_zip64=True) as f:
                block = b"\0" * (1 << 20)
                for _ in range(size >> 20):
                    f.write(block)
    return path


@pytest.mark.parametrize("suffix", [".xlsx", ".ods", ".pptx", ".odp", ".odt"])
def test_zip_bomb_is_refused_before_parsing(tmp_path, suffix):
    path = _zip_bomb(tmp_path / f"bomb{suffix}", {"content.xml": 600 << 20})
    assert path.stat().st_size < 2_000_000
    from assistant_readers import reader_for_suffix

    started = time.perf_counter()
    with pytest.raises(ReaderError, match=r"refused .*: .*zip bomb"):
        reader_for_suffix(suffix).read(path)
    assert time.perf_counter() - started < 1.0


def test_zip_with_too_many_entries_or_a_huge_ratio(tmp_path):
    many = tmp_path / "many.xlsx"
    with zipfile.ZipFile(many, "w") as z:
        for i in range(10_001):
            z.writestr(f"x/{i}", b"")
    with pytest.raises(ReaderError, match=r"10001 entries"):
        SpreadsheetReader().read(many)
    ratio = _zip_bomb(tmp_path / "ratio.pptx", {"ppt/slides/slide1.xml": 50 << 20})  # under the total, over the ratio
    with pytest.raises(ReaderError, match=r"expands \d+x"):
        SlidesReader().read(ratio)
    with pytest.raises(ReaderError, match=r"uncompressed \(limit 10 MB\)"):
        SlidesReader(max_unzipped_mb=10).read(ratio)


def test_zip_bomb_is_reported_by_the_ingest(fake_library, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    _zip_bomb(folder / "bomb.xlsx", {"xl/worksheets/sheet1.xml": 600 << 20})
    formats.build_xlsx(folder)
    report = fake_library().ingest([folder])
    assert report.files_ingested == 1
    [failed] = report.files_failed
    assert failed["path"].endswith("bomb.xlsx") and "zip bomb" in failed["reason"]


def test_max_file_mb_applies_to_the_new_formats(fake_library, write_config, tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    for build in (formats.build_xlsx, formats.build_pptx, formats.build_png, formats.build_odt):
        build(folder)
    write_config("[ingest]\nmax_file_mb = 0.001\n")  # 1 kB: every one of them is larger
    report = fake_library().ingest([folder])
    assert report.files_ingested == 0 and len(report.files_skipped) == 4
    assert all("larger than ingest.max_file_mb" in f["reason"] for f in report.files_skipped)


def test_encrypted_and_corrupt_office_files(tmp_path):
    ole = tmp_path / "secret.xlsx"  # what Excel writes for a password-protected workbook: an OLE container
    ole.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4000))
    with pytest.raises(ReaderError, match="encrypted"):
        SpreadsheetReader().read(ole)
    path, *_ = formats.build_pptx(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReaderError, match="not a valid PPTX"):
        SlidesReader().read(path)
    fake = tmp_path / "fake.ods"
    with zipfile.ZipFile(fake, "w") as z:
        z.writestr("content.xml", "<not-odf")
    with pytest.raises(ReaderError, match="not a valid ODS"):
        SpreadsheetReader().read(fake)
    png, *_ = formats.build_png(tmp_path)
    png.write_bytes(png.read_bytes()[:200])  # cut short
    with pytest.raises(ReaderError, match="not a valid image"):
        ImageReader().read(png)


@pytest.mark.parametrize(
    "suffix,builder",
    [(".xlsx", formats.build_xlsx), (".ods", formats.build_ods), (".pptx", formats.build_pptx), (".odp", formats.build_odp),
     (".odt", formats.build_odt), (".rtf", formats.build_rtf), (".png", formats.build_png)],
)  # fmt: skip
def test_contract_suite_for_each_new_reader(tmp_path, suffix, builder):
    from assistant_readers import reader_for_suffix

    assert suffix in check_reader(reader_for_suffix(suffix), tmp_path, samples={suffix: builder})


# --- OCR -------------------------------------------------------------------------


SENTENCE = "Residents of Vellmark may borrow the orange ladder from the library every Tuesday afternoon."
HALVES = [" ".join(SENTENCE.split()[:7]), " ".join(SENTENCE.split()[7:])]  # split between words


def word_accuracy(expected: str, got: str) -> float:
    """Share of the expected words found, in order, in the OCR text (punctuation ignored)."""
    import difflib

    def words(s):
        return ["".join(ch for ch in w if ch.isalnum()).lower() for w in s.split()]

    a, b = words(expected), words(got)
    matched = sum(block.size for block in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks())
    return matched / len(a)


def test_ocr_reads_a_rendered_sentence(tmp_path):
    assert len(SENTENCE.split()) >= 8
    path = tmp_path / "sentence.png"
    render_text(["Library notice", *HALVES]).save(path)
    doc = ImageReader().read(path)
    text = " ".join(s.text.replace("\n", " ") for s in doc.sections)
    assert word_accuracy(SENTENCE, text) >= 0.9, text
    assert word_accuracy(SENTENCE, "Residents of something else entirely") < 0.5  # the measure can fail


def test_ocr_of_a_tilted_jpeg_photo(tmp_path):
    img = render_text(HALVES, size=(1400, 400)).rotate(1.5, expand=True, fillcolor="white")
    path = tmp_path / "photo.jpg"
    img.save(path, quality=75)
    doc = ImageReader().read(path)
    assert doc.sections and doc.sections[0].page is None
    # tilted and JPEG-compressed: a narrow space is the first thing PP-OCR loses ("mayborrow"), letters survive
    text = " ".join(s.text.replace("\n", " ") for s in doc.sections)
    assert word_accuracy(SENTENCE, text) >= 0.8, text
    assert "".join(SENTENCE.split()) == "".join(text.split()), text


def test_scanned_pdf_page_modes(tmp_path):
    path, fact, page, line = formats.build_scanned_pdf(tmp_path)
    auto = PdfReader().read(path)
    assert auto.metadata["ocr_pages"] == 1 and [s.page for s in auto.sections] == [1]
    assert auto.sections[0].text.split("\n")[line - 1] == fact
    assert PdfReader(ocr="never").read(path).sections == []
    text_pdf, text_fact, _, _ = formats.build_pdf(tmp_path)
    assert "ocr_pages" not in PdfReader().read(text_pdf).metadata  # a text layer: no OCR
    always = PdfReader(ocr="always").read(text_pdf)
    assert always.metadata["ocr_pages"] == 2 and text_fact in always.sections[1].text
    with pytest.raises(ValueError, match="plugins.pdf.ocr"):
        PdfReader(ocr="sometimes")


def test_ocr_time_limit_names_the_page(tmp_path):
    path, *_ = formats.build_tiff(tmp_path)
    with pytest.raises(ReaderError, match=r"OCR of page 1 took longer than 1e-06 s \(ingest.ocr_seconds_per_page\)"):
        ImageReader(ocr_seconds_per_page=1e-6).read(path)
    scan, *_ = formats.build_scanned_pdf(tmp_path)
    with pytest.raises(ReaderError, match=r"OCR of page 1 took longer"):
        PdfReader(ocr_seconds_per_page=1e-6).read(scan)


def test_ingest_limit_and_progress_reach_the_ocr(fake_library, write_config, tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    formats.build_scanned_pdf(folder)
    formats.build_tiff(folder)
    events = []
    report = fake_library().ingest([folder], on_event=events.append)
    assert report.files_failed == [] and report.files_ingested == 2
    notes = [e.note for e in events if e.kind == "reading"]
    assert notes == ["OCR page 1/1 of scan.pdf", "OCR page 1/2 of scan.tiff", "OCR page 2/2 of scan.tiff"]
    # [ingest] ocr_seconds_per_page is offered to the readers
    write_config("[ingest]\nocr_seconds_per_page = 0.000001\n")
    (folder / "scan.pdf").unlink()
    formats.build_scanned_pdf(folder / "..")  # a new file elsewhere, then moved in: content changed
    (folder / ".." / "scan.pdf").rename(folder / "again.pdf")
    report = fake_library().ingest([folder])
    assert [f["reason"] for f in report.files_failed] == ["OCR of page 1 took longer than 1e-06 s (ingest.ocr_seconds_per_page)"]


def test_a_cancel_during_ocr_stops_the_ingest(fake_library, tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    formats.build_tiff(folder)

    class Stop(Exception):
        pass

    def on_event(ev):
        if ev.kind == "reading":
            raise Stop()

    lib = fake_library()
    with pytest.raises(Stop):
        lib.ingest([folder], on_event=on_event)
    assert lib.store.file_rows() == []  # not recorded as a failed file


@pytest.mark.integration
@pytest.mark.skipif(not unshare_works(), reason="`unshare -n` is not permitted here (needs root or user namespaces)")
def test_ocr_ingest_and_search_with_the_network_switched_off(tmp_path):
    """The OCR models come from the installed wheel: ingest and search work in a namespace with no network."""
    folder = tmp_path / "scans"
    folder.mkdir()
    _, png_fact, _, png_line = formats.build_png(folder)
    _, pdf_fact, _, _ = formats.build_scanned_pdf(folder)
    offline = ["unshare", "-n"]
    r = run_cli("ingest", "--json", str(folder), prefix=offline)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["files_failed"] == []
    for fact, name, page in ((png_fact, "notice.png", None), (pdf_fact, "scan.pdf", 1)):
        r = run_cli("search", "--json", "--top-k", "1", fact, prefix=offline)
        assert r.returncode == 0, r.stderr
        [hit] = json.loads(r.stdout)
        assert hit["path"].endswith(name) and fact in hit["text"] and hit["page"] == page


# --- retrieval and listing ----------------------------------------------------------


@pytest.mark.integration
def test_a_question_about_one_row_retrieves_that_row(tmp_path):
    import openpyxl

    from assistant.config import load_config
    from assistant.library import Library
    from assistant.testing import FakeGenerator

    rng = random.Random(7)
    folder = tmp_path / "sheets"
    folder.mkdir()
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Dealers"
    ws.append(["Town", "Dealer", "Phone", "Opening days"])
    towns = ["Ashcombe", "Brimley", "Corrow", "Dunmere", "Eskdale", "Fallow", "Grisby", "Hollin", "Ivybridge", "Jarrow"]
    for i, town in enumerate(towns * 6):
        ws.append([f"{town} {i}", f"Dealer {rng.randrange(1000)}", f"0{rng.randrange(10**9):09d}", "Mon-Fri"])
    ws.append(["Quarrington", "Thistle Garden Machines", "0400 123 999", "Saturdays only"])
    target_row = ws.max_row
    wb.save(folder / "dealers.xlsx")
    lib = Library(load_config(), generator=FakeGenerator())
    lib.ingest([folder])
    hits = lib.search("Which dealer in Quarrington sells garden machines, and when is it open?", top_k=3)
    assert hits and f'Sheet "Dealers", row {target_row}: Town: Quarrington' in hits[0].text
    line = hits[0].start_line + hits[0].text.split("\n").index(
        next(ln for ln in hits[0].text.split("\n") if ln.startswith(f'Sheet "Dealers", row {target_row}:'))
    )
    assert line == target_row


def test_assistant_plugins_lists_the_new_suffixes():
    r = run_cli("plugins", "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout) if row["group"] == "assistant.readers"}
    assert rows["spreadsheet"]["suffixes"] == [".xlsx", ".xlsm", ".ods"]
    assert rows["slides"]["suffixes"] == [".pptx", ".odp"]
    assert rows["odt"]["suffixes"] == [".odt"] and rows["rtf"]["suffixes"] == [".rtf"]
    assert rows["image"]["suffixes"] == [".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"]
    assert all(rows[n]["status"] == "ok" for n in ("spreadsheet", "slides", "odt", "rtf", "image"))

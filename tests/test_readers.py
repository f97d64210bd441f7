"""The built-in readers, called directly on real files built by tests/formats.py."""

from __future__ import annotations

import inspect
import os
import random
from pathlib import Path

import pytest

import formats  # noqa: F401  (puts the project root and plugins/ on sys.path)
from assistant.types import Document, Reader, ReaderError
from assistant_readers import BUILTIN, reader_for_suffix
from assistant_readers.code_reader import CodeReader
from assistant_readers.csv_reader import CsvReader
from assistant_readers.docx_reader import DocxReader
from assistant_readers.email_reader import EmailReader
from assistant_readers.epub_reader import EpubReader
from assistant_readers.html_reader import HtmlReader
from assistant_readers.json_reader import JsonReader
from assistant_readers.markdown_reader import MarkdownReader
from assistant_readers.notebook_reader import NotebookReader
from assistant_readers.pdf_reader import PdfReader
from assistant_readers.rst_reader import RstReader
from assistant_readers.text_reader import TextReader
from assistant_readers.image_reader import ImageReader
from assistant_readers.odt_reader import OdtReader
from assistant_readers.rtf_reader import RtfReader
from assistant_readers.slides_reader import SlidesReader
from assistant_readers.spreadsheet_reader import SpreadsheetReader
from formats import EXTRA_CASES, FORMAT_CASES

READERS = [
    TextReader, MarkdownReader, RstReader, HtmlReader, PdfReader, DocxReader,
    EpubReader, EmailReader, CsvReader, JsonReader, NotebookReader, CodeReader,
    SpreadsheetReader, SlidesReader, OdtReader, RtfReader, ImageReader,
]  # fmt: skip
BY_SUFFIX = {s: cls() for cls in READERS for s in cls.suffixes}


def read(path: Path) -> Document:
    return BY_SUFFIX[path.suffix.lower()].read(path)


def locate(doc: Document, fact: str) -> list[tuple[int | None, int, str | None]]:
    """(page, line, heading) of every occurrence of ``fact``."""
    out = []
    for s in doc.sections:
        start = 0
        while (i := s.text.find(fact, start)) >= 0:
            out.append((s.page, s.start_line + s.text[:i].count("\n"), s.heading))
            start = i + 1
    return out


@pytest.mark.parametrize("suffix,builder", FORMAT_CASES + EXTRA_CASES, ids=lambda v: getattr(v, "__name__", v))
def test_fact_is_found_at_its_page_and_line(tmp_path, suffix, builder):
    path, fact, page, line = builder(tmp_path)
    assert path.suffix == suffix and path.is_file()
    doc = read(path)
    assert isinstance(doc, Document)
    assert doc.metadata.get("file_type")
    found = locate(doc, fact)
    assert [(p, n) for p, n, _ in found] == [(page, line)], found
    for s in doc.sections:
        assert s.text.strip() and s.start_line >= 1


def test_every_family_has_a_case_and_registry_entries_resolve():
    assert {BY_SUFFIX[s].__class__ for s, _ in FORMAT_CASES} == set(READERS)
    assert len(BUILTIN) == 17
    for cls in READERS:
        assert isinstance(cls(), Reader)
        assert all(s == s.lower() and s.startswith(".") for s in cls.suffixes)
        params = list(inspect.signature(cls).parameters.values())
        assert all(p.kind is p.KEYWORD_ONLY and p.default is not p.empty for p in params), cls
    for suffix, reader in BY_SUFFIX.items():
        assert type(reader_for_suffix(suffix)) is type(reader)
    assert reader_for_suffix(".exe") is None


def headings(doc: Document) -> list[str | None]:
    return [s.heading for s in doc.sections]


def test_structure_titles_and_headings(tmp_path):
    by_suffix = {s: b(tmp_path) for s, b in FORMAT_CASES}
    md = read(by_suffix[".md"][0])
    assert md.title == "Frobnicator Manual"
    assert headings(md) == [
        "Frobnicator Manual",
        "Frobnicator Manual > Install",
        "Frobnicator Manual > Install > Linux",
        "Frobnicator Manual > Usage",
    ]
    assert [s.start_line for s in md.sections] == [1, 5, 9, 18]
    rst = read(by_suffix[".rst"][0])
    assert rst.title == "Snorkel Guide" and headings(rst)[-1] == "Snorkel Guide > Care"
    html = read(by_suffix[".html"][0])
    text = "\n".join(s.text for s in html.sections)
    assert html.title == "Cartography of Vexmoor" and "script text" not in text and "color" not in text
    assert "comment" not in text
    pdf = read(by_suffix[".pdf"][0])
    assert [s.page for s in pdf.sections] == [1, 2] and pdf.metadata["pages"] == 2
    docx = read(by_suffix[".docx"][0])
    assert docx.title == "Spindlewort Handbook"
    assert "Part: Gasket · Count: 3" in docx.sections[1].text  # a table row carries its header names
    epub = read(by_suffix[".epub"][0])
    assert epub.title == "Lanterns of Eskerholm" and headings(epub) == ["Arrival", "The Lanterns"]
    eml = read(by_suffix[".eml"][0])
    assert eml.title == "Trebbleflax logistics"
    assert headings(eml) == ["Trebbleflax logistics", "attachment: shipping.txt"]
    assert eml.sections[0].text.startswith("Subject: Trebbleflax logistics\nFrom: Ada <ada@example.org>\nDate: ")
    mbox = read(by_suffix[".mbox"][0])
    assert headings(mbox) == ["Lunch plans", "Warehouse count"]
    assert "\nFrom now on we count weekly." in mbox.sections[1].text  # mbox ">From " quoting undone
    csv_doc = read(by_suffix[".csv"][0])
    assert "site: Cedar · region: east · note: The snarfle" in csv_doc.sections[0].text
    nb = read(by_suffix[".ipynb"][0])
    assert nb.title == "Analysis of Pondwick"
    assert headings(nb) == ["cell 1 (markdown)", "cell 2 (code)", "cell 3 (markdown)"]
    assert "output-text-not-indexed" not in "".join(s.text for s in nb.sections)
    code = read(by_suffix[".py"][0])
    assert code.metadata == {"file_type": "code", "language": "python"} and headings(code) == ["cache.py"]


def test_csv_sections_group_rows_on_their_file_lines(tmp_path):
    path = tmp_path / "many.csv"
    path.write_text("n;square\n" + "".join(f"{i};{i * i}\n" for i in range(1, 46)), encoding="utf-8")
    doc = CsvReader(rows_per_section=20).read(path)
    assert [s.start_line for s in doc.sections] == [2, 22, 42]
    assert doc.sections[1].text.split("\n")[0] == "n: 21 · square: 441"  # ';' was sniffed
    assert CsvReader(max_rows=5).read(path).metadata["truncated_at_rows"] == 5


def test_eml_with_html_body_and_csv_attachment(tmp_path):
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["Subject"] = "Quarterly grommets"
    msg.set_content("<html><body><p>Hello <b>there</b></p><script>x()</script><p>Bye</p></body></html>", subtype="html")
    msg.add_attachment(b"item,qty\ngrommet,7\nwidget,9\n", maintype="text", subtype="csv", filename="stock.csv")
    path = tmp_path / "q.eml"
    path.write_bytes(bytes(msg))
    doc = read(path)
    assert doc.sections[0].text == "Subject: Quarterly grommets\n\nHello there\nBye"
    assert doc.sections[1].heading == "attachment: stock.csv"
    assert locate(doc, "item: widget · qty: 9") == [(None, 3, "attachment: stock.csv")]


# --- bad input -----------------------------------------------------------------


def test_corrupt_pdf(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(random.Random(1).randbytes(4096))
    with pytest.raises(ReaderError, match="not a valid PDF"):
        PdfReader().read(path)


def test_truncated_pdf(tmp_path):
    path, *_ = formats.build_pdf(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    try:
        doc = PdfReader().read(path)  # pypdf may recover some pages of a cut file
    except ReaderError as e:
        assert str(e).startswith("not a valid PDF")
    else:
        assert isinstance(doc, Document)


def test_truncated_docx(tmp_path):
    path, *_ = formats.build_docx(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReaderError, match="not a valid DOCX"):
        DocxReader().read(path)


def test_corrupt_epub(tmp_path):
    path = tmp_path / "broken.epub"
    path.write_bytes(b"PK\x03\x04" + random.Random(2).randbytes(2000))
    with pytest.raises(ReaderError, match="not a valid EPUB"):
        EpubReader().read(path)


@pytest.mark.parametrize("name", ["blob.txt", "blob.md", "blob.csv", "blob.py", "blob.json", "blob.eml"])
def test_binary_named_as_text(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(random.Random(3).randbytes(3000) + b"\x00\x01\x02")
    with pytest.raises(ReaderError, match="binary content, not text"):
        read(path)


def test_binary_without_nul_bytes(tmp_path):
    path = tmp_path / "ctrl.txt"
    path.write_bytes(bytes(random.Random(4).choice(range(1, 32)) for _ in range(2000)))
    with pytest.raises(ReaderError, match="binary content, not text"):
        read(path)


def test_cp1252_text(tmp_path):
    path = tmp_path / "latin.txt"
    text = "Le café de la gare sert une crème brûlée délicieuse.\nÀ bientôt, chère Hélène — à demain.\n"
    path.write_bytes(text.encode("cp1252"))
    doc = read(path)
    assert "café de la gare" in doc.sections[0].text and "Hélène" in doc.sections[0].text


def test_latin1_csv(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("ville,note\nGenève,très étrange été\nZürich,schön\n".encode("latin-1"))
    assert locate(read(path), "ville: Genève · note: très étrange été") == [(None, 2, None)]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "utf-32"])
def test_text_with_bom(tmp_path, encoding):
    path = tmp_path / "bom.md"
    path.write_bytes("# Título\r\n\r\nNaïve café line.\r\n".encode(encoding))
    doc = read(path)
    assert doc.title == "Título"
    assert locate(doc, "Naïve café line.") == [(None, 3, "Título")]
    assert "\ufeff" not in doc.sections[0].text


@pytest.mark.parametrize("suffix", sorted(BY_SUFFIX))
def test_empty_file_has_no_sections(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    assert read(path).sections == []


@pytest.mark.parametrize("suffix", [".txt", ".md", ".rst", ".html", ".csv", ".json", ".jsonl", ".py", ".ipynb"])
def test_whitespace_only_file_has_no_sections(tmp_path, suffix):
    path = tmp_path / f"blank{suffix}"
    path.write_text("  \n\n\t\n", encoding="utf-8")
    assert read(path).sections == []


def test_invalid_json_and_notebook(tmp_path):
    (tmp_path / "bad.json").write_text('{"a": 1,,}', encoding="utf-8")
    with pytest.raises(ReaderError, match=r"not valid JSON: .*\(line 1, column 9\)"):
        read(tmp_path / "bad.json")
    (tmp_path / "bad.ipynb").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ReaderError, match="not a valid notebook"):
        read(tmp_path / "bad.ipynb")


def test_missing_file_is_a_reader_error(tmp_path):
    for suffix in (".txt", ".pdf", ".docx", ".epub", ".eml"):
        with pytest.raises(ReaderError):
            read(tmp_path / f"missing{suffix}")


def test_pdf_without_text_gives_no_sections(tmp_path):
    from reportlab.pdfgen import canvas

    path = tmp_path / "blank.pdf"
    c = canvas.Canvas(str(path))
    c.rect(100, 100, 200, 200)
    c.showPage()
    c.save()
    doc = PdfReader().read(path)
    assert doc.sections == [] and doc.metadata["pages"] == 1


def test_random_bytes_never_hang(tmp_path):
    rng = random.Random(5)
    for suffix in (".pdf", ".docx", ".epub", ".xlsx", ".ods", ".pptx", ".odp", ".odt", ".rtf", ".png", ".tiff"):
        for n in range(5):
            path = tmp_path / f"r{n}{suffix}"
            path.write_bytes(rng.randbytes(rng.randint(1, 5000)))
            with pytest.raises(ReaderError):
                read(path)
    assert os.path.isdir(tmp_path)


def test_undecodable_bytes(tmp_path):
    rng = random.Random(6)
    path = tmp_path / "noise.txt"
    path.write_bytes(bytes(rng.randrange(128, 256) for _ in range(3000)))
    with pytest.raises(ReaderError, match="cannot decode text|binary content"):
        read(path)

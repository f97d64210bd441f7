"""Builders of real files in every format the built-in readers handle.

``FORMAT_CASES`` is a list of ``(suffix, builder)``; ``builder(directory)``
writes one file and returns ``(path, fact, expected_page, expected_line)``:
``fact`` is a distinctive sentence that appears verbatim in exactly one line of
the extracted text, ``expected_page`` the 1-based page (PDF) or None, and
``expected_line`` the 1-based line of that line in the reader's coordinates
(``section.start_line + section.text[:i].count("\\n")`` where ``i`` is the
fact's offset in ``section.text``):

- text, markdown, rst, code, csv/tsv, jsonl: the line in the file;
- pdf: the line in that page's extracted text (or OCR text, for a scan);
- xlsx, ods: the row in its sheet; pptx, odp: the line in that slide's text
  (``page`` is the slide);
- html, docx, odt, rtf, json, epub, notebook, mbox: the line in the extracted text
  (see each reader's docstring);
- png, tiff: the line of the OCR text (``page`` for a TIFF page);
- eml: the fact sits in a .txt attachment, so the line is in that attachment.

``EXTRA_CASES`` holds more cases in the same shape (e-mail body, .log,
.ndjson, .htm ...), used by tests/test_readers.py.
"""

from __future__ import annotations

import json
import mailbox
import sys
from email.message import EmailMessage
from pathlib import Path
from typing import Callable

_ROOT = Path(__file__).resolve().parents[1]
for _p in (_ROOT, _ROOT / "plugins"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

Built = tuple[Path, str, "int | None", int]
Builder = Callable[[Path], Built]

__all__ = ["FORMAT_CASES", "EXTRA_CASES", "Built", "Builder", "render_text"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="\n")
    return path


def build_txt(d: Path) -> Built:
    fact = "The zorblax coefficient of the Quimby reactor is 47.3 kelvin."
    text = f"Field notes from the observatory\n\nWeather was clear all night.\n{fact}\nEnd of notes.\n"
    return _write(d / "notes.txt", text), fact, None, 4


def build_log(d: Path) -> Built:
    fact = "worker-7 reported the brindlemoss queue drained after 6614 jobs"
    lines = [f"2024-05-0{i} 10:00:00 INFO heartbeat ok" for i in range(1, 6)]
    lines.insert(3, f"2024-05-03 10:00:01 WARN {fact}")
    return _write(d / "service.log", "\n".join(lines) + "\n"), fact, None, 4


def build_markdown(d: Path) -> Built:
    fact = "The glimmerwick valve must be turned exactly 13 times counterclockwise."
    text = (
        "# Frobnicator Manual\n"  # 1
        "\n"
        "Intro text for the manual.\n"  # 3
        "\n"
        "## Install\n"  # 5
        "\n"
        "Run the installer.\n"  # 7
        "\n"
        "### Linux\n"  # 9
        "\n"
        "Use the tarball.\n"  # 11
        f"{fact}\n"  # 12
        "\n"
        "```\n# not a heading inside a fence\n```\n"  # 14-16
        "\n"
        "## Usage\n"  # 18
        "\n"
        "Run it daily.\n"
    )
    return _write(d / "manual.md", text), fact, None, 12


def build_rst(d: Path) -> Built:
    fact = "The plimbus snorkel tolerates a maximum depth of 812 fathoms."
    text = (
        "=============\n"  # 1
        "Snorkel Guide\n"  # 2
        "=============\n"  # 3
        "\n"
        "An introduction to snorkels.\n"  # 5
        "\n"
        "Setup\n"  # 7
        "-----\n"  # 8
        "\n"
        "Attach the mouthpiece first.\n"  # 10
        f"{fact}\n"  # 11
        "\n"
        "Care\n"  # 13
        "----\n"
        "\n"
        "Rinse with fresh water.\n"
    )
    return _write(d / "guide.rst", text), fact, None, 11


_HTML = """<!DOCTYPE html>
<html>
<head><title>Cartography of Vexmoor</title>
<style>body {{ color: red; }}</style>
<script>var hidden = "script text must not appear";</script>
</head>
<body>
<h1>Cartography of Vexmoor</h1>
<p>Opening paragraph
   about the maps.</p>
<h2>Rivers</h2>
<p>The river list follows.</p>
<ul>
  <li>First river runs north.</li>
  <li>{fact_html}</li>
</ul>
<!-- a comment that is not visible -->
</body>
</html>
"""


def build_html(d: Path, name: str = "vexmoor.html") -> Built:
    fact = "The Quandril river flows uphill for 29 leagues every spring."
    html = _HTML.format(fact_html="The <b>Quandril</b> river flows\n    uphill for 29 leagues every spring.")
    # extracted lines: 1 h1, 2 p, 3 h2, 4 p, 5 li, 6 li (fact)
    return _write(d / name, html), fact, None, 6


def build_htm(d: Path) -> Built:
    return build_html(d, "vexmoor.htm")


def build_pdf(d: Path) -> Built:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    fact = "The marmoset index of Glorbington harbor reached 612 points."
    path = d / "report.pdf"
    c = canvas.Canvas(str(path), pagesize=A4)
    c.setTitle("Glorbington Harbor Report")
    pages = [
        ["Glorbington Harbor Report", "Page one covers the weather.", "Tides were ordinary."],
        ["Chapter Two", "Market figures for the quarter.", fact, "More figures follow."],
    ]
    for lines in pages:
        y = 780
        for line in lines:
            c.drawString(72, y, line)
            y -= 20
        c.showPage()
    c.save()
    return path, fact, 2, 3


def build_docx(d: Path) -> Built:
    import docx

    fact = "The spindlewort gasket cures in 44 minutes at 90 percent humidity."
    doc = docx.Document()
    doc.add_paragraph("Spindlewort Handbook", style="Title")  # 1
    doc.add_heading("Materials", level=1)  # 2
    doc.add_paragraph("You need the following parts.")  # 3
    doc.add_paragraph("")  # empty paragraphs are not lines
    table = doc.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Part", "Count"  # 4
    table.cell(1, 0).text, table.cell(1, 1).text = "Gasket", "3"  # 5
    doc.add_heading("Assembly", level=2)  # 6
    doc.add_paragraph("Fit the gasket to the frame.")  # 7
    p = doc.add_paragraph("The spindlewort gasket cures in 44 minutes ")  # 8
    p.add_run("at 90 percent humidity.").bold = True
    path = d / "handbook.docx"
    doc.save(str(path))
    return path, fact, None, 8


def build_epub(d: Path) -> Built:
    from ebooklib import epub

    fact = "The vorpal lanterns of Eskerholm burn blue for 19 nights."
    book = epub.EpubBook()
    book.set_identifier("eskerholm-0001")
    book.set_title("Lanterns of Eskerholm")
    book.set_language("en")
    c1 = epub.EpubHtml(title="Arrival", file_name="ch1.xhtml", lang="en")
    c1.content = "<h1>Arrival</h1><p>The travellers reached the town.</p><p>It was cold.</p>"  # lines 1-3
    c2 = epub.EpubHtml(title="The Lanterns", file_name="ch2.xhtml", lang="en")
    c2.content = f"<h1>The Lanterns</h1><p>Night fell quickly.</p><p>{fact}</p>"  # lines 5-7
    book.add_item(c1)
    book.add_item(c2)
    book.toc = [epub.Link("ch1.xhtml", "Arrival", "ch1"), epub.Link("ch2.xhtml", "The Lanterns", "ch2")]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", c1, c2]
    path = d / "lanterns.epub"
    epub.write_epub(str(path), book)
    return path, fact, None, 7


_EML_BODY_FACT = "The quillotine ferry departs from pier 12 at dawn."
_EML_ATTACHMENT_FACT = "The trebbleflax shipment arrives at dock 58 on Thursday."


def _eml(d: Path) -> Path:
    msg = EmailMessage()
    msg["Subject"] = "Trebbleflax logistics"
    msg["From"] = "Ada <ada@example.org>"
    msg["To"] = "ops@example.org"
    msg["Date"] = "Mon, 06 May 2024 09:30:00 +0000"
    msg.set_content(f"Hello ops,\n\n{_EML_BODY_FACT}\n\nRegards,\nAda\n")  # body lines 6-11
    msg.add_attachment(
        f"Shipping notes\n\n{_EML_ATTACHMENT_FACT}\nCall the harbor master.\n".encode(),
        maintype="text",
        subtype="plain",
        filename="shipping.txt",
    )
    msg.add_attachment(b"\x89PNG\r\n\x1a\n\x00\x00", maintype="image", subtype="png", filename="logo.png")
    path = d / "logistics.eml"
    path.write_bytes(bytes(msg))
    return path


def build_eml(d: Path) -> Built:
    """The fact is line 3 of the attached shipping.txt."""
    return _eml(d), _EML_ATTACHMENT_FACT, None, 3


def build_eml_body(d: Path) -> Built:
    """Same file; the fact is in the body: 4 header lines, a blank line, then the body."""
    return _eml(d), _EML_BODY_FACT, None, 8


def build_mbox(d: Path) -> Built:
    fact = "The gribbleton warehouse keeps exactly 3071 brass sprockets."
    path = d / "archive.mbox"
    box = mailbox.mbox(str(path))
    for subject, date, body in [
        ("Lunch plans", "Tue, 07 May 2024 11:00:00 +0000", "Pizza at noon?\nBring napkins.\n"),  # lines 1-7
        ("Warehouse count", "Wed, 08 May 2024 15:45:00 +0000", f"Hi team,\n{fact}\nFrom now on we count weekly.\n"),
    ]:
        msg = EmailMessage()
        msg["Subject"] = subject
        msg["From"] = "bob@example.org"
        msg["To"] = "team@example.org"
        msg["Date"] = date
        msg.set_content(body)
        box.add(msg)
    box.flush()
    box.close()
    # message 2: headers 9-12, blank 13, "Hi team," 14, fact 15
    return path, fact, None, 15


def build_csv(d: Path) -> Built:
    fact = "The snarfle index of Plovdiv quarry is 88.1 grams."
    text = (
        "site,region,note\n"  # 1
        "Alder,north,plain row\n"  # 2
        'Birch,south,"a note that spans\ntwo lines"\n'  # 3-4
        f"Cedar,east,{fact}\n"  # 5
        "Dogwood,west,last row\n"
    )
    return _write(d / "sites.csv", text), fact, None, 5


def build_tsv(d: Path) -> Built:
    fact = "The wembly turbine spins at 4410 rotations per hour."
    text = "unit\tstatus\tremark\nT1\tok\tnominal\nT2\tcheck\t" + fact + "\nT3\tok\tnominal\n"
    return _write(d / "turbines.tsv", text), fact, None, 3


def build_json(d: Path) -> Built:
    fact = "The flumox ratio of the Nimbus array is 0.0274."
    data = {"project": "Nimbus", "reactor": {"name": "Quimby-2", "notes": ["first note", fact]}, "count": 3}
    # flattened: project (1), reactor.name (2), reactor.notes[0] (3), reactor.notes[1] (4), count (5)
    return _write(d / "nimbus.json", json.dumps(data, indent=2)), fact, None, 4


def build_jsonl(d: Path, name: str = "events.jsonl") -> Built:
    fact = "The kestrelbrook dam released 915 tonnes of silt."
    lines = [
        json.dumps({"id": 1, "event": "inspection", "detail": {"ok": True}}),
        json.dumps({"id": 2, "event": "rainfall"}),
        "",
        json.dumps({"id": 3, "event": "release", "detail": {"text": fact}}),
    ]
    return _write(d / name, "\n".join(lines) + "\n"), fact, None, 4


def build_ndjson(d: Path) -> Built:
    return build_jsonl(d, "events.ndjson")


def build_notebook(d: Path) -> Built:
    fact = "The pondwick estimate converges to 5.91 parsecs."
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# Analysis of Pondwick\n", "Some intro."]},  # 1-2
            {
                "cell_type": "code",
                "metadata": {},
                "execution_count": 1,
                "source": ["import math\n", "x = math.sqrt(2)"],  # 4-5
                "outputs": [{"output_type": "stream", "name": "stdout", "text": ["output-text-not-indexed\n"]}],
            },
            {"cell_type": "markdown", "metadata": {}, "source": f"## Result\n{fact}"},  # 7-8
        ],
    }
    return _write(d / "pondwick.ipynb", json.dumps(nb, indent=1)), fact, None, 8


def build_code(d: Path) -> Built:
    fact = "The hexoplume cache expires after 271 seconds."
    text = (
        '"""Cache helpers."""\n'  # 1
        "\n"
        "import time\n"  # 3
        "\n"
        f"# {fact}\n"  # 5
        "TTL = 271\n"
        "\n"
        "def expired(t0):\n"
        "    return time.time() - t0 > TTL\n"
    )
    return _write(d / "cache.py", text), fact, None, 5


def build_xlsx(d: Path) -> Built:
    """Two sheets; the fact is a cell of row 5 of the hidden sheet "Parts", under a merged header."""
    import openpyxl

    fact = "The frumious gearbox ships with 17 spare cogs."
    wb = openpyxl.Workbook()
    prices = wb.active
    prices.title = "Prices"
    prices.append(["Model", "Price", "SKU"])
    prices.append(["Quibble X2", 1299, "QX-2"])
    prices.append(["Quibble X3", 1549.5, "QX-3"])
    parts = wb.create_sheet("Parts")
    parts.sheet_state = "hidden"
    parts.append(["Part", "Details", None])  # "Details" is merged over B1:C1
    parts.merge_cells("B1:C1")
    parts.append(["bolt", "steel", "M6"])
    parts.append([])  # an empty row: skipped, but row numbers stay real
    parts.append(["washer", "nylon", "=1+1"])  # a formula with no saved value: no value
    parts.append(["gearbox", fact, "GB-17"])
    path = d / "catalogue.xlsx"
    wb.save(path)
    return path, fact, None, 5


def build_ods(d: Path) -> Built:
    """Like build_xlsx, written by odfpy; the fact is in row 4 of "Depots", rows repeated on the way."""
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    fact = "The Brimblecombe depot keeps 212 spare brushes."
    doc = OpenDocumentSpreadsheet()

    def row(*values, repeat=None):
        r = TableRow(numberrowsrepeated=repeat) if repeat else TableRow()
        for v in values:
            cell = TableCell(valuetype="float", value=v) if isinstance(v, (int, float)) else TableCell()
            if v is not None:
                cell.addElement(P(text=str(v)))
            r.addElement(cell)
        return r

    first = Table(name="Summary")
    first.addElement(row("Region", "Depots"))
    first.addElement(row("north", 3))
    doc.spreadsheet.addElement(first)
    depots = Table(name="Depots")
    for r in (row("Depot", "Note"), row("Ashcombe", "quiet"), row(None, None, repeat=1), row("Brimblecombe", fact), row(None, None, repeat=1000)):
        depots.addElement(r)
    doc.spreadsheet.addElement(depots)
    path = d / "depots.ods"
    doc.save(str(path))
    return path, fact, None, 4


def build_pptx(d: Path) -> Built:
    """Three slides; the fact is the first body line of slide 2 (line 2, after the title)."""
    from pptx import Presentation
    from pptx.util import Inches

    fact = "The snorkelwick rollout starts in 9 harbour towns next spring."
    deck = Presentation()
    layout = deck.slide_layouts[1]  # title and content
    for title, body, notes in (
        ("Welcome", "Agenda for the quarter", "Say hello."),
        ("Rollout plan", fact, "Mention the harbour masters."),
        ("Prices", None, "Prices are net."),
    ):
        slide = deck.slides.add_slide(layout)
        slide.shapes.title.text = title
        if body:
            slide.placeholders[1].text_frame.text = body
        else:
            slide.placeholders[1]._element.getparent().remove(slide.placeholders[1]._element)
            table = slide.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(2)).table
            for r, values in enumerate((("Model", "Price"), ("K3", "899"), ("K3 Pro", "1149"))):
                for c, v in enumerate(values):
                    table.cell(r, c).text = v
        slide.notes_slide.notes_text_frame.text = notes
    path = d / "rollout.pptx"
    deck.save(str(path))
    return path, fact, 2, 2


def build_odp(d: Path) -> Built:
    """Two slides written by odfpy; the fact is on slide 2, line 2 (after the title)."""
    from odf.draw import Frame, Page, TextBox
    from odf.namespaces import PRESENTATIONNS
    from odf.opendocument import OpenDocumentPresentation
    from odf.presentation import Notes
    from odf.style import MasterPage, PageLayout
    from odf.text import P

    fact = "The quillory ferry carries 64 bicycles on each crossing."
    doc = OpenDocumentPresentation()
    layout = PageLayout(name="Layout")
    doc.automaticstyles.addElement(layout)
    master = MasterPage(name="Default", pagelayoutname=layout)
    doc.masterstyles.addElement(master)

    def frame(text, cls=None, y="1cm"):
        f = Frame(width="20cm", height="3cm", x="1cm", y=y)
        if cls:
            f.setAttrNS(PRESENTATIONNS, "class", cls)
        box = TextBox()
        box.addElement(P(text=text))
        f.addElement(box)
        return f

    for n, (title, body, note) in enumerate((("Ferries", "Timetable overview", "Intro."), ("Capacity", fact, "Speak slowly.")), 1):
        page = Page(name=f"page{n}", masterpagename=master)
        page.addElement(frame(title, "title"))
        page.addElement(frame(body, None, "5cm"))
        notes = Notes()
        notes.addElement(frame(note, "notes", "10cm"))
        page.addElement(notes)
        doc.presentation.addElement(page)
    path = d / "ferries.odp"
    doc.save(str(path))
    return path, fact, 2, 2


def build_odt(d: Path) -> Built:
    """Headings as sections; the fact is line 7 of the extracted text (as for .docx)."""
    from odf.opendocument import OpenDocumentText
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import H, P

    fact = "The wobbleton kiln must cool for 31 hours before opening."
    doc = OpenDocumentText()
    doc.text.addElement(H(outlinelevel=1, text="Kiln Handbook"))  # 1
    doc.text.addElement(P(text="Read this before firing."))  # 2
    doc.text.addElement(P(text=""))  # not a line
    table = Table(name="Temperatures")
    table.addElement(TableColumn(numbercolumnsrepeated=2))
    for values in (("Stage", "Celsius"), ("bisque", "950")):  # 3, 4
        tr = TableRow()
        for v in values:
            cell = TableCell()
            cell.addElement(P(text=v))
            tr.addElement(cell)
        table.addElement(tr)
    doc.text.addElement(table)
    doc.text.addElement(H(outlinelevel=2, text="Cooling"))  # 5
    doc.text.addElement(P(text="Patience pays."))  # 6
    doc.text.addElement(P(text=fact))  # 7
    path = d / "kiln.odt"
    doc.save(str(path))
    return path, fact, None, 7


def build_rtf(d: Path) -> Built:
    fact = "The grumbleweed tea steeps for 7 minutes in copper pots."
    text = (
        "{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0 Times New Roman;}}\n"
        "{\\b Tea notes}\\par\n"  # 1
        "Brewing caf\\'e9 style.\\par\n"  # 2
        "\\par\n"  # 3 (blank)
        f"{fact}\\par\n"  # 4
        "}\n"
    )
    path = d / "tea.rtf"
    path.write_text(text, encoding="ascii")
    return path, fact, None, 4


def render_text(lines: list[str], *, size: tuple[int, int] = (1240, 480), font_px: int = 36):
    """A white Pillow image with ``lines`` in black (Pillow's built-in scalable font: no system fonts needed)."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=font_px)
    for i, line in enumerate(lines):
        draw.text((60, 60 + i * int(font_px * 2)), line, fill="black", font=font)
    return img


def build_png(d: Path) -> Built:
    """A rendered notice read by OCR; the fact is the second text line."""
    fact = "Lantern repairs at the Oddbury workshop close at noon on Fridays."
    path = d / "notice.png"
    render_text(["Workshop notice", fact, "Thank you."]).save(path)
    return path, fact, None, 2


def build_tiff(d: Path) -> Built:
    """A two-page TIFF; the fact is line 1 of page 2."""
    fact = "Ferry tickets for Quillory cost 14 euros return."
    path = d / "scan.tiff"
    first, second = render_text(["Page one says hello."]), render_text([fact, "Keep the ticket."])
    first.save(path, save_all=True, append_images=[second])
    return path, fact, 2, 1


def build_scanned_pdf(d: Path) -> Built:
    """A one-page PDF holding only an image of text (no text layer): read by OCR."""
    fact = "The scanned invoice lists 38 brass hinges for Vellmark."
    path = d / "scan.pdf"
    page = render_text(["Invoice 2291", fact, "Paid in full."], size=(1240, 1754)).convert("1")  # bilevel, as a fax scan
    page.save(path, resolution=150)
    return path, fact, 1, 2


FORMAT_CASES: list[tuple[str, Builder]] = [
    (".txt", build_txt),
    (".md", build_markdown),
    (".rst", build_rst),
    (".html", build_html),
    (".pdf", build_pdf),
    (".docx", build_docx),
    (".epub", build_epub),
    (".eml", build_eml),
    (".mbox", build_mbox),
    (".csv", build_csv),
    (".tsv", build_tsv),
    (".json", build_json),
    (".jsonl", build_jsonl),
    (".ipynb", build_notebook),
    (".py", build_code),
    (".xlsx", build_xlsx),
    (".ods", build_ods),
    (".pptx", build_pptx),
    (".odp", build_odp),
    (".odt", build_odt),
    (".rtf", build_rtf),
    (".png", build_png),
]

EXTRA_CASES: list[tuple[str, Builder]] = [
    (".eml", build_eml_body),
    (".log", build_log),
    (".htm", build_htm),
    (".ndjson", build_ndjson),
    (".tiff", build_tiff),
    (".pdf", build_scanned_pdf),
]

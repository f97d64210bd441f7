"""Builders of real files in every format the built-in readers handle.

``FORMAT_CASES`` is a list of ``(suffix, builder)``; ``builder(directory)``
writes one file and returns ``(path, fact, expected_page, expected_line)``:
``fact`` is a distinctive sentence that appears verbatim in exactly one line of
the extracted text, ``expected_page`` the 1-based page (PDF) or None, and
``expected_line`` the 1-based line of that line in the reader's coordinates
(``section.start_line + section.text[:i].count("\\n")`` where ``i`` is the
fact's offset in ``section.text``):

- text, markdown, rst, code, csv/tsv, jsonl: the line in the file;
- pdf: the line in that page's extracted text;
- html, docx, json, epub, notebook, mbox: the line in the extracted text
  (see each reader's docstring);
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

__all__ = ["FORMAT_CASES", "EXTRA_CASES", "Built", "Builder"]


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
]

EXTRA_CASES: list[tuple[str, Builder]] = [
    (".eml", build_eml_body),
    (".log", build_log),
    (".htm", build_htm),
    (".ndjson", build_ndjson),
]

"""Rebuild the binary documents of the sample corpus.

    .venv/bin/python scripts/make_corpus_binaries.py          # writes the files below
    .venv/bin/python scripts/make_corpus_binaries.py --text   # prints the plain text of each

Writes, into corpora/:
  annual_report_2023.pdf        (reportlab, 4 pages, one topic per page)
  warranty_policy_k3.docx       (python-docx, with a table of parts)
  vellmark_town_guide.epub      (ebooklib, 3 chapters)
  dealer_network_2024.xlsx      (openpyxl, 2 sheets, a merged title row)
  sales_kickoff_2024.pptx       (python-pptx, 3 slides, a table, speaker notes)
  scanned_service_bulletin_sb07.pdf  (an A4 page as an image only: read by OCR)
  photo_library_notice.jpg      (a photo of a notice: read by OCR)

All text is original and fictional. The output is byte-for-byte reproducible
(fixed timestamps), so rebuilding does not create spurious diffs.
"""

from __future__ import annotations

import datetime as _dt
import re
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent / "corpora"
FIXED_TIME = _dt.datetime(2024, 6, 1, 12, 0, 0)

# ---------------------------------------------------------------------------
# Annual report (PDF). One dict per page; each page carries its own facts.
# ---------------------------------------------------------------------------
REPORT_TITLE = "Larkspur Robotics - Annual Report 2023"

REPORT_PAGES = [
    {
        "heading": "1. Letter from the CEO and key figures",
        "paragraphs": [
            "2023 was the best year in the history of Larkspur Robotics. "
            "Demand for the K3 garden robot grew in every market, and we kept "
            "design, assembly and testing in Vellmark.",
            "Revenue in 2023 was 8.4 million euros, up from 5.6 million euros "
            "in 2022. The company was profitable for the second year in a row.",
            "Ilse Brandvold, CEO",
        ],
        "table": [
            ["Year", "Revenue (million euros)"],
            ["2021", "3.1"],
            ["2022", "5.6"],
            ["2023", "8.4"],
        ],
    },
    {
        "heading": "2. People and operations",
        "paragraphs": [
            "At 31 December 2023 Larkspur Robotics had 63 employees, compared "
            "with 48 employees one year earlier.",
            "In September 2023 we opened a new assembly hall of 2,400 square "
            "metres next to our headquarters on Quarry Lane. It doubled our "
            "production capacity.",
            "Staff turnover was low, and 11 apprentices from the Vellmark "
            "vocational school worked with us during the year.",
        ],
        "table": None,
    },
    {
        "heading": "3. Products and markets",
        "paragraphs": [
            "We sold 5,120 K3 garden robots in 2023.",
            "Exports made up 41 percent of unit sales. The Netherlands was our "
            "largest export market, followed by Belgium.",
            "Sales of spare parts grew strongly, which we see as proof that "
            "customers repair their robots instead of replacing them.",
        ],
        "table": None,
    },
    {
        "heading": "4. Outlook for 2024",
        "paragraphs": [
            "For 2024 we expect revenue of about 10.5 million euros.",
            "Firmware 3.4 will bring a quiet mode that follows local rules on "
            "garden machines.",
            "A hedge-trimming robot with the working name H1 is in development. "
            "It will not be launched before 2025.",
        ],
        "table": None,
    },
]

# ---------------------------------------------------------------------------
# Warranty policy (DOCX).
# ---------------------------------------------------------------------------
WARRANTY_TITLE = "Larkspur K3 Limited Warranty"
WARRANTY_INTRO = [
    "This warranty applies to Larkspur K3 garden robots bought new from "
    "Larkspur Robotics or an authorised dealer on or after 1 January 2023.",
    "The warranty period starts on the date of purchase shown on the receipt. "
    "The table below shows the warranty period for each part.",
]
WARRANTY_TABLE = [
    ["Part", "Warranty (months)"],
    ["Chassis and housing", "36"],
    ["Blade motor", "36"],
    ["Drive wheel motors", "24"],
    ["Battery pack", "24"],
    ["Main board (electronics)", "24"],
    ["Charging station CS-2", "24"],
    ["Power adapter PA-29", "24"],
    ["Rain sensor module", "12"],
    ["Blades and blade disc", "0 (wear parts, not covered)"],
]
WARRANTY_SECTIONS = [
    (
        "Battery pack",
        [
            "The battery pack is covered if its capacity falls below 70 percent "
            "within the warranty period. If you register your robot in the "
            "Larkspur app within 30 days of purchase, the battery warranty is "
            "extended to 36 months.",
        ],
    ),
    (
        "What is not covered",
        [
            "Damage caused by accidents, lightning, flooding, cleaning with a "
            "high-pressure washer, or repairs by people who are not authorised "
            "by Larkspur Robotics.",
        ],
    ),
    (
        "How to make a claim",
        [
            "Send an e-mail with your serial number, a copy of the receipt and a "
            "short description of the fault to support@larkspur-robotics.example. "
            "We answer every claim within 5 working days.",
        ],
    ),
]

# ---------------------------------------------------------------------------
# Town guide (EPUB).
# ---------------------------------------------------------------------------
GUIDE_TITLE = "Welcome to Vellmark - A Guide for New Residents"
GUIDE_CHAPTERS = [
    (
        "The town",
        [
            "Vellmark is a small town on the river Vell. It received its town "
            "charter in 1312, and the old stone bridge over the Vell is still in use.",
            "Vellmark has 18,400 inhabitants (census of 2023). The mayor is "
            "Henrike Saarinen.",
            "The heart of the town is Linden Square with the town hall at "
            "Linden Square 1. The weekly market is held on Linden Square every "
            "Thursday from 07:00 to 13:00.",
        ],
    ),
    (
        "Living in Vellmark",
        [
            "Household waste is collected every Monday. Green waste from "
            "gardens is collected every second Wednesday from April to October.",
            "The recycling centre on Brickworks Road is open from Tuesday to "
            "Saturday. Old electrical devices and adapters can be dropped off there "
            "free of charge.",
            "The town library is in the old grain store by the river and lends "
            "books, tools and garden equipment.",
            "Please note the town rules on garden machines: they may only be used "
            "from Monday to Saturday between 08:00 and 20:00.",
        ],
    ),
    (
        "Work and business",
        [
            "The largest employer in Vellmark is the Vell Valley Hospital.",
            "Larkspur Robotics, the maker of the K3 garden robot, has its "
            "headquarters on Quarry Lane. The company was founded in Vellmark "
            "in 2016.",
            "The vocational school on Station Road trains mechanics, electricians "
            "and gardeners.",
        ],
    ),
]


# ---------------------------------------------------------------------------
# Dealer network (XLSX): one sheet per topic, a merged title row above the headers.
# ---------------------------------------------------------------------------
DEALERS_SHEETS = {
    "Dealers": [
        ["Town", "Dealer", "Contact", "Phone", "K3 demo robot"],
        ["Vellmark", "Larkspur Factory Shop", "Quarry Lane 7", "+00 417 2200", "yes"],
        ["Hollinsby", "Greenfold Garden Centre", "Mill Street 3", "+00 417 5310", "yes"],
        ["Marrowick", "Tessa Lindqvist Machines", "Harbour Road 41", "+00 417 8872", "no"],
        ["Oakhurst", "Brambleway Tools", "Station Square 2", "+00 417 9034", "yes"],
        ["Dunmore", "Fieldcraft Garden Service", "Kiln Lane 15", "+00 417 6618", "no"],
    ],
    "Service rates": [
        ["Service", "Price (euros)", "Time (minutes)"],
        ["Winter service (clean, check, store until March)", 69, 45],
        ["Blade disc replacement incl. labour", 39, 20],
        ["Boundary wire repair (per visit)", 55, 60],
        ["Firmware update at the dealer", 0, 10],
    ],
}
DEALERS_TITLE = "Larkspur Robotics - Dealer network 2024"

# ---------------------------------------------------------------------------
# Sales kick-off deck (PPTX). (title, body lines, table rows or None, speaker notes)
# ---------------------------------------------------------------------------
DECK_TITLE = "Sales kick-off 2024"
DECK_SLIDES = [
    ("Sales kick-off 2024", ["Larkspur Robotics dealer meeting, Vellmark, 15 January 2024"], None,
     "Welcome everyone and thank the Greenfold team for hosting the coffee."),
    ("Targets for 2024", ["Our target for 2024 is 6,800 K3 robots.",
                          "Dealers who sell more than 150 robots earn a bonus of 4 percent extra margin."], None,
     "Stress that the bonus is paid in February of the following year."),
    ("Spring campaign", ["Campaign name: Quiet Lawns", "Free robot garage with every K3 ordered in March."],
     [["Month", "Focus"], ["March", "Free robot garage"], ["April", "Demo days at dealers"], ["May", "Demo truck tour"]],
     "The demo truck visits 12 towns in May; the route is sent to dealers in April."),
]

# ---------------------------------------------------------------------------
# Scanned page (image-only PDF) and a photo of a notice (JPEG): read by OCR.
# ---------------------------------------------------------------------------
SCAN_LINES = [
    "LARKSPUR ROBOTICS - SERVICE BULLETIN SB-07",
    "Date: 4 March 2024",
    "",
    "Robots: K3, serial numbers K3-23-04000 to K3-23-04650",
    "Part to replace: front caster wheel bearing LR-K3-BRG-F",
    "Dealers replace the bearing free of charge.",
    "The repair takes about 25 minutes.",
    "",
    "Bulletin check code: MAGPIE-7",
]
NOTICE_LINES = [
    "VELLMARK LIBRARY NOTICE",
    "",
    "Robot mower repair cafe",
    "Every first Saturday of the month",
    "from 10:00 to 14:00 in the old grain store.",
    "Volunteers fix garden robots for free.",
    "Please bring the charging station too.",
    "",
    "Password for the workshop wifi: HERON-LANTERN",
]


# ---------------------------------------------------------------------------
def source_texts() -> dict[str, str]:
    """Plain text of every generated file (used by the QA validation)."""
    pdf = [REPORT_TITLE]
    for page in REPORT_PAGES:
        pdf.append(page["heading"])
        pdf.extend(page["paragraphs"])
        for row in page["table"] or []:
            pdf.append("  ".join(row))
    docx = [WARRANTY_TITLE, *WARRANTY_INTRO]
    docx.extend("  ".join(row) for row in WARRANTY_TABLE)
    for heading, paras in WARRANTY_SECTIONS:
        docx.append(heading)
        docx.extend(paras)
    epub = [GUIDE_TITLE]
    for heading, paras in GUIDE_CHAPTERS:
        epub.append(heading)
        epub.extend(paras)
    xlsx = [DEALERS_TITLE]
    for name, rows in DEALERS_SHEETS.items():
        xlsx.append(name)
        xlsx.extend("  ".join(map(str, row)) for row in rows)
    pptx = []
    for title, body, table, notes in DECK_SLIDES:
        pptx.extend([title, *body, *("  ".join(r) for r in table or []), notes])
    return {
        "annual_report_2023.pdf": "\n".join(pdf),
        "warranty_policy_k3.docx": "\n".join(docx),
        "vellmark_town_guide.epub": "\n".join(epub),
        "dealer_network_2024.xlsx": "\n".join(xlsx),
        "sales_kickoff_2024.pptx": "\n".join(pptx),
        "scanned_service_bulletin_sb07.pdf": "\n".join(SCAN_LINES),
        "photo_library_notice.jpg": "\n".join(NOTICE_LINES),
    }


def normalize_zip(path: Path, when: _dt.datetime = FIXED_TIME) -> None:
    """Rewrite a zip container with fixed timestamps (keeps order and compression)."""
    with zipfile.ZipFile(path) as zin:
        items = [(info, zin.read(info.filename)) for info in zin.infolist()]
    with zipfile.ZipFile(path, "w") as zout:
        for info, data in items:
            new = zipfile.ZipInfo(info.filename, date_time=when.timetuple()[:6])
            new.compress_type = info.compress_type
            new.external_attr = 0o644 << 16
            zout.writestr(new, data)


def write_report_pdf(path: Path, title: str, pages: list[dict], *, author: str, subject: str) -> None:
    """A reportlab report: the title, then one page per {heading, paragraphs, table}, a footer
    with the title and "Page n of N"; reproducible (invariant)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    total = len(pages)

    def footer(canvas, doc):
        canvas.saveState()
        canvas.setFont("Helvetica", 9)
        canvas.drawString(2 * cm, 1.5 * cm, title)
        canvas.drawRightString(A4[0] - 2 * cm, 1.5 * cm, f"Page {doc.page} of {total}")
        canvas.restoreState()

    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        title=title,
        author=author,
        subject=subject,
        invariant=1,
        leftMargin=2 * cm,
        rightMargin=2 * cm,
        topMargin=2.5 * cm,
        bottomMargin=2.5 * cm,
    )
    story = []
    for i, page in enumerate(pages):
        if i == 0:
            story.append(Paragraph(title, styles["Title"]))
        story.append(Paragraph(page["heading"], styles["Heading1"]))
        for para in page["paragraphs"]:
            story.append(Paragraph(para, styles["BodyText"]))
            story.append(Spacer(1, 0.3 * cm))
        if page["table"]:
            table = Table(page["table"], hAlign="LEFT")
            table.setStyle(
                TableStyle(
                    [
                        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                        ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                        ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                    ]
                )
            )
            story.append(table)
        if i < total - 1:
            story.append(PageBreak())
    doc.build(story, onFirstPage=footer, onLaterPages=footer)


def write_table_docx(
    path: Path, title: str, intro: list[str], rows: list[list[str]], sections: list[tuple[str, list[str]]],
    *, author: str, when: _dt.datetime = FIXED_TIME,
) -> None:
    """A python-docx document: the title, intro paragraphs, a grid table (bold header row), then
    headed sections; reproducible (fixed properties and zip timestamps)."""
    import docx

    document = docx.Document()
    props = document.core_properties
    props.title = title
    props.author = author
    props.last_modified_by = author
    props.created = when
    props.modified = when
    props.last_printed = when
    props.revision = 1

    document.add_heading(title, level=0)
    for para in intro:
        document.add_paragraph(para)
    table = document.add_table(rows=0, cols=len(rows[0]))
    table.style = "Table Grid"
    for r, row in enumerate(rows):
        cells = table.add_row().cells
        for c, value in enumerate(row):
            cells[c].text = value
            if r == 0:
                for run in cells[c].paragraphs[0].runs:
                    run.bold = True
    for heading, paras in sections:
        document.add_heading(heading, level=1)
        for para in paras:
            document.add_paragraph(para)
    document.save(str(path))
    normalize_zip(path, when)


def build_pdf(path: Path) -> None:
    write_report_pdf(path, REPORT_TITLE, REPORT_PAGES, author="Larkspur Robotics",
                     subject="Annual report 2023 (fictional sample document)")


def build_docx(path: Path) -> None:
    write_table_docx(path, WARRANTY_TITLE, WARRANTY_INTRO, WARRANTY_TABLE, WARRANTY_SECTIONS,
                     author="Larkspur Robotics")


def build_epub(path: Path) -> None:
    from html import escape

    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("urn:uuid:6f1d2c4e-vellmark-town-guide-2024")
    book.set_title(GUIDE_TITLE)
    book.set_language("en")
    book.add_author("Town of Vellmark")
    chapters = []
    for n, (heading, paras) in enumerate(GUIDE_CHAPTERS, start=1):
        chapter = epub.EpubHtml(title=heading, file_name=f"chapter_{n}.xhtml", lang="en")
        body = "".join(f"<p>{escape(p)}</p>" for p in paras)
        chapter.content = f"<h1>{escape(heading)}</h1>{body}"
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *chapters]
    epub.write_epub(str(path), book, {"mtime": FIXED_TIME})
    normalize_zip(path)


def build_xlsx(path: Path) -> None:
    import openpyxl
    from openpyxl.styles import Font

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in DEALERS_SHEETS.items():
        ws = wb.create_sheet(name)
        ws.append([DEALERS_TITLE])  # a title merged over the table's width, above the headers
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(rows[0]))
        ws.append([])
        for row in rows:
            ws.append(row)
        for cell in ws[3]:
            cell.font = Font(bold=True)
    wb.properties.creator = "Larkspur Robotics"
    wb.properties.created = FIXED_TIME
    wb.save(path)
    # openpyxl stamps the time of saving into docProps/core.xml: put the fixed one there
    with zipfile.ZipFile(path) as z:
        items = [(info, z.read(info.filename)) for info in z.infolist()]
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    with zipfile.ZipFile(path, "w") as z:
        for info, data in items:
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + stamp, data)
            z.writestr(info, data)
    normalize_zip(path)


def build_pptx(path: Path) -> None:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for title, body, table, notes in DECK_SLIDES:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        frame = slide.placeholders[1].text_frame
        frame.text = body[0]
        for line in body[1:]:
            frame.add_paragraph().text = line
        if table:
            shape = slide.shapes.add_table(len(table), len(table[0]), Inches(1), Inches(4.2), Inches(8), Inches(2))
            for r, row in enumerate(table):
                for c, value in enumerate(row):
                    shape.table.cell(r, c).text = value
        slide.notes_slide.notes_text_frame.text = notes
    props = deck.core_properties
    props.title, props.author, props.last_modified_by = DECK_TITLE, "Larkspur Robotics", "Larkspur Robotics"
    props.created = props.modified = props.last_printed = FIXED_TIME
    props.revision = 1
    deck.save(str(path))
    normalize_zip(path)


def _render_page(lines: list[str], size: tuple[int, int], *, font_px: int, paper: str = "white", seed: int = 0):
    """Lines of text on a page image, with a little paper noise (a scan or a photo, not a screenshot)."""
    import random

    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("L", size, 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=font_px)
    y = int(font_px * 2.5)
    for line in lines:
        x = int(font_px * 2)
        for word in line.split():  # word by word: the built-in font's spaces are narrower than a typewriter's
            draw.text((x, y), word, fill=20, font=font)
            x += int(draw.textlength(word, font=font) + font_px * 0.5)
        y += int(font_px * 1.9)
    rng = random.Random(seed)
    pixels = img.load()
    for _ in range(size[0] * size[1] // 400):  # specks
        pixels[rng.randrange(size[0]), rng.randrange(size[1])] = rng.randrange(120, 200)
    return img.convert("RGB") if paper == "white" else Image.merge("RGB", [img.point(lambda v, k=k: v * k // 255) for k in (250, 244, 226)])


def build_scan_pdf(path: Path) -> None:
    """An A4 page at 150 dpi as a picture only: no text layer, like a scanner's output."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    page = _render_page(SCAN_LINES, (1240, 1754), font_px=32, seed=7).convert("L")
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setTitle("Service bulletin SB-07 (scan)")
    c.drawImage(ImageReader(page), 0, 0, width=A4[0], height=A4[1])
    c.showPage()
    c.save()


def build_photo_jpg(path: Path) -> None:
    """A phone photo of a notice on a board: off-white paper, slightly turned, JPEG."""
    page = _render_page(NOTICE_LINES, (1200, 900), font_px=40, paper="cream", seed=11)
    photo = page.rotate(-1.2, resample=3, expand=True, fillcolor=(96, 74, 52))  # the cork board around it
    photo.save(path, quality=85, optimize=False)


def main(argv: list[str]) -> int:
    if "--text" in argv:
        for name, text in source_texts().items():
            print(f"===== {name} =====\n{text}\n")
        return 0
    build_pdf(HERE / "annual_report_2023.pdf")
    build_docx(HERE / "warranty_policy_k3.docx")
    build_epub(HERE / "vellmark_town_guide.epub")
    build_xlsx(HERE / "dealer_network_2024.xlsx")
    build_pptx(HERE / "sales_kickoff_2024.pptx")
    build_scan_pdf(HERE / "scanned_service_bulletin_sb07.pdf")
    build_photo_jpg(HERE / "photo_library_notice.jpg")
    print(f"wrote {', '.join(source_texts())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

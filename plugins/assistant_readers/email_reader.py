"""E-mail: .eml (one message) and .mbox (many) via the standard library.

Each message becomes the text "Subject/From/Date/To" header lines, a blank line,
then the body (text/plain preferred, else HTML as text), with ``heading`` = its
subject; in an mbox, messages follow one another with a blank line between them
and ``start_line`` counts lines of that whole extracted text. Attachments whose
suffix another built-in reader handles are read by it and appended after their
message as Sections with heading "attachment: NAME" (their lines and pages are
those of the attachment itself). An attachment left out (over
``max_attachment_bytes``, or one its reader cannot read) is reported with
``report_skipped``: the ingest lists it as skipped, with the reason.
"""

from __future__ import annotations

import email
import mailbox
import re
import tempfile
from email import policy
from email.message import EmailMessage
from pathlib import Path, PurePath
from typing import ClassVar

from assistant.types import Document, ReaderError, Section, report_skipped

from ._common import decode_bytes, empty, is_empty_file, looks_binary, stack_blocks
from .html_reader import html_to_lines

_HEADERS = ("Subject", "From", "Date", "To")
_FROM_QUOTE = re.compile(r"^>(>*From )", re.M)


def _header(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # a malformed header: keep going without it
        return ""
    return " ".join(str(value).split()) if value is not None else ""


def _part_text(part: EmailMessage) -> str:
    try:
        text = part.get_content()
    except Exception:  # unknown charset and the like
        payload = part.get_payload(decode=True) or b""
        text = decode_bytes(payload) if payload.strip() else ""
    if not isinstance(text, str):
        return ""
    if part.get_content_subtype() == "html":
        return "\n".join(html_to_lines(text)[1])
    return text.replace("\r\n", "\n").replace("\r", "\n")


class EmailReader:
    suffixes: ClassVar[tuple[str, ...]] = (".eml", ".mbox")

    def __init__(self, *, attachments: bool = True, max_attachment_bytes: int = 50_000_000) -> None:
        self.attachments = attachments
        self.max_attachment_bytes = max_attachment_bytes

    def read(self, path: Path) -> Document:
        path = Path(path)
        if is_empty_file(path):
            return empty("email")
        with open(path, "rb") as f:
            head = f.read(65536)
        if looks_binary(head):
            raise ReaderError("binary content, not text")
        is_mbox = path.suffix.lower() == ".mbox"
        if is_mbox:
            box = mailbox.mbox(path, factory=lambda f: email.message_from_binary_file(f, policy=policy.default), create=False)
            try:
                messages = list(box)
            finally:
                box.close()
            title = None
        else:
            with open(path, "rb") as f:
                messages = [email.message_from_binary_file(f, policy=policy.default)]
            title = _header(messages[0], "Subject") or None
        sections: list[Section] = []
        line, skipped = 1, 0
        with tempfile.TemporaryDirectory(prefix="assistant-mail-") as tmp:
            for msg in messages:
                body_part = msg.get_body(preferencelist=("plain", "html"))
                body = _part_text(body_part) if body_part is not None else ""
                if is_mbox:  # undo the ">From " quoting of body lines
                    body = _FROM_QUOTE.sub(r"\1", body)
                header = "\n".join(f"{h}: {_header(msg, h)}" for h in _HEADERS if _header(msg, h))
                text = "\n\n".join(t for t in (header, body.strip("\n")) if t.strip())
                for section in stack_blocks([(text, _header(msg, "Subject") or None)], first_line=line):
                    sections.append(section)
                    line = section.start_line + section.text.count("\n") + 2
                if self.attachments:
                    found, failed = self._attachments(path, msg, body_part, Path(tmp))
                    sections.extend(found)
                    skipped += failed
        meta = {"file_type": "email", "messages": len(messages)}
        if skipped:
            meta["attachments_skipped"] = skipped
        return Document(sections=sections, title=title, metadata=meta)

    def _attachments(self, path: Path, msg: EmailMessage, body_part, tmp: Path) -> tuple[list[Section], int]:
        from . import reader_for_suffix

        sections, failed = [], 0
        for part in msg.walk():
            name = part.get_filename() if not part.is_multipart() and part is not body_part else None
            name = PurePath(name.replace("\\", "/")).name if name else ""
            reader = reader_for_suffix(PurePath(name).suffix) if name else None
            if reader is None:
                continue
            try:
                data = part.get_payload(decode=True) or b""
                if len(data) > self.max_attachment_bytes:
                    raise ReaderError(f"larger than the e-mail reader's max_attachment_bytes "
                                      f"({len(data) / 1e6:.1f} MB > {self.max_attachment_bytes / 1e6:g} MB)")
                target = tmp / f"{len(list(tmp.iterdir()))}-{name}"
                target.write_bytes(data)
                document = reader.read(target)
            except Exception as e:
                failed += 1
                reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                report_skipped(path, f"attachment {name!r} not read: {reason}")
                continue
            label = f"attachment: {name}"
            for s in document.sections:
                heading = label if s.heading in (None, "", name, target.name) else f"{label} > {s.heading}"
                sections.append(Section(text=s.text, page=s.page, start_line=s.start_line, heading=heading))
        return sections, failed

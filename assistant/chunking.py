"""Documents -> chunks with locations, through llama-index's SentenceSplitter.

Sizes are counted in tokens of the embedding model's tokenizer, so a chunk never
overflows what the embedder reads. Each chunk keeps its page and the line range
of the source it came from (derived from llama-index's character offsets).

Tokens alone do not bound a chunk's length: the embedder's tokenizer reads a
"word" of more than 100 characters as one unknown token, so 30 MB without a
space would be one chunk of one token. Every chunk is therefore also at most
``MAX_CHARS_PER_TOKEN * chunk_size`` characters (cut at a line break or a
space where there is one, else anywhere), and a section longer than
``WINDOW_CHARS`` is cut the same way into windows before it is tokenized, so
memory per file stays flat.
"""

from __future__ import annotations

import hashlib
from typing import Callable

from .store import ChunkRow
from .types import Document

__all__ = ["Chunker", "chunk_id", "text_hash", "MAX_CHARS_PER_TOKEN", "WINDOW_CHARS"]

# Ordinary text has 4-6 characters per token; only unbroken junk (base64, a 10 MB CSV field) reaches 16.
MAX_CHARS_PER_TOKEN = 16
WINDOW_CHARS = 200_000
_BREAKS = ("\n\n", "\n", ". ", " ")


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def chunk_id(path: str, content_hash: str, ord_: int) -> str:
    return hashlib.sha256(f"{path}\0{content_hash}\0{ord_}".encode()).hexdigest()[:32]


def cut_points(text: str, limit: int) -> list[tuple[int, int]]:
    """``text`` as (start, end) spans of at most ``limit`` characters, each ending at the last
    paragraph break, line break, sentence end or space in its second half, else at ``limit``."""
    spans, start = [], 0
    while len(text) - start > limit:
        end = start + limit
        for brk in _BREAKS:
            at = text.rfind(brk, start + limit // 2, end)
            if at >= 0:
                end = at + len(brk)
                break
        spans.append((start, end))
        start = end
    spans.append((start, len(text)))
    return spans


def _tabular(text: str) -> bool:
    """Mostly table rows ("a: 1 · b: 2" or "a | b"): cut between rows, never inside one."""
    lines = [line for line in text.split("\n") if line.strip()]
    rows = sum(1 for line in lines if " · " in line or line.count(" | ") >= 1)
    return len(lines) >= 3 and rows >= 0.6 * len(lines)


class Chunker:
    def __init__(self, count_tokens: Callable[[str], int], encode: Callable[[str], list], chunk_size: int, overlap: int):
        self.count_tokens = count_tokens
        self.encode = encode
        self.chunk_size = chunk_size
        self.overlap = overlap
        self._splitters: dict[int, object] = {}

    def _splitter(self, size: int):
        if size not in self._splitters:
            from llama_index.core.node_parser import SentenceSplitter

            self._splitters[size] = SentenceSplitter(
                chunk_size=size, chunk_overlap=min(self.overlap, size // 4), tokenizer=self.encode
            )
        return self._splitters[size]

    def _split(self, text: str, size: int) -> list[tuple[str, int, int, int]]:
        """(chunk text, start char, end char, tokens) for one section, none longer than
        ``MAX_CHARS_PER_TOKEN * size`` characters (see the module's docstring)."""
        max_chars = MAX_CHARS_PER_TOKEN * size
        out: list[tuple[str, int, int, int]] = []
        for w_start, w_end in cut_points(text, max(WINDOW_CHARS, 4 * max_chars)):
            for body, start, end, n in self._split_window(text[w_start:w_end], size):
                if len(body) <= max_chars:
                    out.append((body, w_start + start, w_start + end, n))
                    continue
                for p_start, p_end in cut_points(body, max_chars):
                    piece = body[p_start:p_end]
                    stripped = piece.strip()
                    if stripped:
                        at = w_start + start + p_start + piece.find(stripped)
                        out.append((stripped, at, at + len(stripped), len(self.encode(stripped))))
        return out

    def _split_window(self, text: str, size: int) -> list[tuple[str, int, int, int]]:
        """``_split`` without the length bounds.

        A section that fits in one chunk is what SentenceSplitter would return
        too (the stripped text, found in the section), so it skips the splitter:
        one tokenizer call instead of llama-index's node machinery, which was the
        largest cost of ingest after the embedding itself for small files.
        """
        n = len(self.encode(text))
        if n > size and _tabular(text):
            return self._pack_lines(text, size)
        if n <= size:
            body = text.strip()
            start = text.find(body)
            return [(body, start, start + len(body), n)]
        from llama_index.core.schema import Document as LIDocument

        out = []
        for node in self._splitter(size).get_nodes_from_documents([LIDocument(text=text)]):
            start = node.start_char_idx if node.start_char_idx is not None else max(text.find(node.text), 0)
            end = node.end_char_idx if node.end_char_idx is not None else start + len(node.text)
            out.append((node.text, start, end, len(self.encode(node.text))))
        return out

    def _pack_lines(self, text: str, size: int) -> list[tuple[str, int, int, int]]:
        """Whole lines (table rows) packed into chunks of at most ``size`` tokens; a row longer
        than that goes through the sentence splitter alone."""
        out: list[tuple[str, int, int, int]] = []
        start, used, pos, end = None, 0, 0, 0
        for line in text.split("\n"):
            n = len(self.encode(line)) if line.strip() else 0
            if start is not None and used + n > size:
                body = text[start:end]
                out.append((body, start, end, used))
                start, used = None, 0
            if line.strip():
                if n > size:
                    out.extend((b, pos + s, pos + e, t) for b, s, e, t in self._split_window(line, size))
                else:
                    if start is None:
                        start = pos
                    used += n
                    end = pos + len(line)
            pos += len(line) + 1
        if start is not None:
            out.append((text[start:end], start, end, used))
        return out

    def chunks(self, path: str, content_hash: str, doc: Document) -> list[ChunkRow]:
        return [row for row, _ in self.sized_chunks(path, content_hash, doc)]

    def sized_chunks(self, path: str, content_hash: str, doc: Document) -> list[tuple[ChunkRow, int]]:
        """The chunks, each with the token count of its ``embed_text`` (header and body counted apart).

        Ingest batches texts of similar token counts together; the counts come
        almost free here, where the sections are tokenized anyway.
        """
        out: list[tuple[ChunkRow, int]] = []
        for section in doc.sections:
            if not section.text.strip():
                continue
            header = "\n".join(h for h in dict.fromkeys([doc.title, section.heading]) if h)
            # leave room for the title/heading line that is embedded with every chunk
            header_tokens = self.count_tokens(header) if header else 0
            room = self.chunk_size - (header_tokens + 1 if header else 0)
            size = max(64, room // 16 * 16)
            text = section.text
            for body, start, end, body_tokens in self._split(text, size):
                start_line = section.start_line + text.count("\n", 0, start)
                end_line = section.start_line + text.count("\n", 0, max(start, end - 1))
                embed_text = f"{header}\n{body}" if header else body
                ord_ = len(out)
                row = ChunkRow(
                    id=chunk_id(path, content_hash, ord_),
                    path=path,
                    ord=ord_,
                    text=body,
                    embed_text=embed_text,
                    text_hash=text_hash(embed_text),
                    page=section.page,
                    start_line=start_line,
                    end_line=end_line,
                    heading=section.heading,
                )
                out.append((row, header_tokens + body_tokens))
        return out

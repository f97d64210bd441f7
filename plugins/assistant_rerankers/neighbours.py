"""``neighbours``: section-aware context around a hit.

A chunk is a window of its section; a fact near its edge is often explained in
the chunk before or after it. A hit whose chunk starts or ends mid-section (the
previous or next chunk of the same file is in the same section: the same heading
and page, and no gap in the lines) gets those neighbouring chunks joined to it,
nearest first, while the added text stays within ``max_tokens`` (estimated at 4
characters a token). The joined passage keeps the hit's id and score and cites
the merged line range. A neighbour that is itself a lower-ranked hit is folded in
and drops out of the list; one that ranks higher is left where it is (never shown twice).
"""

from __future__ import annotations

import dataclasses

from assistant.types import Hit, StageContext

CHARS_PER_TOKEN = 4


def same_section(a: Hit, b: Hit) -> bool:
    """``b`` directly follows ``a`` in the same section (``a`` before ``b`` in the file)."""
    if a.heading != b.heading or a.page != b.page:
        return False
    if a.start_line is None or b.start_line is None or a.end_line is None:
        return True
    return b.start_line <= a.end_line + 1


def join(a: Hit, b: Hit) -> str:
    """The text of ``a`` then ``b`` (``b`` follows ``a`` in the file), their overlap once.

    Line ``start_line + k`` of the result stays ``text.split("\\n")[k]``: chunks that
    share text are joined where ``b`` starts inside ``a``; otherwise ``b`` continues
    ``a``'s last line (a cut inside a line) or starts as many lines below as the file says.
    """
    x, y = a.text, b.text
    probe = y[: min(len(y), 48)]
    at = x.rfind(probe, max(0, len(x) - len(y) - 4096)) if probe else -1
    while at >= 0:
        if y.startswith(x[at:]):
            return x[:at] + y
        at = x.rfind(probe, 0, at + len(probe) - 1) if at > 0 else -1
    gap = (b.start_line - a.end_line) if (a.end_line is not None and b.start_line is not None) else 1
    return x + ("\n" * gap if gap > 0 else " ") + y


class Neighbours:
    def __init__(self, *, max_tokens: int = 256, each_side: int = 1):
        if max_tokens < 0:
            raise ValueError("plugins.neighbours.max_tokens: must be 0 or more")
        if each_side < 0:
            raise ValueError("plugins.neighbours.each_side: must be 0 or more")
        self.max_tokens = max_tokens
        self.each_side = each_side

    def rerank(self, query: str, hits: list[Hit], context: StageContext) -> list[Hit]:
        shown: set[str] = set()  # chunk ids already in a kept hit
        folded: set[str] = set()  # lower-ranked hits joined into a better one
        out: list[Hit] = []
        ranked = {h.chunk_id for h in hits}
        for h in hits:
            if h.chunk_id in folded:
                continue
            chunks = context.chunks_of(h.path)
            at = next((i for i, c in enumerate(chunks) if c.chunk_id == h.chunk_id), None)
            if at is None or self.max_tokens == 0:
                out.append(h)
                shown.add(h.chunk_id)
                continue
            # later hits still to come may not be folded if they were already kept; earlier ones never
            block, budget = [chunks[at]], self.max_tokens * CHARS_PER_TOKEN
            lo = hi = at
            text = h.text
            for _ in range(self.each_side):
                grew = False
                for side in (-1, 1):
                    j = lo - 1 if side < 0 else hi + 1
                    if not 0 <= j < len(chunks) or chunks[j].chunk_id in shown:
                        continue
                    first, second = (chunks[j], block[0]) if side < 0 else (block[-1], chunks[j])
                    if not same_section(first, second):
                        continue
                    merged = join(_as(first, text if side > 0 else first.text), _as(second, text if side < 0 else second.text))
                    if len(merged) - len(text) > budget:
                        continue
                    budget -= len(merged) - len(text)
                    text = merged
                    if side < 0:
                        block.insert(0, chunks[j])
                        lo = j
                    else:
                        block.append(chunks[j])
                        hi = j
                    grew = True
                if not grew:
                    break
            ids = {c.chunk_id for c in block}
            folded |= (ids & ranked) - {h.chunk_id}
            shown |= ids
            if len(block) == 1:
                out.append(h)
                continue
            out.append(dataclasses.replace(
                h, text=text, start_line=block[0].start_line, end_line=block[-1].end_line,
            ))
        return out


def _as(hit: Hit, text: str) -> Hit:
    """``hit`` standing for the joined block on one side: its text, the block's outer lines."""
    return hit if hit.text == text else dataclasses.replace(hit, text=text)

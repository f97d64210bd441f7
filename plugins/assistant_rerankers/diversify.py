"""``diversify``: near-duplicate passages collapse to one, the others named as "also in …".

The same text in copies or versions of a file would fill the passages with one
fact. Two hits from different files are near-duplicates when their word sets
(lower-cased words of two or more letters) overlap by ``threshold`` or more
(Jaccard); the better-ranked one stays and lists the other's path in
``Hit.also_in``. Hits of the same file are never merged (that is ``neighbours``'s job).

Versions of a document that differ in one figure are near-duplicates too, and the
answer stage picks the newest version among the passages it sees: after
``neighbours`` (longer, more alike passages) this cost hard_qa 3 of 94 questions
their file in the top 3 (docs/benchmarks.md, "Retrieval stages"); alone it held.
"""

from __future__ import annotations

import dataclasses
import re

from assistant.types import Hit, StageContext

_WORD = re.compile(r"\w\w+")


def words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class Diversify:
    def __init__(self, *, threshold: float = 0.9):
        if not 0.0 < threshold <= 1.0:
            raise ValueError("plugins.diversify.threshold: must be above 0 and at most 1")
        self.threshold = threshold

    def rerank(self, query: str, hits: list[Hit], context: StageContext) -> list[Hit]:
        kept: list[tuple[Hit, frozenset[str]]] = []
        for h in hits:
            w = words(h.text)
            for i, (k, kw) in enumerate(kept):
                # |a & b| / |a | b| <= min / max of the sizes: most pairs are ruled out without a set operation
                if k.path == h.path or min(len(kw), len(w)) < self.threshold * max(len(kw), len(w)):
                    continue
                if jaccard(kw, w) >= self.threshold:
                    also = tuple(dict.fromkeys([*k.also_in, h.path, *h.also_in]))
                    kept[i] = (dataclasses.replace(k, also_in=also), kw)
                    break
            else:
                kept.append((h, w))
        return [h for h, _ in kept]

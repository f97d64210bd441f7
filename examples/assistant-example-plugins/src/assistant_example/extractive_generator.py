"""A generator plugin that needs no model: it answers with the passages' own words.

It reads the numbered passages and the question out of the request the core
builds (completion prompt or chat messages), picks the sentences that share the
most words with the question and streams them back word by word, each followed
by its citation marker ("... 95 minutes. [1]"). Useful on machines too small
for a language model, and as a template for wrapping another LLM backend.

Settings (``[plugins.extractive]``): ``max_sentences`` (default 1). The core
also offers ``[generation] n_ctx`` to every generator with an ``n_ctx``
parameter; this one reports it as its context length.
"""

from __future__ import annotations

import re
from typing import Iterator

from assistant.types import GenerationRequest, ModelInfo

__all__ = ["ExtractiveGenerator"]

_PASSAGE = re.compile(r'^\[(\d+)\][^\n]*:\n"""\n(.*?)\n"""', re.S | re.M)
_QUESTION = re.compile(r"Question:\s*(.*)")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if len(w) > 2 or w.isdigit()}


class ExtractiveGenerator:
    def __init__(self, *, max_sentences: int = 1, n_ctx: int = 4096) -> None:
        if max_sentences < 1:
            raise ValueError("plugins.extractive.max_sentences must be at least 1")
        self.max_sentences = max_sentences
        self.n_ctx = n_ctx

    def info(self) -> ModelInfo:
        return ModelInfo(name="extractive (no model)", context_length=self.n_ctx, chat_template=False)

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text)) + text.count("\n")

    def answer(self, request: GenerationRequest) -> str:
        prompt = request.prompt if request.prompt is not None else "\n".join(m.get("content", "") for m in request.messages or [])
        questions = _QUESTION.findall(prompt)
        question = _words(questions[-1]) if questions else set()
        scored = []
        for n, passage in _PASSAGE.findall(prompt):
            for i, sentence in enumerate(_SENTENCE.split(passage)):
                sentence = " ".join(sentence.split())
                overlap = len(question & _words(sentence))
                if overlap and len(sentence) >= 8:
                    scored.append((-overlap, int(n), i, sentence))
        best = sorted(scored)[: self.max_sentences]
        best.sort(key=lambda s: (s[1], s[2]))  # document order reads better
        return " ".join(f"{sentence} [{n}]" for _, n, _, sentence in best)

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        for i, word in enumerate(self.answer(request).split(" ")):
            if word:
                yield word if i == 0 else " " + word

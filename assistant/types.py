"""The small data types that cross seams.

Plugins receive and return only these (plus plain Python values), so a plugin
author never needs the core's internals. Everything here is a frozen dataclass
or a Protocol; nothing imports llama-index, Chroma or Textual.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Iterator, Protocol, runtime_checkable

__all__ = [
    "Section",
    "Document",
    "Hit",
    "Source",
    "Answer",
    "VERIFIED",
    "QUOTED",
    "NOT_FOUND_HOW",
    "Retrieved",
    "Retrieval",
    "StageContext",
    "Reranker",
    "Draft",
    "GenerationRequest",
    "ModelInfo",
    "Reader",
    "SourcePlugin",
    "Generator",
    "ReaderError",
    "report_progress",
    "progress_to",
    "report_skipped",
    "skips_to",
    "skips_renamed",
]


class ReaderError(Exception):
    """A reader could not read a file. The message is shown to the user with the path."""


_progress: ContextVar[Callable[[str], None] | None] = ContextVar("assistant_reader_progress", default=None)


def report_progress(message: str) -> None:
    """A reader's word on slow work in progress ("OCR page 3/12"); the ingest shows it beside the file name.

    A no-op outside an ingest. It may raise when the user cancels the ingest: let
    the exception leave ``read``.
    """
    callback = _progress.get()
    if callback is not None:
        callback(message)


@contextmanager
def progress_to(callback: Callable[[str], None]) -> Iterator[None]:
    """Route ``report_progress`` calls made in this thread (and context) to ``callback``."""
    token = _progress.set(callback)
    try:
        yield
    finally:
        _progress.reset(token)


_skipped: ContextVar[Callable[[str, str], None] | None] = ContextVar("assistant_skipped", default=None)


def report_skipped(path: str | Path, reason: str) -> None:
    """A source's or reader's word that something was left out, and why: a FIFO, a link that
    leaves the folder, a mail attachment over the size limit ("attachment big.pdf: ...").

    The ingest lists it under ``files_skipped`` with ``path``; a no-op outside an ingest.
    """
    callback = _skipped.get()
    if callback is not None:
        callback(str(path), reason)


@contextmanager
def skips_to(callback: Callable[[str, str], None]) -> Iterator[None]:
    """Route ``report_skipped`` calls made in this thread (and context) to ``callback(path, reason)``."""
    token = _skipped.set(callback)
    try:
        yield
    finally:
        _skipped.reset(token)


@contextmanager
def skips_renamed(read_as: str | Path, path: str | Path) -> Iterator[None]:
    """``report_skipped`` calls that name ``read_as`` (the name a reader was given, e.g. a link to
    the opened file) name ``path`` instead, for the callback already in place."""
    outer = _skipped.get()
    if outer is None:
        yield
        return

    def renamed(p: str, reason: str) -> None:
        outer(str(path) if p == str(read_as) else p, reason)

    with skips_to(renamed):
        yield


@dataclass(frozen=True)
class Section:
    """A run of text from a document with the location it came from.

    ``page`` is 1-based where the format has pages (PDF), else None.
    ``start_line`` is the 1-based line, in the file (or in the page for paged
    formats), of the first line of ``text``; the chunker derives each chunk's
    line range from it. ``heading`` is the title or section heading the text
    sits under; it is prepended to chunk text for retrieval.
    """

    text: str
    page: int | None = None
    start_line: int = 1
    heading: str | None = None


@dataclass(frozen=True)
class Document:
    """What a reader returns for one file."""

    sections: list[Section]
    title: str | None = None
    metadata: dict[str, str | int | float | bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk (or, after the ``neighbours`` stage, a chunk joined with its neighbours).

    ``scores`` holds the score at each step that produced one, in order: ``dense``
    (cosine similarity) and ``keyword`` (BM25) when the chunk was in that list,
    ``fused``, then one entry per stage named after it (``search --explain``).
    ``also_in``: other files holding the same passage (the ``diversify`` stage).
    """

    chunk_id: str
    path: str
    text: str
    score: float
    page: int | None = None
    start_line: int | None = None
    end_line: int | None = None
    heading: str | None = None
    scores: dict[str, float] = field(default_factory=dict, compare=False)
    also_in: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    """A numbered passage shown to the model and the user; ``n`` starts at 1."""

    n: int
    hit: Hit
    cited: bool = False

    def as_dict(self, explain: bool = False) -> dict[str, Any]:
        """The passage as JSON; ``explain`` adds ``scores``, the hit's score at each step."""
        h = self.hit
        out = {
            "n": self.n,
            "chunk_id": h.chunk_id,
            "path": h.path,
            "page": h.page,
            "start_line": h.start_line,
            "end_line": h.end_line,
            "score": round(h.score, 6),
            "text": h.text,
            "heading": h.heading,
            "cited": self.cited,
            "also_in": list(h.also_in),
        }
        if explain:
            out["scores"] = {k: round(v, 6) for k, v in h.scores.items()}
        return out


# How an answer was made (``Answer.how``): the only three values.
VERIFIED = "model-verified"  # the model's words; every number, date, code and name is in a passage it cites
QUOTED = "quoted"  # whole sentences (or table rows) quoted from the cited passages
NOT_FOUND_HOW = "not-found"  # the refusal: the documents do not contain the answer


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    sources: list[Source]
    timings: dict[str, float]
    model: str
    embed_model: str
    query: str | None = None  # the standalone query used for retrieval, if rewritten
    grounded: bool = True  # False when the documents held nothing relevant enough
    flags: list[str] = field(default_factory=list)  # e.g. "removed-invalid-citation"
    how: str = VERIFIED  # VERIFIED | QUOTED | NOT_FOUND_HOW: shown to the user (a check mark only for VERIFIED)


@dataclass(frozen=True)
class Retrieved:
    """Yielded by ``ask_stream`` before the answer: the query used and the passages found."""

    query: str
    sources: list[Source]


@dataclass(frozen=True)
class Retrieval:
    """What one search returns: the hits best first, and what the answer stage needs besides.

    ``best_dense`` is the best dense cosine similarity among the candidates (0.0 when
    the dense retriever did not run): a relevance signal independent of the ranking.
    ``stages`` are the stages the hits went through, in order; ``timings`` their
    seconds (``candidates``, ``fusion``, ``hydrate``, then one per stage).
    """

    query: str
    hits: list[Hit]
    best_dense: float = 0.0
    stages: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Draft:
    """Yielded by ``ask_stream`` after ``Retrieved`` when a quoted answer is ready before the
    model's: show it at once. It is provisional, like the model's text pieces that may follow;
    the final ``Answer`` is the only authoritative text and replaces both."""

    text: str
    sources: list[Source]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    context_length: int
    chat_template: bool  # True when the model ships a chat template worth using


@dataclass(frozen=True)
class GenerationRequest:
    """Either ``messages`` (chat) or ``prompt`` (completion) is set, never both."""

    messages: list[dict[str, str]] | None = None
    prompt: str | None = None
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    temperature: float = 0.0


# --- plugin interfaces -------------------------------------------------------


@runtime_checkable
class StageContext(Protocol):
    """What the core gives a reranker besides the hits (one search's view of the library)."""

    top_k: int  # how many hits the search keeps after the last stage

    def chunks_of(self, path: str) -> list[Hit]:
        """Every chunk of an indexed file in document order, as hits scored 0 ([] for an unknown path)."""
        ...


@runtime_checkable
class Reader(Protocol):
    """``assistant.readers``: a file format -> a Document with locations.

    ``suffixes`` are lower-case with the dot (".pdf"). ``read`` raises
    ReaderError (or any exception) for a file it cannot read; the ingest
    reports it by path and reason and goes on with the rest.
    """

    suffixes: ClassVar[tuple[str, ...]]

    def read(self, path: Path) -> Document: ...


@runtime_checkable
class SourcePlugin(Protocol):
    """``assistant.sources``: where documents come from.

    ``files(root)`` yields the files under one configured root that should be
    ingested. Exclusion rules are given by the core through ``configure``-time
    settings; a source that cannot handle ``root`` returns nothing.
    """

    def files(self, root: Path) -> Iterable[Path]: ...


@runtime_checkable
class Generator(Protocol):
    """``assistant.generators``: an LLM backend.

    ``info()`` describes the model; ``stream(request)`` yields text pieces as
    they are produced. Closing the iterator stops generation.
    """

    def info(self) -> ModelInfo: ...

    def stream(self, request: GenerationRequest) -> Iterator[str]: ...


@runtime_checkable
class Reranker(Protocol):
    """``assistant.rerankers``: a stage after fusion, ``(query, hits) -> hits``.

    ``rerank`` gets the hydrated hits best first and returns the hits to keep, best
    first: reordered, rescored (``dataclasses.replace(hit, score=...)``), filtered or
    merged. It must not invent chunk ids; a merged hit keeps the id of one of the
    chunks it holds. The core records each hit's ``score`` after the stage under the
    stage's name in ``Hit.scores`` and keeps the first ``context.top_k``.
    """

    def rerank(self, query: str, hits: list[Hit], context: StageContext) -> list[Hit]: ...

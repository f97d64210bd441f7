"""Passages -> whole sentences and table rows, scored against a question.

This is the extractive half of answering: it never writes a word of its own.
A passage is split into *units*: a sentence of prose (never cut), a table row
with its column headers ("Part: Battery pack · Warranty (months): 24"), a list
item, a ``key: value`` line, or one line of code. Each unit keeps the lines it
came from, so a quote cites exactly where it is.

A unit's score for a question adds four signals, each in 0..1:

- ``dense``: cosine similarity of the question and the unit (with its heading)
  in the embedding model's space;
- ``lexical``: the share of the question's terms (stemmed, stop words out, each
  weighted by its rarity among the candidate units) found in the unit; terms
  found only in the unit's heading, title or passage count half;
- ``typed``: 1 when the question asks for a kind of fact (a number, date, time,
  code, person, place, phone number) and the unit holds one the question does
  not already state;
- ``prior``: where the passage ranked in retrieval.

The weights are in ``ScoreWeights``; they were chosen on ``tests/qa/corpora_qa.jsonl``
(see docs/benchmarks.md for the held-out figures).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from .facts import DATE, NUMBER, TIME, Facts, content_words, expected_type, facts, has_type
from .types import Hit

__all__ = ["Unit", "Scored", "ScoreWeights", "split_units", "score_units", "is_instruction", "key_terms"]

_ABBREV = re.compile(r"(?:\b(?i:e\.g|i\.e|etc|approx|incl|excl|no|nr|vs|dr|mr|mrs|ms|st|jr|sr|fig|ca|resp|dept|tel|ext|art|sec)|(?<![°\w])[A-Z])\.$")
_SENT_END = re.compile(r"(?<=[.!?])[\"'”’)]*\s+(?=[\"'“(\[]?[A-Z0-9€$£])")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+\S")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_BULLET = re.compile(r"^\s*(?:[-*•+]|\d{1,2}[.)])\s+\S")
_KEY_VALUE = re.compile(r"^\s*[\w\"'(][^:]{0,60}:\s+\S")
_CODE_LINE = re.compile(r"^\s*[A-Za-z_][\w.\[\]'\"]*\s*[:=]\s*\S|^\s*(?:def|class|return|import|from)\b")
_CODE_STATEMENT = re.compile(r"^\s*(?:return|def|class|import|from|print|if|elif|else|for|while|with|try|except|raise|assert)\b[^:]*[(:]?|^\s*[\w.]+\([^)]*\)\s*$|^\s*[)\]}]")
_RST_UNDERLINE = re.compile(r"^\s*([=\-~^*+#\"'])\1{2,}\s*$")
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.]{0,40}\b(?:instructions?|prompts?|rules|above|previous|prior)\b"
    r"|\b(?:reply|respond|answer|say|output|print)\s+(?:only\s+)?(?:with|that)\b[^.]{0,20}['\"“]"
    r"|\byou are now\b|\bsystem prompt\b|\bnew instructions?\b|\bas an ai\b",
    re.I,
)


def is_instruction(text: str) -> bool:
    """Text that talks to an AI ("ignore all previous instructions", "reply only with '...'"):
    data planted in a document, never a passage to quote or to show the model."""
    return bool(_INSTRUCTION.search(text))


@dataclass
class Unit:
    hit: Hit
    rank: int  # the passage's place in retrieval, 0 = best
    text: str
    start_line: int | None
    end_line: int | None
    kind: str  # sentence | row | line
    context: str = ""  # the heading(s) it sits under
    facts: Facts | None = None

    def citation_hit(self) -> Hit:
        """The unit as a passage of its own: its text and its lines, the rest from its chunk."""
        from dataclasses import replace

        return replace(self.hit, text=self.text, start_line=self.start_line, end_line=self.end_line)


@dataclass
class Scored:
    unit: Unit
    score: float
    dense: float
    lexical: float
    typed: bool
    coverage: float  # share of the question's terms in the unit, its heading, title or passage


@dataclass(frozen=True)
class ScoreWeights:
    dense: float = 0.50
    lexical: float = 0.50
    typed: float = 0.30
    prior: float = 0.10
    named: float = 0.10  # the question's codes and names (E04, K2) in the unit itself
    short_penalty: float = 0.15  # a unit of fewer than 4 words says little on its own


def _line_of(text: str, offset: int, first: int | None) -> int | None:
    return None if first is None else first + text.count("\n", 0, offset)


def _split_sentences(block: str) -> list[tuple[int, int]]:
    """(start, end) character spans of whole sentences in ``block``."""
    spans, start = [], 0
    for m in _SENT_END.finditer(block):
        before = block[start:m.start()].rstrip("\"'”’)")
        if _ABBREV.search(before) or len(before.strip()) < 3:
            continue
        spans.append((start, m.start()))
        start = m.end()
    if block[start:].strip():
        spans.append((start, len(block)))
    return spans


def _row_like(line: str) -> bool:
    s = line.strip()
    return (s.startswith("|") and s.count("|") >= 2) or " | " in s or " · " in s or s.count("; ") >= 2 and ": " in s


def _title_like(line: str, following: str) -> bool:
    """A short line with no closing punctuation, followed by a capitalised line: a heading of a
    format without heading markup (DOCX styles lost, e-mail subjects, "#3 - rating 3/5")."""
    nxt = following.strip()
    return (len(line) < 70 and len(line.split()) <= 9 and not re.search(r"[.!?:;,]$", line)
            and bool(nxt) and (nxt[0].isupper() or nxt[0].isdigit()) and not _row_like(line))


def split_units(hit: Hit, rank: int = 0) -> list[Unit]:
    """Whole sentences, table rows, list items and key/value or code lines of one passage."""
    text = hit.text
    units: list[Unit] = []
    heading = ""
    lines = text.split("\n")
    offsets = []
    pos = 0
    for line in lines:
        offsets.append(pos)
        pos += len(line) + 1
    para: list[int] = []  # indexes of the prose lines gathered

    def flush() -> None:
        if not para:
            return
        a, b = offsets[para[0]], offsets[para[-1]] + len(lines[para[-1]])
        block = text[a:b]
        for s, e in _split_sentences(block):
            sent = " ".join(block[s:e].split())
            if sent:
                units.append(Unit(hit, rank, sent, _line_of(text, a + s, hit.start_line),
                                  _line_of(text, a + max(s, e - 1), hit.start_line), "sentence", heading))
        para.clear()

    for i, line in enumerate(lines):
        s = line.strip()
        if not s or _TABLE_SEP.match(s):
            flush()
            continue
        if _MD_HEADING.match(line) or (i + 1 < len(lines) and _RST_UNDERLINE.match(lines[i + 1]) and len(s) < 80):
            flush()
            heading = s.lstrip("#").strip()
            continue
        if _RST_UNDERLINE.match(line):
            continue
        if _title_like(s, lines[i + 1] if i + 1 < len(lines) else ""):
            flush()
            heading = s
            continue
        if _CODE_STATEMENT.match(line):  # program logic, not a statement of fact
            flush()
            continue
        if units and units[-1].kind == "row" and re.match(r"^\s+- \S", line) and i > 0 and re.match(r"^\s*(?:\*|\s+-) ", lines[i - 1]):
            units[-1].text += " · " + s[2:].strip()  # an rst list-table cell of the row above
            units[-1].end_line = _line_of(text, offsets[i], hit.start_line)
            continue
        if re.match(r"^\s*\* - \S", line):  # an rst list-table row: "* - Pedals" (cells follow)
            flush()
            units.append(Unit(hit, rank, s[4:].strip(), _line_of(text, offsets[i], hit.start_line),
                              _line_of(text, offsets[i], hit.start_line), "row", heading))
            continue
        if _row_like(line) or _BULLET.match(line) or (_KEY_VALUE.match(line) and len(s) < 160) or _CODE_LINE.match(line):
            flush()
            kind = "row" if _row_like(line) else "line"
            body = " ".join(s.strip("|").split()) if s.startswith("|") else " ".join(s.split())
            if s.startswith("|"):
                body = " | ".join(c.strip() for c in s.strip().strip("|").split("|"))
            units.append(Unit(hit, rank, body, _line_of(text, offsets[i], hit.start_line),
                              _line_of(text, offsets[i], hit.start_line), kind, heading))
            continue
        para.append(i)
    flush()
    return units


# Words a question and a document use for the same attribute. Small and general on purpose:
# each group is one attribute, not one document's wording.
_SYNONYMS = [
    {"cost", "price", "fee", "costs", "priced", "eur", "euro", "euros", "usd", "dollar", "dollars"},
    {"weight", "weigh", "weighs", "kg", "heavy"},
    {"percentage", "percent", "pct", "%"},
    {"phone", "telephone", "tel", "call", "hotline"},
    {"address", "located", "location", "headquarters", "office", "street"},
    {"founded", "established", "started", "set", "founders", "founder"},
    {"employees", "staff", "people", "headcount", "workforce", "employ"},
    {"people", "inhabitants", "residents", "population", "live", "citizens"},
    {"duration", "long", "time", "takes", "minutes", "hours", "days", "weeks"},
    {"height", "tall", "high"},
    {"stock", "inventory", "available", "units"},
    {"warranty", "guarantee", "covered"},
    {"speed", "rpm", "fast"},
    {"port", "ports"},
]


def _split_identifiers(text: str) -> str:
    """``LOW_BATTERY_RETURN_PERCENT`` / ``mowing.default_height_mm`` / ``maxSpeed`` -> words."""
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)
    return re.sub(r"[_.](?=\w)", " ", text)


def _terms(text: str) -> set[str]:
    from .keyword_index import analyze

    return set(analyze(_split_identifiers(text)))


_SYNONYM_STEMS: dict[str, frozenset[str]] | None = None


def _synonyms(term: str) -> frozenset[str]:
    global _SYNONYM_STEMS
    if _SYNONYM_STEMS is None:
        from .keyword_index import analyze

        _SYNONYM_STEMS = {}
        for group in _SYNONYMS:
            stems = frozenset(t for w in group for t in analyze(w) or [w])
            for t in stems:
                _SYNONYM_STEMS[t] = _SYNONYM_STEMS.get(t, frozenset()) | stems
    return _SYNONYM_STEMS.get(term, frozenset((term,)))


_FOCUS = [
    re.compile(r"\bwhat(?:'s| is| was| are| were)? (?:the |my |its |their |our |a |an )?((?:[\w-]+ ){0,3}?[\w-]+?)(?: of| for| in| on| at| to| that| does| do| did| is| was| when| from| by| with| the| \w+ed\b|[?,]|$)", re.I),
    re.compile(r"\bhow (?:many|much) ([\w-]+(?: [\w-]+)?)", re.I),
    re.compile(r"\bwhich ([\w-]+(?: [\w-]+)?)", re.I),
]


def focus_terms(question: str) -> set[str]:
    """The terms of the thing asked for: "the *fine* for using ..." -> {fine}."""
    from .keyword_index import analyze

    for rx in _FOCUS:
        m = rx.search(question)
        if m:
            return set(analyze(m.group(1)))
    return set()


def key_terms(text: str) -> list[str]:
    from .keyword_index import analyze

    return list(dict.fromkeys(analyze(text)))


def score_units(
    question: str,
    units: Sequence[Unit],
    embed: Callable[[list[str]], "object"] | None,
    query_vector=None,
    weights: ScoreWeights = ScoreWeights(),
) -> list[Scored]:
    """Every unit scored for ``question``, best first."""
    if not units:
        return []
    import numpy as np

    kind = expected_type(question)
    q_terms = key_terms(" ".join(content_words(question)))
    if kind in (DATE, TIME):  # "in which year": the kind of answer, not a term to find
        q_terms = [t for t in q_terms if t not in {"year", "date", "day", "month", "time", "hour"}]
    focus = focus_terms(question)
    q_facts = facts(question)
    named = _named(question)
    measure = _measure(question)
    unit_terms = [_terms(u.text) for u in units]
    ctx_terms = [_terms(" ".join(filter(None, [u.context, u.hit.heading or "", _file_words(u.hit.path)]))) for u in units]
    passage_terms: dict[str, set[str]] = {}
    # (the passage's own text: a unit may rely on its neighbours for the subject)
    for u in units:
        if u.hit.chunk_id not in passage_terms:
            passage_terms[u.hit.chunk_id] = _terms(u.hit.text)
    n = len(units)
    syn = {t: _synonyms(t) for t in q_terms}

    def has(t: str, terms: set[str]) -> bool:
        return not syn[t].isdisjoint(terms)

    df = {t: sum(1 for ut, ct in zip(unit_terms, ctx_terms) if has(t, ut) or has(t, ct)) for t in q_terms}
    idf = {t: (math.log((n + 1) / (df[t] + 0.5)) + 0.1) * (2.0 if t in focus else 1.0) for t in q_terms}
    total = sum(idf.values()) or 1.0
    dense = np.zeros(n, dtype=np.float32)
    if embed is not None and query_vector is not None:
        texts = [f"{u.context or u.hit.heading or ''}: {u.text}".strip(": ") for u in units]
        vecs = np.asarray(embed(texts))
        dense = vecs @ np.asarray(query_vector)
    best_prior = max((u.hit.score for u in units), default=1.0) or 1.0
    out = []
    for i, u in enumerate(units):
        if u.facts is None:
            u.facts = facts(u.text)
        here = sum(idf[t] for t in q_terms if has(t, unit_terms[i]))
        near = sum(idf[t] for t in q_terms if not has(t, unit_terms[i])
                   and (has(t, ctx_terms[i]) or has(t, passage_terms[u.hit.chunk_id])))
        low = u.text.lower()
        named_here = sum(1 for w in named if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", low)) / len(named) if named else 0.0
        lexical = here / total + 0.5 * near / total
        coverage = (here + near) / total
        typed = has_type(kind, u.facts, q_facts, u.text, question) if kind else False
        if typed and kind == NUMBER and measure and measure.isdisjoint(unit_terms[i] | ctx_terms[i]) and not _money_ok(measure, u.text):
            typed = 0.4  # a number, but not in what the question measures it in
        prior = max(u.hit.score, 0.0) / best_prior
        score = (weights.dense * float(dense[i]) + weights.lexical * lexical + weights.typed * typed
                 + weights.prior * prior + weights.named * named_here)
        if len(u.text.split()) < 4 and u.kind == "sentence":
            score -= weights.short_penalty
        out.append(Scored(u, score, float(dense[i]), lexical, typed, coverage))
    out.sort(key=lambda s: -s.score)
    return out


_MEASURES = {
    "money": {"cost", "costs", "price", "pay", "paid", "fee", "fine", "eur", "euro", "euros", "usd", "dollar", "dollars",
              "pound", "spend", "spent", "invest", "invested", "investment", "budget", "salary", "revenue",
              "turnover", "profit", "income"},
    "months": {"month", "months"}, "years": {"year", "years"}, "days": {"day", "days"}, "weeks": {"week", "weeks"},
    "hours": {"hour", "hours", "h"}, "minutes": {"minute", "minutes", "min"}, "seconds": {"second", "seconds", "s"},
    "kg": {"kg", "kilogram", "kilograms", "weigh", "weight", "heavy"}, "litres": {"litre", "litres", "liter", "liters", "l"},
    "metres": {"metre", "metres", "meter", "meters", "m"}, "percent": {"percent", "percentage", "%", "pct"},
    "km": {"km", "kilometres", "kilometers"}, "mm": {"mm", "millimetres"}, "cm": {"cm", "centimetres"},
    "rpm": {"rpm"}, "people": {"employees", "people", "staff", "inhabitants", "residents"},
}


_DURATION = {"second", "seconds", "minute", "minutes", "min", "hour", "hours", "h", "day", "days", "week", "weeks",
             "month", "months", "year", "years", "night", "nights"}
_HOW = {"long": _DURATION, "old": {"year", "years", "age", "aged"}, "far": {"km", "kilometres", "kilometers", "metres",
        "meters", "m", "miles", "mile", "distance"}, "heavy": _MEASURES["kg"] | {"g", "grams", "tonnes"}}


def _measure(question: str) -> frozenset[str]:
    """The stems of the unit a question measures its answer in: "how many *cycles*", "how much does it
    *cost*", "how *long*" (a duration). Empty when the question names none."""
    from .keyword_index import analyze

    low = question.lower()
    group: set[str] = set()
    m = re.search(r"\bhow many ([a-z%][\w-]*)(?: of)?(?: ([a-z][\w-]*))?", low)
    if m:
        noun = [w for w in m.groups() if w and w not in {"does", "do", "did", "are", "is", "were", "was", "will", "can", "the"}]
        if noun:
            group = {noun[-1] if len(noun) > 1 and noun[-1].endswith("s") else noun[0]}
            group |= next((g for g in _MEASURES.values() if group & g), set())
    if not group:
        m = re.search(r"\bhow (long|old|far|heavy)\b", low)
        if m:
            group = set(_HOW[m.group(1)])
    if not group:
        words = set(re.findall(r"[\w%]+", low))
        group = next((set(g) for g in _MEASURES.values() if words & g), set())
    return frozenset(t for w in group for t in (analyze(w) or [w])) | frozenset(group)


def _money_ok(measure: frozenset[str], text: str) -> bool:
    return "cost" in measure and bool(re.search(r"[€$£]|\b(?:eur|euros?|usd|gbp|chf)\b|price|cost", text, re.I))


def _named(question: str) -> list[str]:
    """The question's codes and proper names, lower-case ("E04", "K2", "Vellmark")."""
    from .conversation import _named_things

    return [w.lower() for w in _named_things(question) if not re.fullmatch(r"[\d.,]+", w)]


def _file_words(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return re.sub(r"[_\-.]+", " ", name.rsplit(".", 1)[0])

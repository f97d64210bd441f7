"""The checkable facts of a text, normalised, and what kind of fact a question asks for.

An answer is *supported* by a passage when every fact in it (number, date,
time, code, proper name) is a fact of that passage too. Facts are compared in a
normal form, so that the same value written two ways matches:

    "12" / "twelve" / "12.0"      -> num:12
    "€2,350" / "2350 EUR"         -> num:2350
    "3 h 15 min" / "3:15"         -> time:3:15
    "8 April 2024" / "2024-04-08" -> date:2024-04-08 (and its parts)
    "LR-K3-RSM" / "lr-k3-rsm"     -> code:lr-k3-rsm
    "Kowalczyk"                   -> name:kowalczyk

Nothing here imports a model: it is plain text processing, fast enough to run
over every candidate sentence of a question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["facts", "Facts", "expected_type", "has_type", "content_words", "NUMBER", "DATE", "TIME", "CODE",
           "PERSON", "PLACE", "PHONE", "EMAIL"]

NUMBER, DATE, TIME, CODE, PERSON, PLACE, PHONE, EMAIL = "number", "date", "time", "code", "person", "place", "phone", "email"
FREQUENCY = "frequency"
_FREQUENCY_WORDS = re.compile(r"\b(?:every|each|daily|weekly|monthly|yearly|annually|hourly|once|twice|per|a (?:day|week|month|year))\b", re.I)

_MONTHS = {m: i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"], start=1)}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9
_WEEKDAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "dozen": 12,
}
_MONTH_RE = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_DATE_PATTERNS = [
    # 2024-04-08, 2024/04/08
    (re.compile(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b"), ("y", "m", "d")),
    # 8 April 2024, 8th of April 2024, 8 April
    (re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?(?:\s+of)?\s+({_MONTH_RE})\.?(?:,?\s+(\d{{4}}))?\b", re.I), ("d", "M", "y")),
    # April 8, 2024, April 8
    (re.compile(rf"\b({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(\d{{4}}))?\b", re.I), ("M", "d", "y")),
    # April 2024
    (re.compile(rf"\b({_MONTH_RE})\.?\s+(\d{{4}})\b", re.I), ("M", "y")),
    # 08.04.2024, 8/4/2024 (day first, the European order)
    (re.compile(r"\b(\d{1,2})[./](\d{1,2})[./](\d{4})\b"), ("d", "m", "y")),
]
_TIME_PATTERNS = [
    re.compile(r"\b(\d{1,2}):(\d{2})(?::\d{2})?\s*(am|pm|a\.m\.|p\.m\.)?", re.I),
    re.compile(r"\b(\d{1,2})\s*(am|pm|a\.m\.|p\.m\.)(?!\w)", re.I),
    re.compile(r"\b(\d{1,2})\s*(?:h|hrs?|hours?)\s*(?:and\s+)?(\d{1,2})\s*(?:min|mins|minutes?)\b", re.I),
]
_EMAIL_RE = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_URL_RE = re.compile(r"\bhttps?://\S+|\bwww\.\S+", re.I)
_PHONE_RE = re.compile(r"(?<![\w.])\+?\(?\d{1,4}\)?(?:[ \-/.]\(?\d{2,5}\)?){2,5}(?![\w])")
# a code: letters and digits mixed, or joined by - _ / . (E04, PA-29, LR-K3-RSM, X-Larkspur-Token, /dock, v3.4.1)
_CODE_RE = re.compile(r"(?<![\w/])(?:v?\d+(?:\.\d+){2,}|/[A-Za-z][\w\-]*(?:/[\w\-{}]+)*|[A-Za-z0-9]+(?:[-_/][A-Za-z0-9]+)+|[A-Z]+\d+[A-Z0-9]*|\d+[A-Z]+[A-Z0-9]*)(?![\w])")
_NUMBER_RE = re.compile(r"(?<![\w.])[-−]?\d{1,3}(?:[,\u202f\u00a0 ]\d{3})+(?:\.\d+)?(?!\d)|(?<![\w.])[-−]?\d+(?:[.,]\d+)?(?!\d)")
_WORD_RE = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ][\w'’\-]*")
_KEY_PREFIX = re.compile(r"(?m)(?:^|(?<=[·;|] ))\s*[A-Z][\w ()]{0,30}:(?=\s)")
_CITE_RE = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")

# capitalised words that are not names (sentence starts, titles, units)
_NOT_NAMES = {
    "the", "a", "an", "it", "its", "this", "that", "these", "those", "there", "yes", "no", "not", "and", "or", "but",
    "in", "on", "at", "of", "for", "to", "from", "by", "with", "after", "before", "during", "every", "each", "all",
    "is", "are", "was", "were", "be", "will", "can", "may", "must", "should", "if", "when", "what", "which", "who",
    "how", "where", "why", "answer", "question", "passage", "passages", "source", "sources", "note", "i", "we", "you",
    "they", "he", "she", "our", "your", "their", "his", "her", "my", "mr", "mrs", "ms", "dr", "per", "about", "up",
    "total", "only", "also", "one", "two", "three", "according", "as", "so", "then", "than", "both", "neither",
    "none", "more", "less", "some", "any", "item", "value", "row", "sheet", "page", "line", "lines", "table",
    "eur", "usd", "gbp", "chf", "vat", "incl", "excl", "ok",
} | set(_MONTHS) | _WEEKDAYS


def _num(text: str) -> str | None:
    t = text.replace("−", "-").replace("\u202f", "").replace("\u00a0", "")
    if re.fullmatch(r"-?\d{1,3}(?:[, ]\d{3})+(?:\.\d+)?", t):
        t = t.replace(",", "").replace(" ", "")
    elif re.fullmatch(r"-?\d+,\d{1,2}", t):  # a decimal comma: 12,8
        t = t.replace(",", ".")
    try:
        v = float(t)
    except ValueError:
        return None
    return f"{v:g}" if abs(v) < 1e15 else t


_COMMON_SUFFIX = re.compile(r"(?:s|ed|ing|ly|tion|ment|ness|ers?|ies|ive|al)$")


def _common_sentence_start(text: str, m: re.Match) -> bool:
    """A capitalised word that only starts a sentence ("Exports made up ...") and looks like a
    common word (a plural, a verb form), with no capitalised word after it: not a name."""
    before = text[:m.start()].rstrip()
    if before and before[-1] not in ".!?:;\n\"'“(-*#|·":
        return False
    after = text[m.end():m.end() + 40].lstrip()
    if after[:1].isupper():
        return False
    return bool(_COMMON_SUFFIX.search(m.group(0).lower())) and m.group(0)[1:].islower()


@dataclass(frozen=True)
class Facts:
    """The normalised facts of one text, by kind."""

    numbers: frozenset[str]
    dates: frozenset[str]
    times: frozenset[str]
    codes: frozenset[str]
    names: frozenset[str]
    emails: frozenset[str]
    phones: frozenset[str]

    def all(self) -> set[str]:
        return ({f"num:{x}" for x in self.numbers} | {f"date:{x}" for x in self.dates} | {f"time:{x}" for x in self.times}
                | {f"code:{x}" for x in self.codes} | {f"name:{x}" for x in self.names}
                | {f"email:{x}" for x in self.emails} | {f"phone:{x}" for x in self.phones})

    def missing_from(self, other: "Facts", other_text: str = "") -> list[str]:
        """The facts of this text that ``other`` does not hold (readable, for flags)."""
        low = other_text.lower()
        out = []
        for n in self.numbers:
            if n not in other.numbers and n not in other.phones:
                out.append(n)
        for d in self.dates:
            if d not in other.dates and not _date_in(d, other.dates):
                out.append(d)
        for t in self.times:
            if t not in other.times:
                out.append(t)
        for c in self.codes:
            if c not in other.codes and c not in low:
                out.append(c)
        for n in self.names:
            if n not in other.names and not re.search(rf"(?<!\w){re.escape(n)}(?!\w)", low):
                out.append(n)
        for e in self.emails:
            if e not in other.emails:
                out.append(e)
        for p in self.phones:
            if p not in other.phones:
                out.append(p)
        return sorted(out)

    def __bool__(self) -> bool:
        return bool(self.numbers or self.dates or self.times or self.codes or self.names or self.emails or self.phones)


def _date_in(d: str, dates: frozenset[str]) -> bool:
    """A date without a year ("--04-08") matches the same day of any year; a month ("2024-04") its days."""
    if d.startswith("--"):
        return any(x.endswith(d[1:]) for x in dates)
    return any(x.startswith(d + "-") for x in dates)


def facts(text: str) -> Facts:
    """Numbers, dates, times, codes, e-mail addresses, phone numbers and proper names in ``text``."""
    text = _CITE_RE.sub(" ", text)
    spans: list[tuple[int, int]] = []

    def take(m: re.Match) -> None:
        spans.append(m.span())

    def free(m: re.Match) -> bool:
        a, b = m.span()
        return all(b <= s or a >= e for s, e in spans)

    emails = set()
    for m in _EMAIL_RE.finditer(text):
        emails.add(m.group(0).lower())
        take(m)
    for m in _URL_RE.finditer(text):
        take(m)
    dates = set()
    for rx, order in _DATE_PATTERNS:
        for m in rx.finditer(text):
            if not free(m):
                continue
            parts = dict(zip(order, m.groups()))
            month = _MONTHS.get((parts.get("M") or "").lower().rstrip("."), None) if "M" in parts else None
            if month is None and parts.get("m"):
                month = int(parts["m"])
            if not month or not 1 <= month <= 12:
                continue
            day = int(parts["d"]) if parts.get("d") else None
            if day is not None and not 1 <= day <= 31:
                continue
            year = parts.get("y")
            if day is None:
                dates.add(f"{year}-{month:02d}")
            else:
                dates.add(f"{year}-{month:02d}-{day:02d}" if year else f"--{month:02d}-{day:02d}")
            take(m)
    times = set()
    for i, rx in enumerate(_TIME_PATTERNS):
        for m in rx.finditer(text):
            if not free(m):
                continue
            if i == 0:
                h, mi, ap = int(m.group(1)), int(m.group(2)), (m.group(3) or "").lower()
            elif i == 1:
                h, mi, ap = int(m.group(1)), 0, m.group(2).lower()
            else:
                h, mi, ap = int(m.group(1)), int(m.group(2)), ""
            if ap.startswith("p") and h < 12:
                h += 12
            if ap.startswith("a") and h == 12:
                h = 0
            if h > 24 or mi > 59:
                continue
            times.add(f"{h}:{mi:02d}")
            take(m)
    phones = set()
    for m in _PHONE_RE.finditer(text):
        if not free(m):
            continue
        digits = re.sub(r"\D", "", m.group(0))
        if len(digits) >= 7 and re.search(r"[ \-/.()]", m.group(0).strip()):
            phones.add(digits)
            take(m)
    codes = set()
    for m in _CODE_RE.finditer(text):
        if not free(m):
            continue
        tok = m.group(0)
        if re.fullmatch(r"[\d\-/.,]+", tok) and not re.fullmatch(r"\d+(?:\.\d+){2,}", tok):  # only digits and separators: a number or a range, not a code
            continue
        if re.fullmatch(r"\d+(?:st|nd|rd|th)", tok, re.I):
            continue
        codes.add(tok.lower())
        take(m)
    numbers = set()
    for m in _NUMBER_RE.finditer(text):
        if not free(m):
            continue
        v = _num(m.group(0))
        if v is not None:
            numbers.add(v)
            take(m)
    names = set()
    rest = "".join(" " if any(s <= i < e for s, e in spans) else ch for i, ch in enumerate(text))
    rest = _KEY_PREFIX.sub(lambda m: " " * len(m.group(0)), rest)  # "Minutes: Anja ..." -> the key is no name
    for m in _WORD_RE.finditer(rest):
        w = m.group(0)
        lw = w.lower()
        if lw in _NUMBER_WORDS:
            numbers.add(f"{_NUMBER_WORDS[lw]:g}")
            continue
        if lw in _MONTHS and len(lw) > 3 or lw in _WEEKDAYS:
            names.add(lw)  # a month or day on its own ("on Thursday", "in April")
            continue
        if w[0].isupper() and lw not in _NOT_NAMES and len(w) > 1 and not _common_sentence_start(rest, m):
            names.add(lw.strip("'’-"))
    return Facts(frozenset(numbers), frozenset(dates), frozenset(times), frozenset(codes), frozenset(names),
                 frozenset(emails), frozenset(phones))


# --- what a question asks for -------------------------------------------------------

_TYPE_RULES: list[tuple[re.Pattern, str]] = [
    (re.compile(r"\b(phone|telephone|fax|call)\b.*\bnumber\b|\bphone\b|\btelephone\b|\bhotline\b", re.I), PHONE),
    (re.compile(r"\be-?mail address\b|\bwhich e-?mail\b|\bwhat e-?mail\b", re.I), EMAIL),
    (re.compile(r"\bwhat time\b|\bat what time\b|\bwhich hours?\b|\bwhat hours\b|\bopening hours\b|\bat what times\b|\bwhat times\b", re.I), TIME),
    (re.compile(r"^\s*(?:and\s+)?when\b|\bwhat date\b|\bwhich date\b|\bwhich day\b|\bwhat day\b|\bwhich year\b|\bwhat year\b|\bsince when\b|\bby when\b|\bhow soon\b|\bdeadline\b", re.I), DATE),
    (re.compile(r"\b(?:part|serial|order|model|article|item|invoice|reference|ticket|case|account|product|tracking)\s*(?:number|no\.?|code|id)s?\b|\bsku\b|\bwhich code\b|\bwhat code\b|\berror code\b|\bendpoint\b|\bheader\b|\bwhich version\b|\bwhat version\b|\bfile name\b|\bidentifier\b|\bpart numbers?\b", re.I), CODE),
    (re.compile(r"\bhow often\b|\bhow frequently\b|\bat what intervals?\b", re.I), FREQUENCY),
    (re.compile(r"\bhow (?:many|much|long|far|big|large|heavy|high|tall|wide|deep|old|fast|quick|quickly|steep|warm|cold|hot|loud|soon)\b|\bwhat (?:is|was|are|were|'s) (?:the |my |its |their |our |a )?(?:[\w-]+ ){0,3}(?:price|cost|fee|fine|weight|capacity|number|amount|percentage|rate|temperature|speed|size|length|width|height|depth|distance|duration|total|sum|budget|salary|allowance|limit|maximum|minimum|age|population|revenue|voltage|power|range|discount|deposit|charge|count|score|rating|threshold|timeout|interval|delay|frequency|area|volume|dose|dosage|quantity|balance|share|margin|turnover|profit|loss|stock|level|port|year|period|term|notice|rent)s?\b|\bwhat percentage\b|\bwhat share\b|\bnumber of\b|\bwhich port\b|\bwhat port\b|\bat what (?:[\w-]+ )?(?:percentage|level|temperature|speed|age|price)\b|\bper ?cent\b|\bpercent\b|\bin (?:rpm|kg|km|mm|cm|euros?|dollars?|minutes|hours|days|months|years)\b|\bcost\b", re.I), NUMBER),
    (re.compile(r"^\s*(?:and\s+)?who\b|\bwhich (?:person|employee|manager|member|colleague|engineer|customer)\b|\bwhose\b|\bwho\b", re.I), PERSON),
    (re.compile(r"^\s*(?:and\s+)?where\b|\bwhich (?:city|town|country|address|street|place|shop|store|office|market|branch|dealer)\b|\bwhat address\b", re.I), PLACE),
]


def expected_type(question: str) -> str | None:
    """The kind of fact a question asks for, if its wording says (``None``: a description will do)."""
    for rx, kind in _TYPE_RULES:
        if rx.search(question):
            return kind
    return None


_PERSON_NAME = re.compile(r"\b[A-Z][a-z]+(?:[- ][A-Z][a-z'’-]+)+\b")
_ORG_WORDS = {"cycles", "ltd", "gmbh", "inc", "support", "team", "robotics", "company", "council", "office", "centre",
              "center", "street", "road", "lane", "department", "shop", "store", "bank", "school", "hall"}


def _day(d: str) -> str:
    return d[-5:] if len(d) >= 5 and d[-3] == "-" else d


def has_type(kind: str | None, unit: Facts, question: Facts, text: str = "", question_text: str = "") -> bool:
    """Does ``unit`` hold a fact of ``kind`` that the question does not already state?"""
    if kind is None:
        return True
    if kind == FREQUENCY:  # "every month", "twice a year", "every 6 to 8 weeks"
        return bool(_FREQUENCY_WORDS.search(text)) or bool(unit.numbers - question.numbers)
    if kind == NUMBER:
        return bool((unit.numbers - question.numbers) or (unit.times - question.times) or (unit.dates - question.dates))
    if kind == DATE:
        q = question_text.lower()
        asked_days = {_day(d) for d in question.dates}
        dates = {d for d in unit.dates if d not in question.dates and _day(d) not in asked_days}
        years = {n for n in unit.numbers if re.fullmatch(r"(19|20)\d\d", n)} - question.numbers
        days = {n for n in unit.names if n in _WEEKDAYS or n in _MONTHS} - question.names
        if re.search(r"\b(?:date|day)\b", q) and "year" not in q:  # "by what date": a day, not a year
            return bool(dates or {n for n in days if n in _WEEKDAYS}) or any(len(d) > 7 for d in dates)
        if "year" in q:
            return bool(years or dates)
        return bool(dates or years or days or (unit.times - question.times))  # "when does it open?" "at 9 am"
    if kind == TIME:
        return bool(unit.times - question.times)
    if kind == CODE:
        return bool((unit.codes - question.codes) or (unit.numbers - question.numbers))
    if kind == PHONE:
        return bool(unit.phones - question.phones)
    if kind == EMAIL:
        return bool(unit.emails - question.emails)
    if kind == PERSON and text:  # a person: two capitalised words ("Anja Kowalczyk"), not a company's name
        q = question_text.lower()
        return any(not set(p.lower().replace("-", " ").split()) & _ORG_WORDS and p.lower() not in q
                   for p in _PERSON_NAME.findall(text))
    if kind in (PERSON, PLACE):
        names = {n for n in unit.names - question.names if n not in _MONTHS and n not in _WEEKDAYS}
        return bool(names) or (kind == PLACE and bool(unit.codes - question.codes or unit.numbers - question.numbers))
    return True


_STOP = {
    "the", "a", "an", "of", "to", "in", "on", "at", "for", "by", "with", "from", "and", "or", "is", "are", "was",
    "were", "be", "been", "does", "do", "did", "can", "could", "will", "would", "should", "shall", "may", "might",
    "must", "has", "have", "had", "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "that",
    "this", "these", "those", "it", "its", "they", "their", "them", "there", "as", "if", "than", "then", "so",
    "not", "no", "yes", "any", "all", "each", "every", "some", "many", "much", "long", "about", "into", "after",
    "before", "our", "your", "my", "me", "i", "we", "you", "he", "she", "his", "her", "up", "out", "also", "just",
    "get", "got", "one", "per", "tell", "please", "know", "give", "say", "said", "according", "document",
    "documents", "file", "files", "mentioned", "stated", "listed", "but",
}


def content_words(text: str) -> list[str]:
    """Lower-case words that carry meaning (stop words and question words removed)."""
    return [w for w in (m.group(0).lower().strip("'’-") for m in _WORD_RE.finditer(_CITE_RE.sub(" ", text)))
            if w and w not in _STOP and len(w) > 1]

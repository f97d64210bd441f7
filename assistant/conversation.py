"""Conversations: follow-up questions made standalone, and turns kept across restarts.

A small base model cannot rewrite a follow-up reliably, so the rule is simple
and visible: an elliptical question ("and how much does it cost?") borrows the
named things (words with capitals or digits, like "K3" or "PA-29") of the
previous standalone query. The query actually used is returned with the answer.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .datadir import private_dir
from .types import QUOTED, Answer

__all__ = ["standalone_query", "Conversations", "ConversationInfo", "Turn"]

_WORD = re.compile(r"[\w][\w\-.]*\w|\w")
_FOLLOW_UP_START = re.compile(r"^\s*(and|also|what about|how about|but|so|then|ok|okay)\b", re.I)
_PRONOUNS = {"it", "its", "they", "their", "them", "this", "that", "these", "those", "he", "she", "his", "her", "there", "one"}
_FILLER = {"year", "which", "what", "does", "did", "that", "this", "the", "with", "from", "about", "much", "many",
           "long", "when", "where", "there", "have", "has", "was", "were", "will", "would"}
_QUESTION_WORDS = {"what", "how", "when", "where", "who", "which", "why", "is", "are", "does", "do", "can", "and", "in", "on", "at"}


_HONORIFICS = {"mr", "mrs", "ms", "miss", "dr", "prof", "sir"}


def _named_things(text: str) -> list[str]:
    words = _WORD.findall(text)
    starts = {m.end() for m in re.finditer(r"[.?!]\s+", text)}  # where a later sentence begins
    positions = [m.start() for m in _WORD.finditer(text)]
    out = []
    for i, w in enumerate(words):
        if w.lower() in _QUESTION_WORDS or w == "I" or w.lower() in _HONORIFICS:
            continue
        if positions[i] in starts and not (w.isupper() or any(c.isdigit() for c in w)):
            continue  # "... a night. Is that within ...": a sentence's first word, not a name
        if any(c.isdigit() for c in w) or (w[0].isupper() and (i > 0 or len(w) > 1 and w.isupper())):
            out.append(w)
    return list(dict.fromkeys(out))


def standalone_query(question: str, history: list[Answer] | None) -> str:
    """The question, or for an elliptical follow-up the question plus what it refers to."""
    if not history:
        return question
    words = [w.lower() for w in _WORD.findall(question)]
    named_here = _named_things(question)
    elliptical = bool(_FOLLOW_UP_START.match(question)) or (
        not named_here and (bool(set(words) & _PRONOUNS) or len(words) <= 4)  # "In which year?"
    )
    if not elliptical:
        return question
    previous = history[-1].query or history[-1].question
    named = [w for w in _named_things(previous) if w.lower() not in words]
    own = [w for w in words if w not in _QUESTION_WORDS and w not in _PRONOUNS and w not in _FILLER and len(w) > 2]
    if not own:  # "In which year?": nothing of its own but the kind of answer; carry the whole subject
        named = list(dict.fromkeys(named + [w for w in _WORD.findall(previous)
                                            if w.lower() not in _QUESTION_WORDS and w.lower() not in _FILLER
                                            and len(w) > 3 and w.lower() not in words]))
    if not named:  # nothing named before: carry the previous question's content words
        named = [w for w in _WORD.findall(previous) if w.lower() not in _QUESTION_WORDS and len(w) > 3]
    return f"{question.strip()} ({' '.join(named)})" if named else question


@dataclass(frozen=True)
class ConversationInfo:
    id: str
    title: str
    created: float
    updated: float
    turns: int
    collection: str = "default"  # a conversation belongs to one collection


@dataclass(frozen=True)
class Turn:
    question: str
    query: str | None
    answer: str
    sources: list[dict]
    created: float
    how: str = QUOTED  # Answer.how; rows stored before it was kept read as "quoted"


class Conversations:
    """Conversations in ``conversations.sqlite`` beside the library (owner-only, like all data)."""

    def __init__(self, data_dir: Path):
        private_dir(data_dir)
        self.db = sqlite3.connect(data_dir / "conversations.sqlite", isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA secure_delete=ON")  # a deleted conversation is overwritten, not left in a free page
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, title TEXT NOT NULL,
                created REAL NOT NULL, updated REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS turns (conversation TEXT NOT NULL, idx INTEGER NOT NULL,
                question TEXT NOT NULL, query TEXT, answer TEXT NOT NULL, sources TEXT NOT NULL,
                created REAL NOT NULL, PRIMARY KEY (conversation, idx));
            """
        )
        # added later: older files get the columns, with the values their rows had in effect
        for table, column, default in (("conversations", "collection", "default"), ("turns", "how", QUOTED)):
            if column not in {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT NOT NULL DEFAULT '{default}'")

    def create(self, title: str = "New chat", collection: str = "default") -> str:
        cid = uuid.uuid4().hex[:12]
        now = time.time()
        self.db.execute("INSERT INTO conversations (id, title, created, updated, collection) VALUES (?, ?, ?, ?, ?)",
                        (cid, title, now, now, collection))
        return cid

    def add_turn(self, conversation: str, answer: Answer) -> None:
        now = time.time()
        sources = json.dumps([s.as_dict(explain=True) for s in answer.sources])  # the scores too: `s` in the TUI
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if not self.db.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation,)).fetchone():
                raise KeyError(f"no conversation {conversation!r} (deleted?)")
            (n,) = self.db.execute("SELECT COUNT(*) FROM turns WHERE conversation = ?", (conversation,)).fetchone()
            self.db.execute(
                "INSERT INTO turns (conversation, idx, question, query, answer, sources, created, how)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (conversation, n, answer.question, answer.query, answer.text, sources, now, answer.how),
            )
            title = answer.question[:60] if n == 0 else None
            self.db.execute(
                "UPDATE conversations SET updated = ?, title = COALESCE(?, title) WHERE id = ?", (now, title, conversation)
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def list(self) -> list[ConversationInfo]:
        rows = self.db.execute(
            "SELECT c.id, c.title, c.created, c.updated, COUNT(t.idx), c.collection FROM conversations c"
            " LEFT JOIN turns t ON t.conversation = c.id GROUP BY c.id ORDER BY c.updated DESC"
        )
        return [ConversationInfo(*r) for r in rows]

    def turns(self, conversation: str) -> list[Turn]:
        rows = self.db.execute(
            "SELECT question, query, answer, sources, created, how FROM turns WHERE conversation = ? ORDER BY idx",
            (conversation,),
        )
        return [Turn(q, qu, a, json.loads(s), c, h) for q, qu, a, s, c, h in rows]

    def history(self, conversation: str) -> list[Answer]:
        """The turns as minimal Answers, for ``Library.ask_stream(history=...)``."""
        return [Answer(t.question, t.answer, [], {}, "", "", query=t.query) for t in self.turns(conversation)]

    def delete(self, conversation: str) -> None:
        self.db.execute("DELETE FROM turns WHERE conversation = ?", (conversation,))
        self.db.execute("DELETE FROM conversations WHERE id = ?", (conversation,))

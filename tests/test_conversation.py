"""Follow-up questions made standalone, and conversations kept across restarts."""

from __future__ import annotations

import pytest

from assistant.conversation import Conversations, standalone_query
from assistant.types import Answer, Retrieved


def _a(question, query=None):
    return Answer(question, "x", [], {}, "", "", query=query)


@pytest.mark.parametrize(
    "previous, question, expected",
    [
        ("What is the charge time of the K3?", "And how much does it cost?", "And how much does it cost? (K3)"),
        ("When was the PA-29 adapter recalled?", "What about its replacement?", "What about its replacement? (PA-29)"),
        ("Who founded Larkspur Robotics?", "In which year?", "In which year? (Larkspur Robotics founded)"),  # nothing of its own: the whole subject  # short, nothing named
        ("Who founded Larkspur Robotics?", "Where is the company based?", "Where is the company based?"),
        ("Who founded Larkspur Robotics?", "And when did they do it?", "And when did they do it? (Larkspur Robotics founded)"),
        ("What is the charge time of the K3?", "What is the price of the K2?", "What is the price of the K2?"),
        ("how long does charging take?", "and how much does it cost?", "and how much does it cost? (long charging take)"),
    ],
)
def test_standalone_query(previous, question, expected):
    assert standalone_query(question, [_a(previous)]) == expected
    assert standalone_query(question, None) == question


def test_follow_up_uses_the_previous_standalone_query():
    history = [_a("What is the K3?"), _a("And how much does it cost?", query="And how much does it cost? (K3)")]
    assert standalone_query("And is it waterproof?", history) == "And is it waterproof? (K3)"


def test_ask_with_history_retrieves_with_the_standalone_query(fake_library, docs):
    lib = fake_library()
    lib.ingest([docs])
    first = lib.ask("How long does the Zorblax K3 take to charge?")
    items = list(lib.ask_stream("And how much does it cost?", history=[first]))
    retrieved = items[0]
    assert isinstance(retrieved, Retrieved) and retrieved.query == "And how much does it cost? (Zorblax K3)"
    answer = items[-1]
    assert answer.query == retrieved.query
    assert any("1,249" in s.hit.text for s in answer.sources)


def test_conversations_persist_across_restarts(tmp_path, fake_library, docs):
    lib = fake_library()
    lib.ingest([docs])
    conv = lib.conversations.create()
    a1 = lib.ask("How long does the Zorblax K3 take to charge?")
    lib.conversations.add_turn(conv, a1)
    a2 = lib.ask("And how much does it cost?", history=lib.conversations.history(conv))
    lib.conversations.add_turn(conv, a2)
    reopened = Conversations(lib.config.data_dir)  # a new process would do the same
    [info] = reopened.list()
    assert info.id == conv and info.turns == 2 and info.title.startswith("How long does the Zorblax")
    turns = reopened.turns(conv)
    assert [t.question for t in turns] == [a1.question, a2.question]
    assert turns[1].query == "And how much does it cost? (Zorblax K3)" and turns[1].sources
    reopened.delete(conv)
    assert Conversations(lib.config.data_dir).list() == []


def test_old_conversation_files_get_the_collection_and_how_columns(tmp_path):
    import sqlite3

    from assistant.types import QUOTED, VERIFIED

    db = sqlite3.connect(tmp_path / "conversations.sqlite")  # the layout before either column
    db.executescript(
        """
        CREATE TABLE conversations (id TEXT PRIMARY KEY, title TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL);
        CREATE TABLE turns (conversation TEXT NOT NULL, idx INTEGER NOT NULL, question TEXT NOT NULL, query TEXT,
            answer TEXT NOT NULL, sources TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (conversation, idx));
        INSERT INTO conversations VALUES ('old', 'Old chat', 1, 1);
        INSERT INTO turns VALUES ('old', 0, 'q?', NULL, 'a [1]', '[]', 1);
        """
    )
    db.commit()
    db.close()
    conv = Conversations(tmp_path)
    assert [(c.id, c.collection) for c in conv.list()] == [("old", "default")]
    assert conv.turns("old")[0].how == QUOTED  # what old answers were in effect
    cid = conv.create(collection="work")
    conv.add_turn(cid, Answer("new?", "b", [], {}, "", "", how=VERIFIED))
    assert {c.id: c.collection for c in conv.list()}[cid] == "work"
    assert conv.turns(cid)[0].how == VERIFIED
    Conversations(tmp_path)  # opening it again migrates nothing twice

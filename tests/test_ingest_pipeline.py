"""The ingest pipeline: files read ahead in a thread, batches sorted by length, the chunker's shortcut."""

from __future__ import annotations

import threading
import time

import pytest

from assistant.chunking import Chunker
from assistant.ingest import Ingestor
from assistant.testing import FakeEmbedder


def _ids(lib):
    return sorted(r[0] for r in lib.store.db.execute("SELECT id FROM chunks"))


def _chroma_ids(lib):
    return sorted(lib.store.collection.get(include=[])["ids"])


def _many(docs, n=40):
    for i in range(n):
        body = "\n".join(f"File {i} line {j}: the gauge of part {i}-{j} reads {i * j} units." for j in range(30))
        (docs / f"f{i:02}.txt").write_text(body)


def _small_groups(write_config):
    write_config("[ingest]\nbatch_size = 2\n")  # groups of 64 chunks: several groups, several batches each


def test_failing_file_mid_group_is_reported_and_the_rest_ingested(fake_library, docs, write_config):
    _small_groups(write_config)
    _many(docs)
    (docs / "f17-corrupt.pdf").write_bytes(b"%PDF-1.4 not a pdf at all")
    events = []
    lib = fake_library()
    r = lib.ingest([docs], on_event=events.append)
    assert [f["path"] for f in r.files_failed] == [str(docs / "f17-corrupt.pdf")]
    assert r.files_failed[0]["reason"]
    assert r.files_ingested == 43  # 40 + the 3 files of the fixture
    assert [e.path for e in events if e.kind == "failed"] == [str(docs / "f17-corrupt.pdf")]
    assert events[0].kind == "scan" and events[-1].kind == "done"
    assert events[-1].files_done == events[-1].files_total == 44
    progress = [e for e in events if e.kind in ("file", "embedded", "failed", "done")]
    assert all(a.files_done <= b.files_done and a.chunks <= b.chunks for a, b in zip(progress, progress[1:]))
    assert any(e.kind == "embedded" for e in events), "embedding progress is reported between batches"
    assert events[-1].chunks == r.chunks_embedded == lib.embedder.calls
    assert _ids(lib) == _chroma_ids(lib) and len(_ids(lib)) == r.chunks_total


def test_read_ahead_and_inline_build_the_same_index(fake_library, docs, write_config, tmp_path, monkeypatch):
    _small_groups(write_config)
    _many(docs)
    results = []
    for read_ahead in (True, False):
        monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / f"data-{read_ahead}"))
        monkeypatch.setattr(Ingestor, "read_ahead", read_ahead)
        lib = fake_library()
        lib.ingest([docs])
        rows = sorted(lib.store.db.execute("SELECT id, path, ord, embed_text, start_line, end_line FROM chunks"))
        got = lib.store.collection.get(include=["embeddings"])
        vectors = {i: [round(float(x), 5) for x in v] for i, v in zip(got["ids"], got["embeddings"])}
        results.append((rows, vectors))
    assert results[0] == results[1]


def test_an_unexpected_error_reaches_the_caller_after_the_files_before_it(
    fake_library, docs, write_config, monkeypatch
):
    _small_groups(write_config)
    _many(docs)
    real = Ingestor._prepare

    def prepare(self, path, *args, **kw):  # an error of the pipeline itself, not of one file
        if path.name == "f35.txt":
            raise RuntimeError("pipeline bug")
        return real(self, path, *args, **kw)

    monkeypatch.setattr(Ingestor, "_prepare", prepare)
    with pytest.raises(RuntimeError, match="pipeline bug"):
        fake_library().ingest([docs])
    monkeypatch.setattr(Ingestor, "_prepare", real)
    lib = fake_library()
    written = {p for (p,) in lib.store.db.execute("SELECT path FROM files")}
    assert written and all(p < str(docs / "f35.txt") for p in written), "only whole groups before the error"
    lib.ingest([docs])
    assert _ids(lib) == _chroma_ids(lib)


def test_an_error_while_chunking_one_file_is_that_files_failure(fake_library, docs, write_config, monkeypatch):
    _small_groups(write_config)
    _many(docs)
    real = Chunker.sized_chunks

    def sized_chunks(self, path, content_hash, doc):
        if path.endswith("f35.txt"):
            raise RuntimeError("chunker bug")
        return real(self, path, content_hash, doc)

    monkeypatch.setattr(Chunker, "sized_chunks", sized_chunks)
    lib = fake_library()
    report = lib.ingest([docs])
    assert report.files_failed == [{"path": str(docs / "f35.txt"), "reason": "cannot split into passages: chunker bug"}]
    assert report.files_ingested == report.files_seen - 1
    assert _ids(lib) == _chroma_ids(lib)


def test_cancel_from_the_event_callback_stops_the_read_ahead(fake_library, docs, write_config):
    _small_groups(write_config)
    _many(docs)

    class Cancel(Exception):
        pass

    def on_event(ev):
        if ev.kind == "embedded":
            raise Cancel

    with pytest.raises(Cancel):
        fake_library().ingest([docs], on_event=on_event)
    deadline = time.time() + 10
    while any(t.name == "ingest-read-ahead" for t in threading.enumerate()) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "ingest-read-ahead" for t in threading.enumerate())
    lib = fake_library()
    r = lib.ingest([docs])
    assert r.files_failed == [] and r.chunks_total == len(_ids(lib)) == len(_chroma_ids(lib))


def test_nested_roots_ingest_each_file_once(fake_library, docs):
    lib = fake_library()
    r = lib.ingest([docs, docs / "sub"])
    assert r.files_seen == 3 and r.files_ingested == 3 and r.files_failed == []
    assert _ids(lib) == _chroma_ids(lib)


@pytest.mark.parametrize(
    "text",
    [
        "One short line.",
        "  padded on both sides \n\n",
        "\n\nstarts after blank lines\nand has two",
        "word " * 63 + "end",  # just fits
        "word " * 64 + "end",  # just does not: the splitter
        "A sentence here. " * 40,
        "\n".join(f"line {i} with a few words" for i in range(60)),
    ],
)
@pytest.mark.parametrize("size", [64, 128])
def test_chunker_shortcut_matches_the_splitter(text, size):
    from llama_index.core.schema import Document as LIDocument

    fake = FakeEmbedder()
    chunker = Chunker(fake.count_tokens, lambda s: fake.tokenizer.encode(s), size, 16)
    nodes = chunker._splitter(size).get_nodes_from_documents([LIDocument(text=text)])
    got = chunker._split(text, size)
    assert [g[:3] for g in got] == [(n.text, n.start_char_idx, n.end_char_idx) for n in nodes]
    assert [g[3] for g in got] == [fake.count_tokens(n.text) for n in nodes]


def test_chunk_token_counts_are_those_of_the_embedded_text(docs):
    from assistant.types import Document, Section

    fake = FakeEmbedder()
    chunker = Chunker(fake.count_tokens, lambda s: fake.tokenizer.encode(s), 64, 16)
    doc = Document(
        sections=[Section(text="Short one."), Section(text="word " * 150, heading="Long part"), Section(text="  \n")],
        title="A title",
    )
    sized = chunker.sized_chunks("p", "h", doc)
    assert len(sized) > 2 and [c for c, _ in sized] == chunker.chunks("p", "h", doc)
    assert all(n == fake.count_tokens(c.embed_text) for c, n in sized)

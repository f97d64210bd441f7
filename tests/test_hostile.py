"""Hostile files and input (issue 18, items 7-11 and 13-15): each is generated here, small and fast,
and must fail alone with a clear reason while the rest of the folder is ingested."""

from __future__ import annotations

import json
import os
import shutil
import time
import zipfile
from pathlib import Path

import pytest

import formats
from assistant.chunking import MAX_CHARS_PER_TOKEN
from assistant.types import Document, ReaderError, Section
from conftest import run_cli

ZIP_SUFFIXES = (".docx", ".epub", ".xlsx", ".xlsm", ".pptx", ".odt", ".ods", ".odp")


def _ratio_bomb(path: Path) -> Path:
    """40 MB of zeros in one entry: about 40 kB on disk, far past any real document's ratio."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mimetype", "application/epub+zip")
        with z.open("content.xml", "w") as f:
            block = b"\0" * (1 << 20)
            for _ in range(40):
                f.write(block)
    return path


def _sized_bomb(path: Path, entries: int, size: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(entries):
            z.writestr(f"x/{i}.xml", b"\0" * size)
    return path


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bombs")
    return {
        "ratio": _ratio_bomb(d / "ratio.zip"),
        "total": _sized_bomb(d / "total.zip", 12, 1 << 20),  # 12 MB: over a 10 MB cap, no entry over 1 MB
        "entries": _sized_bomb(d / "entries.zip", 10_001, 0),
    }


def _reader(suffix: str, **settings):
    from assistant_readers import BUILTIN, reader_for_suffix

    if not settings:
        return reader_for_suffix(suffix)
    from importlib import import_module

    for target in BUILTIN.values():
        module, cls_name = target.split(":")
        cls = getattr(import_module(f"assistant_readers.{module}"), cls_name)
        if suffix in cls.suffixes:
            return cls(**settings)
    raise LookupError(suffix)


# --- 7: zip bombs, for every ZIP-based format ----------------------------------------------------


@pytest.mark.parametrize("suffix", ZIP_SUFFIXES)
def test_every_zip_based_format_is_capped_before_parsing(tmp_path, bombs, suffix):
    for kind, match, settings in (("ratio", r"expands \d+x", {}), ("total", r"MB uncompressed \(limit 10 MB\)", {"max_unzipped_mb": 10}),
                                  ("entries", r"10001 entries", {})):
        path = shutil.copy(bombs[kind], tmp_path / f"{kind}{suffix}")
        started = time.perf_counter()
        with pytest.raises(ReaderError, match=match):
            _reader(suffix, **settings).read(Path(path))
        assert time.perf_counter() - started < 2.0, (kind, suffix)


def test_every_reader_refuses_a_zip_bomb_quickly(tmp_path, bombs):
    """Any other format: a bomb renamed to it is refused (as binary, not valid, or a bomb), never unpacked."""
    from assistant_readers import BUILTIN
    from importlib import import_module

    for target in BUILTIN.values():
        module, cls_name = target.split(":")
        cls = getattr(import_module(f"assistant_readers.{module}"), cls_name)
        for suffix in cls.suffixes:
            path = shutil.copy(bombs["ratio"], tmp_path / f"bomb{suffix}")
            started = time.perf_counter()
            with pytest.raises(Exception):
                doc = cls().read(Path(path))
                assert not any(s.text.strip() for s in doc.sections)  # nothing read is as good as refused
                raise ReaderError("empty")
            assert time.perf_counter() - started < 5.0, suffix


def test_docx_and_epub_bombs_fail_alone_in_an_ingest(fake_library, tmp_path, bombs):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(bombs["ratio"], folder / "bomb.docx")
    shutil.copy(bombs["ratio"], folder / "bomb.epub")
    formats.build_docx(folder)
    report = fake_library().ingest([folder])
    assert report.files_ingested == 1
    failed = {Path(f["path"]).name: f["reason"] for f in report.files_failed}
    assert set(failed) == {"bomb.docx", "bomb.epub"} and all("zip bomb" in r for r in failed.values())


# --- 8: deep HTML, and the per-file time limit ----------------------------------------------------


def test_html_nested_deep_is_read_in_linear_time(tmp_path):
    from assistant_readers.html_reader import HtmlReader

    n = 100_000  # 1.1 MB; through the BeautifulSoup tree it took minutes (20k: 37 s)
    path = tmp_path / "deep.html"
    path.write_text("<html><head><title>Deep</title></head><body>" + "<div>" * n + "Vexmoor lighthouse"
                    + "</div>" * n + "<p>after &amp; more</p></body></html>", encoding="utf-8")
    started = time.perf_counter()
    doc = HtmlReader().read(path)
    assert time.perf_counter() - started < 10.0
    assert doc.title == "Deep" and [s.text for s in doc.sections] == ["Vexmoor lighthouse\nafter & more"]


class SlowReader:
    """A reader that hangs on files named "hang*" (sleeps), as a parser stuck in C would."""

    suffixes = (".slow",)

    def read(self, path: Path) -> Document:
        if path.name.startswith("hang"):
            time.sleep(600)
        return Document([Section(path.read_text(encoding="utf-8"))], metadata={"file_type": "slow"})


class CrashingReader(SlowReader):
    def read(self, path: Path) -> Document:
        if path.name.startswith("hang"):
            os._exit(9)  # a segfault in a parser, the OOM killer
        return super().read(path)


@pytest.mark.parametrize("reader_cls, reason", [(SlowReader, "stopped after 1 s (ingest.file_timeout_s): the file takes too long to read"),
                                                (CrashingReader, "the reader crashed on this file (exit code 9)")])
def test_a_hanging_or_crashing_reader_is_stopped_and_the_ingest_goes_on(
    fake_library, write_config, tmp_path, monkeypatch, reader_cls, reason
):
    from assistant.plugins import PluginRegistry

    real = PluginRegistry.readers_by_suffix
    monkeypatch.setattr(PluginRegistry, "readers_by_suffix",
                        lambda self, defaults=None: {**real(self, defaults), ".slow": ("slow", reader_cls())})
    write_config("[ingest]\nfile_timeout_s = 1\n")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.slow").write_text("Alpha harbour opens at nine.", encoding="utf-8")
    (folder / "hang.slow").write_text("never read", encoding="utf-8")
    (folder / "z.slow").write_text("Zeta harbour closes at five.", encoding="utf-8")
    started = time.perf_counter()
    report = fake_library().ingest([folder])
    assert time.perf_counter() - started < 60
    assert report.files_failed == [{"path": str(folder / "hang.slow"), "reason": reason}]
    assert report.files_ingested == 2  # the file after it too: a fresh reader process


# --- 9: file names that are not UTF-8 ------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_skipped_with_its_reason(fake_library, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.txt").write_text("The pier is 300 metres long.", encoding="utf-8")
    try:
        (Path(os.fsdecode(bytes(folder))) / os.fsdecode(b"caf\xe9.txt")).write_text("Latin-1 name.", encoding="utf-8")
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    report = fake_library().ingest([folder])
    assert report.files_ingested == 1 and not report.files_failed
    assert report.files_skipped == [{"path": str(folder / "caf\\xe9.txt"),
                                     "reason": "the file name is not valid UTF-8; rename the file to index it"}]
    json.dumps(report.as_dict(), ensure_ascii=False).encode("utf-8")  # printable as JSON


# --- 10: a hard maximum chunk length --------------------------------------------------------------


def test_long_unbroken_text_is_cut_into_bounded_chunks(fake_library, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "line.txt").write_text("x" * 3_000_000, encoding="utf-8")  # one 3 MB "word"
    (folder / "field.csv").write_text("id,blob\n1," + "y" * 300_000 + "\n", encoding="utf-8")
    lib = fake_library()
    report = lib.ingest([folder])
    assert report.files_ingested == 2
    longest = lib.store.db.execute("SELECT MAX(LENGTH(text)) FROM chunks").fetchone()[0]
    assert longest <= MAX_CHARS_PER_TOKEN * lib.config.ingest.chunk_size
    total = lib.store.db.execute("SELECT SUM(LENGTH(text)) FROM chunks WHERE path LIKE '%line.txt'").fetchone()[0]
    assert total == 3_000_000  # every character is in some chunk


def test_chunker_cuts_at_spaces_where_it_can():
    from assistant.chunking import Chunker
    from assistant.testing import FakeEmbedder

    e = FakeEmbedder()
    chunker = Chunker(e.count_tokens, e.tokenizer.encode, 64, 8)
    text = " ".join(["word" * 100] * 200)  # words of 400 chars: long, but with spaces between
    rows = chunker.chunks("p", "h", Document([Section(text)]))
    assert all(len(r.text) <= MAX_CHARS_PER_TOKEN * 64 for r in rows)
    assert all(not r.text.startswith("ord") for r in rows)  # never cut inside a word when a space is near


# --- 11: bad values, named errors, nothing left behind -------------------------------------------


@pytest.mark.parametrize("body, key", [
    ("[generation]\nn_ctx = 100000000000\n", "generation.n_ctx"),
    ("[retrieval]\ndense_weight = nan\n", "retrieval.dense_weight"),
    ("[retrieval]\nkeyword_weight = inf\n", "retrieval.keyword_weight"),
    ("[retrieval]\ndense_weight = -1.0\n", "retrieval.dense_weight"),
    ("[library]\ncollection = \"../x\"\n", "library.collection"),
    ("[library]\ncollection = \"\"\n", "library.collection"),
])
def test_bad_config_values_are_named_errors_and_leave_no_files(write_config, tmp_path, body, key):
    write_config(body)
    data = tmp_path / "data"
    result = run_cli("status", env={"ASSISTANT_DATA_DIR": str(data)}, timeout=120)
    assert result.returncode == 1, result.stderr
    assert key in result.stderr and "Traceback" not in result.stderr
    assert not data.exists() and not (tmp_path / "x").exists()


def test_n_ctx_beyond_the_models_trained_context_is_refused_before_loading():
    from assistant_llamacpp import LlamaCppGenerator, builtin_model_path, trained_context

    trained = trained_context(builtin_model_path())
    assert trained and trained >= 2048
    with pytest.raises(ValueError, match=rf"generation.n_ctx = {trained * 2}: more than the {trained} tokens"):
        LlamaCppGenerator(n_ctx=trained * 2)


@pytest.mark.parametrize("args, message", [
    (["search", ""], "the query is empty"),
    (["search", "   "], "the query is empty"),
    (["search", "caf\udce9"], "the query is not valid UTF-8"),
    (["ask", "caf\udce9?"], "the question is not valid UTF-8"),
])
def test_bad_questions_are_named_errors(fake_library, docs, args, message):
    from assistant.library import LibraryError

    lib = fake_library()
    lib.ingest([docs])
    call = lib.search if args[0] == "search" else lib.ask
    with pytest.raises(LibraryError, match=message):
        call(args[1])
    with pytest.raises(LibraryError, match="top_k must be 1 or more, not 0"):
        lib.search("Zorblax", top_k=0)


def test_cli_refuses_top_k_below_one():
    result = run_cli("search", "--top-k", "-1", "Zorblax", timeout=120)
    assert result.returncode == 2 and "must be 1 or more, got -1" in result.stderr


# --- 13: nothing skipped silently -----------------------------------------------------------------


def test_special_files_and_links_are_listed_as_skipped(fake_library, tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside the folder", encoding="utf-8")
    (folder / "ok.txt").write_text("The ferry leaves at 7:15.", encoding="utf-8")
    os.mkfifo(folder / "pipe.txt")
    (folder / "escape.txt").symlink_to(outside / "secret.txt")
    (folder / "escape-dir").symlink_to(outside)
    (folder / "sub" / "loop").symlink_to(folder)
    (folder / "broken.txt").symlink_to(folder / "missing.txt")
    started = time.perf_counter()
    report = fake_library().ingest([folder])
    assert time.perf_counter() - started < 60  # the FIFO was never opened
    assert report.files_ingested == 1
    skipped = {Path(f["path"]).name: f["reason"] for f in report.files_skipped}
    assert skipped["pipe.txt"] == "not a regular file (a FIFO)"
    assert skipped["escape.txt"].startswith("a link that leaves the folder")
    assert skipped["escape-dir"].startswith("a link that leaves the folder")
    assert skipped["loop"].startswith("a link loop")
    assert skipped["broken.txt"].startswith("a broken link")


@pytest.mark.integration
def test_ingest_json_lists_what_was_skipped(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "ok.txt").write_text("The ferry leaves at 7:15.", encoding="utf-8")
    os.mkfifo(folder / "pipe.txt")
    result = run_cli("ingest", "--json", str(folder), timeout=600)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["files_skipped"] == [{"path": str(folder / "pipe.txt"), "reason": "not a regular file (a FIFO)"}]


def test_a_mail_attachment_dropped_for_size_is_listed_as_skipped(fake_library, write_config, tmp_path):
    from email.message import EmailMessage

    folder = tmp_path / "in"
    folder.mkdir()
    msg = EmailMessage()
    msg["Subject"] = "Harbour plan"
    msg.set_content("The plan is attached.")
    msg.add_attachment(b"x," * 5000, maintype="text", subtype="csv", filename="plan.csv")
    (folder / "mail.eml").write_bytes(msg.as_bytes())
    write_config("[plugins.email]\nmax_attachment_bytes = 1000\n")
    report = fake_library().ingest([folder])
    assert report.files_ingested == 1
    assert report.files_skipped == [{"path": str(folder / "mail.eml"),
                                     "reason": "attachment 'plan.csv' not read: larger than the e-mail reader's "
                                               "max_attachment_bytes (0.0 MB > 0.001 MB)"}]


def test_a_damaged_docx_says_which_part_failed(tmp_path, monkeypatch):
    from assistant_readers.docx_reader import DocxReader

    path, *_ = formats.build_docx(tmp_path)
    damaged = tmp_path / "damaged.docx"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(damaged, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, b"<w:styles" if info.filename == "word/styles.xml" else zin.read(info))
    with pytest.raises(ReaderError, match=r"not a valid DOCX: word/styles.xml cannot be parsed: Namespace prefix w"):
        DocxReader().read(damaged)

    import docx

    def unknown(*args, **kw):  # lxml's message when libxml2 gives none
        raise ValueError("unknown error")

    monkeypatch.setattr(docx, "Document", unknown)
    with pytest.raises(ReaderError, match=r"not a valid DOCX: python-docx failed \(ValueError\) without a reason"):
        DocxReader().read(path)


# --- 14: an error in one file is that file's failure ----------------------------------------------


def test_an_embedding_error_fails_only_its_file(fake_library, tmp_path):
    from assistant.testing import FakeEmbedder

    class Picky(FakeEmbedder):
        def embed(self, texts, batch_size=32):
            if any("poison" in t for t in texts):
                raise RuntimeError("CUDA error: device-side assert")
            return super().embed(texts, batch_size)

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        (folder / f"f{i}.txt").write_text(f"Note {i}: the tide is at {i} o'clock." + (" poison" if i == 2 else ""),
                                          encoding="utf-8")
    lib = fake_library(embedder=Picky())
    report = lib.ingest([folder])
    assert report.files_failed == [{"path": str(folder / "f2.txt"), "reason": "cannot embed: CUDA error: device-side assert"}]
    assert report.files_ingested == 4 and lib.store.counts()["files"] == 4


# --- 15: a failure is remembered with the file's hash -------------------------------------------


def test_a_failed_file_is_not_read_again_until_it_changes(fake_library, tmp_path, monkeypatch):
    from assistant_readers.text_reader import TextReader

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bad.txt").write_bytes(b"\0\1\2 binary")
    (folder / "good.txt").write_text("The lighthouse is white.", encoding="utf-8")
    lib = fake_library()
    first = lib.ingest([folder])
    assert [f["path"] for f in first.files_failed] == [str(folder / "bad.txt")]

    reads: list[str] = []
    real = TextReader.read
    monkeypatch.setattr(TextReader, "read", lambda self, path: reads.append(path.name) or real(self, path))
    monkeypatch.setattr(lib.config.ingest, "file_timeout_s", 0.0)  # in-process, so the reads are counted here
    again = lib.ingest([folder])
    assert again.files_failed == [{"path": str(folder / "bad.txt"), "reason": first.files_failed[0]["reason"], "known": True}]
    assert reads == []
    os.utime(folder / "bad.txt", ns=(1, 1))  # touched, same content: still not read
    assert lib.ingest([folder]).files_failed[0].get("known") and reads == []
    lib.ingest([folder], retry_failed=True)
    assert reads == ["bad.txt"]
    (folder / "bad.txt").write_text("Now it is text: the harbour opens at six.", encoding="utf-8")
    fixed = lib.ingest([folder])
    assert not fixed.files_failed and fixed.files_ingested == 1 and lib.store.failures() == []


def test_the_failure_of_a_deleted_file_is_forgotten(fake_library, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bad.txt").write_bytes(b"\0\1\2 binary")
    (folder / "good.txt").write_text("The lighthouse is white.", encoding="utf-8")
    lib = fake_library()
    lib.ingest([folder])
    (folder / "bad.txt").unlink()
    lib.ingest([folder])
    assert lib.store.failures() == []


def test_a_schema_2_library_gains_the_failure_columns(tmp_path):
    import sqlite3

    from assistant.config import load_config
    from assistant.store import SCHEMA_VERSION, FailureRow, Store

    store = Store(load_config())
    path = store.db_path
    store.close()
    db = sqlite3.connect(path)
    db.executescript("DROP TABLE failures; CREATE TABLE failures (path TEXT PRIMARY KEY, reason TEXT NOT NULL, at REAL NOT NULL);"
                     "INSERT INTO failures VALUES ('/old.pdf', 'not a valid PDF', 0);"
                     "UPDATE meta SET value = '2' WHERE key = 'schema_version';")
    db.close()
    store = Store(load_config())
    try:
        assert store.meta("schema_version") == str(SCHEMA_VERSION)
        assert store.failure_rows() == {"/old.pdf": FailureRow("/old.pdf", "not a valid PDF")}
        store.record_failure(FailureRow("/new.pdf", "encrypted", "abc", 10, 20))
        assert store.failure_rows()["/new.pdf"] == FailureRow("/new.pdf", "encrypted", "abc", 10, 20)
    finally:
        store.close()

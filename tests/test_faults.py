"""Faults and hostile input (issue 18): no silent data loss, nothing left behind by `remove`,
errors a user can act on. Real folders, a real Chroma, real SQLite files; the fake embedder."""

from __future__ import annotations

import io
import os
import stat
import sys
import warnings
from pathlib import Path

import pytest

from assistant.datadir import DataFolderWarning
from assistant.library import LibraryError

ROOT_USER = os.geteuid() == 0
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202e"


# --- 5. the data folder: created private, an existing one never changed --------------------


def test_an_existing_open_data_folder_is_warned_about_and_left_as_it_is(fake_library, docs, tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(shared))
    with pytest.warns(DataFolderWarning, match=r"open to other users .*0o1777"):
        fake_library().status()
    fake_library().ingest([docs])  # warned once per process, however many parts open the folder
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert stat.S_IMODE((shared / "state.sqlite").stat().st_mode) & 0o077 == 0  # what it writes is still private


def test_a_data_folder_the_assistant_creates_is_private_and_not_warned_about(fake_library, docs, tmp_path, monkeypatch):
    data = tmp_path / "new" / "deeper" / "data"
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataFolderWarning)
        fake_library().ingest([docs])  # the write lock creates the folder first: still 0700, no warning
        fake_library().status()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700


def test_the_cli_prints_the_data_folder_warning_as_one_line(fake_library, docs, tmp_path, monkeypatch, capsys):
    from assistant import cli

    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(shared))
    monkeypatch.setattr(cli, "_library", lambda args=None, **kw: fake_library())
    assert cli.main(["ingest", str(docs)]) == 0  # the lock, the store and the conversations all open it
    err = capsys.readouterr().err
    assert len([x for x in err.splitlines() if x.startswith("assistant: warning: the data folder")]) == 1, err
    assert stat.S_IMODE(shared.stat().st_mode) == 0o777


# --- 6. escape sequences in documents and file names never reach the terminal --------------


@pytest.fixture
def hostile_docs(tmp_path) -> Path:
    d = tmp_path / "hostile"
    d.mkdir()
    (d / f"evil{ESCAPES}.txt").write_text(
        f"The quarterly zamboni report {ESCAPES} says revenue grew by 12 percent.\n", encoding="utf-8"
    )
    return d


def _cli(monkeypatch, capsys, library, *argv: str) -> tuple[int, str, str]:
    from assistant import cli

    monkeypatch.setattr(cli, "_library", lambda args=None, **kw: library)
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _no_controls(text: str) -> None:
    bad = [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F or c == "\u202e"]
    assert not bad, f"control characters printed: {bad!r}"


def test_cli_output_has_no_terminal_control_characters(fake_library, hostile_docs, monkeypatch, capsys):
    lib = fake_library()
    code, out, err = _cli(monkeypatch, capsys, lib, "ingest", str(hostile_docs))
    assert code == 0 and "1 ingested" in out
    for argv in (["search", "zamboni report"], ["ask", "How much did revenue grow in the zamboni report?"], ["status"]):
        code, out, err = _cli(monkeypatch, capsys, lib, *argv)
        assert code == 0, err
        _no_controls(out + err)
        if argv[0] != "status":
            assert "evil" in out and "\ufffd" in out  # shown, inert
    (hostile_docs / f"evil{ESCAPES}.txt").write_bytes(b"\x00\x01\x02\x03" * 64)  # a failure names the file
    for argv in (["ingest", str(hostile_docs)], ["status"]):
        code, out, err = _cli(monkeypatch, capsys, lib, *argv)
        _no_controls(out + err)
        assert "evil\ufffd" in out + err


def test_json_output_keeps_the_text_exactly_and_escaped(fake_library, hostile_docs, monkeypatch, capsys):
    import json

    lib = fake_library()
    lib.ingest([hostile_docs])
    code, out, err = _cli(monkeypatch, capsys, lib, "search", "--json", "zamboni report")
    _no_controls(out)
    hits = json.loads(out)
    assert hits[0]["path"].endswith(f"evil{ESCAPES}.txt") and ESCAPES in hits[0]["text"]


def test_progress_line_keeps_its_carriage_return():
    import io

    from assistant.terminal import SafeStream

    buf = io.StringIO()
    stream = SafeStream(buf)
    stream.write("\r[####] 1/2 files evil\rname\x1b[2J")
    assert buf.getvalue() == "\r[####] 1/2 files evil\ufffdname\ufffd[2J"


# --- 1. a folder that cannot be read, or is suddenly empty, is not a deletion ----------------


@pytest.mark.skipif(ROOT_USER, reason="root lists folders without read permission")
@pytest.mark.parametrize("mode", [0o000, 0o300])  # neither listed nor entered; entered but not listed
def test_an_unreadable_subfolder_is_a_failure_and_its_files_are_kept(fake_library, docs, mode):
    lib = fake_library()
    lib.ingest([docs])
    garden = str(docs / "sub" / "garden.md")
    os.chmod(docs / "sub", mode)
    try:
        r = fake_library().ingest([docs])
    finally:
        os.chmod(docs / "sub", 0o700)
    assert r.files_removed == 0 and r.chunks_removed == 0
    assert [f["path"] for f in r.files_failed] == [str(docs / "sub")]
    assert "cannot read this folder (Permission denied)" in r.files_failed[0]["reason"]
    assert "1 indexed file is kept" in r.files_failed[0]["reason"]
    assert garden in fake_library().store.files_under(str(docs))
    assert any("Tulips" in h.text for h in fake_library().search("tulips planted October", mode="keyword"))


@pytest.mark.skipif(ROOT_USER, reason="root lists folders without read permission")
def test_an_unreadable_root_keeps_everything_and_the_cli_exits_3(fake_library, docs, monkeypatch, capsys):
    lib = fake_library()
    lib.ingest([docs])
    os.chmod(docs, 0)
    try:
        code, out, err = _cli(monkeypatch, capsys, lib, "ingest", str(docs))
    finally:
        os.chmod(docs, 0o700)
    assert code == 3 and "0 removed" in out
    assert f"FAILED  {docs}: cannot read this folder" in err and "3 indexed files are kept" in err
    assert lib.status().files == 3


def test_a_suddenly_empty_root_asks_for_prune(fake_library, docs, tmp_path, monkeypatch, capsys):
    lib = fake_library()
    lib.ingest([docs])
    aside = tmp_path / "unmounted"
    docs.rename(aside)
    docs.mkdir()  # the mount point is there, the drive is not
    code, out, err = _cli(monkeypatch, capsys, lib, "ingest", str(docs))
    assert code == 3 and "0 removed" in out
    assert f"NOT REMOVED under {docs}: would remove 3 of its 3 indexed files" in err
    assert "ingest.max_prune_share (50%)" in err and f"assistant ingest --prune {docs}" in err
    assert lib.status().files == 3
    code, out, err = _cli(monkeypatch, capsys, lib, "ingest", "--prune", str(docs))
    assert code == 0 and "3 removed" in out
    assert lib.status().files == 0


def test_removing_more_than_the_share_is_held_and_the_share_is_a_config_key(fake_library, docs, write_config):
    fake_library().ingest([docs])
    (docs / "manual.md").unlink()
    (docs / "notes.txt").unlink()
    r = fake_library().ingest([docs])  # 2 of 3: past the default 50%
    assert r.files_removed == 0 and r.removals_held[0]["path"] == str(docs)
    r = fake_library().ingest([docs])  # asked again, same answer: nothing lost in between
    assert r.files_removed == 0 and len(r.removals_held) == 1
    write_config("[ingest]\nmax_prune_share = 0.7\n")
    r = fake_library().ingest([docs])
    assert r.files_removed == 2 and not r.removals_held


def test_a_few_deleted_files_are_removed_as_before(fake_library, docs):
    fake_library().ingest([docs])
    (docs / "notes.txt").unlink()
    r = fake_library().ingest([docs])
    assert r.files_removed == 1 and not r.removals_held and not r.files_failed


def test_max_prune_share_is_checked(write_config):
    from assistant.config import ConfigError, load_config

    for bad in ("1.5", "-0.1", "nan"):
        write_config(f"[ingest]\nmax_prune_share = {bad}\n")
        with pytest.raises(ConfigError, match="ingest.max_prune_share"):
            load_config()


@pytest.mark.parametrize("path", ["", "  "])
def test_remove_refuses_an_empty_path(fake_library, docs, path, monkeypatch, capsys):
    lib = fake_library()
    lib.ingest([docs])
    monkeypatch.chdir(docs)  # "" would be this folder, everything in the library
    with pytest.raises(LibraryError, match="the path is empty"):
        lib.remove(path)
    code, out, err = _cli(monkeypatch, capsys, lib, "remove", path)
    assert code == 1 and "the path is empty" in err
    assert lib.status().files == 3


# --- 4. a symlink swapped between the scan and the read ---------------------------------------


def test_a_link_swapped_after_the_scan_is_not_followed_out_of_the_folder(fake_library, docs, tmp_path, monkeypatch):
    from assistant_folder import FolderSource

    secret = tmp_path / "outside" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:zyxwvut secret account:/root:/bin/bash\n", encoding="utf-8")
    original = FolderSource.files

    def files(self, root):  # the scan sees a plain file, then the attacker swaps in a link
        found = list(original(self, root))
        target = docs / "notes.txt"
        target.unlink()
        target.symlink_to(secret)
        yield from found

    monkeypatch.setattr(FolderSource, "files", files)
    r = fake_library().ingest([docs])
    failed = {f["path"]: f["reason"] for f in r.files_failed}
    assert failed == {str(docs / "notes.txt"): f"refused: at read time it leads outside the folder, to {secret}"}
    assert r.files_ingested == 2
    assert not fake_library().search("zyxwvut secret account", mode="keyword")


def test_the_reader_reads_the_file_that_was_checked_even_if_swapped_during_the_read(docs, tmp_path):
    from assistant.pinned import Pinner
    from assistant_readers.text_reader import TextReader

    secret = tmp_path / "secret.txt"
    secret.write_text("zyxwvut secret\n", encoding="utf-8")
    with Pinner() as pinner, pinner.open(docs / "notes.txt", docs) as pinned:
        (docs / "notes.txt").unlink()
        (docs / "notes.txt").symlink_to(secret)  # swapped after the check, before the reader opens
        doc = TextReader().read(pinned.path)
        assert pinned.path.name == "notes.txt"
    text = " ".join(s.text for s in doc.sections)
    assert "Anna Quimby" in text and "zyxwvut" not in text


def test_links_inside_the_folder_are_still_read(fake_library, docs):
    (docs / "link-to-garden.md").symlink_to(docs / "sub" / "garden.md")
    r = fake_library().ingest([docs])
    assert r.files_ingested == 4 and not r.files_failed


def test_a_fifo_swapped_in_is_refused_without_hanging(fake_library, docs, monkeypatch):
    from assistant_folder import FolderSource

    original = FolderSource.files

    def files(self, root):
        found = list(original(self, root))
        (docs / "notes.txt").unlink()
        os.mkfifo(docs / "notes.txt")
        yield from found

    monkeypatch.setattr(FolderSource, "files", files)
    r = fake_library().ingest([docs])
    assert r.files_failed == [{"path": str(docs / "notes.txt"), "reason": "refused: at read time it is not a regular file"}]


# --- 3. removed text is gone from every file in the data folder ------------------------------

SECRET = "qzxjvkplomb"  # one token the analyser keeps as it is (lower case, no suffix to stem)


def _files_holding(folder: Path, phrase: str) -> list[str]:
    """Every file under ``folder`` (Chroma's, SQLite's, WAL files, snapshots...) that holds ``phrase``."""
    needles = [phrase.encode(), phrase.upper().encode(), phrase.encode("utf-16-le")]
    out = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            data = p.read_bytes()
            for n in needles:
                at = data.find(n)
                if at >= 0:  # where, and the bytes around it: enough to tell which structure kept it
                    out.append(f"{p.relative_to(folder)}@{at} of {len(data)}: {data[max(0, at - 48):at + 48]!r}")
                    break
    return out


def _secret_docs(docs: Path) -> Path:
    secret = docs / "diary-qzxjvk.txt"
    secret.write_text(
        "Private diary.\n" + "\n".join(f"Entry {i}: the {SECRET} plan is hidden under stone {i}." for i in range(40)),
        encoding="utf-8",
    )
    return secret


def test_remove_leaves_no_trace_of_the_text_in_the_data_folder(fake_library, docs):
    secret = _secret_docs(docs)
    lib = fake_library()
    lib.ingest([docs])
    data = lib.config.data_dir
    assert _files_holding(data, SECRET)  # the check can see it while it is indexed
    lib.remove(secret)
    assert not (held := _files_holding(data, SECRET)), held
    assert not (held := _files_holding(data, "diary-qzxjvk")), held  # nor its name
    assert lib.search("firmware team", mode="keyword")  # the rest is intact
    assert any("firmware" in h.text for h in fake_library().search("Anna Quimby firmware team", mode="dense"))
    assert len(lib.store.collection.get(include=[])["ids"]) == lib.store.counts()["chunks"]


def test_an_ingest_that_deletes_or_replaces_leaves_no_trace(fake_library, docs):
    secret = _secret_docs(docs)
    fake_library().ingest([docs])
    data = fake_library().config.data_dir
    secret.unlink()  # deleted from the folder: the next sync removes it
    r = fake_library().ingest([docs])
    assert r.files_removed == 1
    assert not (held := _files_holding(data, SECRET)), held
    _secret_docs(docs)
    fake_library().ingest([docs])
    (docs / "diary-qzxjvk.txt").write_text("Private diary, rewritten: nothing to see.\n", encoding="utf-8")
    fake_library().ingest([docs])  # an edit replaces the old passages
    assert not (held := _files_holding(data, SECRET)), held


def test_a_library_made_before_the_short_log_gets_it(fake_library, docs):
    import chromadb
    from chromadb.config import Settings

    lib = fake_library()
    client = chromadb.PersistentClient(path=str(lib.config.data_dir / "chroma"), settings=Settings(anonymized_telemetry=False))
    client.get_or_create_collection("default", metadata={"hnsw:space": "cosine"})  # as the store used to make it
    del client
    secret = _secret_docs(docs)
    lib.ingest([docs])
    lib.remove(secret)
    assert not (held := _files_holding(lib.config.data_dir, SECRET)), held


# --- 2 and 12. lost or damaged vectors, a damaged state file, a full disk ---------------------


def _as_a_new_process() -> None:
    """Forget the Chroma clients this process holds (each CLI command is a process of its own)."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def _segment(lib) -> Path:
    (folder,) = [p for p in (lib.config.data_dir / "chroma").iterdir() if p.is_dir()]
    return folder


def _one_line_error(err: str, *fragments: str) -> None:
    """One error line (other lines: a broken example plugin installed by test_plugins says so)."""
    assert "Traceback" not in err, err
    (line,) = [x for x in err.splitlines() if x.startswith("assistant: error: ")]
    for f in fragments:
        assert f in line, err


def test_lost_vectors_are_found_at_start_and_the_next_ingest_restores_them(fake_library, docs, monkeypatch, capsys):
    import shutil

    from assistant.testing import FakeEmbedder

    lib = fake_library()
    lib.ingest([docs])
    chunks = lib.store.counts()["chunks"]
    shutil.rmtree(lib.config.data_dir / "chroma")  # lost, or restored from an older backup
    _as_a_new_process()
    # the snapshot the ingest left holds every vector of this state: searches are whole without Chroma
    code, out, err = _cli(monkeypatch, capsys, fake_library(), "search", "--mode", "dense", "Zorblax charging")
    assert code == 0 and "95 minutes" in out and "warning" not in err
    lib.store.keyword_index.discard_snapshots()  # without it, the search reads Chroma and checks it
    _as_a_new_process()
    code, out, err = _cli(monkeypatch, capsys, fake_library(), "search", "--mode", "dense", "Zorblax charging")
    assert "assistant: warning: the vector store" in err and f"holds 0 vectors for {chunks} passages" in err
    assert "run `assistant repair`" in err
    embedder = FakeEmbedder()
    r = fake_library(embedder=embedder).ingest([docs])
    assert r.vectors_restored == chunks and r.files_unchanged == 3
    again = fake_library()
    assert again.store.collection and again.store.health.ok
    assert any("95 minutes" in h.text for h in again.search("Zorblax K3 charges minutes", mode="dense"))


def test_a_bug_in_the_check_is_not_called_a_damaged_index(fake_library, docs, monkeypatch):
    """A NameError in our own code (met once while merging) must keep its traceback, not send the
    user to `assistant repair` for an index that is fine."""
    lib = fake_library()
    lib.ingest([docs])
    store = fake_library().store

    def broken(n):
        raise NameError("name 'np' is not defined")

    monkeypatch.setattr(store, "_sample_ids", broken)
    with pytest.raises(NameError):
        store.collection


def test_repair_restores_lost_vectors_from_the_stored_text(fake_library, docs, monkeypatch, capsys):
    import json
    import shutil

    lib = fake_library()
    lib.ingest([docs])
    (docs / "copy.md").write_text((docs / "manual.md").read_text())  # shared texts: embedded once
    lib.ingest([docs])
    chunks = lib.store.counts()["chunks"]
    shutil.rmtree(lib.config.data_dir / "chroma")
    _as_a_new_process()
    code, out, err = _cli(monkeypatch, capsys, fake_library(), "repair", "--json")
    report = json.loads(out)
    assert code == 0 and report["vectors_restored"] == chunks and report["vectors_before"] == 0
    assert report["texts_embedded"] < chunks  # the copy reused its original's vectors
    code, out, err = _cli(monkeypatch, capsys, fake_library(), "repair")
    assert code == 0 and "0 vectors restored" in out and "agrees" in out


def _searches_from_the_snapshot_then_meets_the_damage(fake_library, monkeypatch, capsys) -> tuple[int, str]:
    """The snapshot the ingest left holds every vector: a search is whole without Chroma. Without
    the snapshot the search opens Chroma and meets the damage: its exit code and stderr."""
    _as_a_new_process()
    code, out, err = _cli(monkeypatch, capsys, fake_library(), "search", "Zorblax charging")
    assert code == 0 and "95 minutes" in out, err
    fake_library().store.keyword_index.discard_snapshots()
    _as_a_new_process()
    code, out, err = _cli(monkeypatch, capsys, fake_library(), "search", "Zorblax charging")
    return code, err


@pytest.mark.parametrize("damage", ["header", "truncated"])
def test_a_damaged_vector_index_is_one_line_and_repair_rebuilds_it(fake_library, docs, monkeypatch, capsys, damage):
    lib = fake_library()
    lib.ingest([docs])
    segment = _segment(lib)
    chroma = lib.config.data_dir / "chroma"
    if damage == "header":
        (segment / "header.bin").write_bytes(bytes(range(100)))
    else:
        with open(segment / "data_level0.bin", "r+b") as f:
            f.truncate(1000)
    code, err = _searches_from_the_snapshot_then_meets_the_damage(fake_library, monkeypatch, capsys)
    assert code == 1
    _one_line_error(err, f"the vector index in {chroma} is damaged", "run `assistant repair`",
                    f"as a last resort delete the data folder {lib.config.data_dir}")
    code, out, err = _cli(monkeypatch, capsys, fake_library(), "ingest", str(docs))
    assert code == 1 and "run `assistant repair`" in err
    code, out, err = _cli(monkeypatch, capsys, fake_library(), "repair")
    assert code == 0 and "the damaged vector index was rebuilt" in out, err
    assert [p.name for p in chroma.iterdir() if p.is_dir()] != [segment.name]  # the damaged folder is gone
    fixed = fake_library()
    assert any("95 minutes" in h.text for h in fixed.search("Zorblax K3 charges minutes", mode="dense"))


def test_a_damaged_chroma_database_is_one_line_and_repair_starts_it_afresh(fake_library, docs, monkeypatch, capsys):
    lib = fake_library()
    lib.ingest([docs])
    chroma_db = lib.config.data_dir / "chroma" / "chroma.sqlite3"
    _as_a_new_process()
    with open(chroma_db, "r+b") as f:
        f.write(b"garbage " * 4096)
    code, err = _searches_from_the_snapshot_then_meets_the_damage(fake_library, monkeypatch, capsys)
    assert code == 1
    _one_line_error(err, f"the vector index in {chroma_db.parent} is damaged", "run `assistant repair`")
    code, out, err = _cli(monkeypatch, capsys, fake_library(), "repair")
    assert code == 0 and "started afresh" in out, err
    fixed = fake_library()
    assert any("95 minutes" in h.text for h in fixed.search("Zorblax K3 charges minutes", mode="dense"))


def test_a_damaged_state_file_is_one_line_and_repair_sets_it_aside(fake_library, docs, monkeypatch, capsys):
    lib = fake_library()
    lib.ingest([docs])
    state = lib.store.db_path
    lib.store.close()
    for suffix in ("-wal", "-shm"):
        state.with_name(state.name + suffix).unlink(missing_ok=True)
    state.write_bytes(b"this is not a database, it was overwritten " * 100)
    for argv in (["status"], ["search", "Zorblax"], ["ingest", str(docs)]):
        code, out, err = _cli(monkeypatch, capsys, fake_library(), *argv)
        assert code == 1
        _one_line_error(err, f"the library's state file {state} is damaged", "run `assistant repair`")
    code, out, err = _cli(monkeypatch, capsys, fake_library(), "repair")
    assert code == 0 and "the damaged state file was moved to" in out and "run `assistant ingest`" in out
    assert list(state.parent.glob("state.sqlite.damaged-*"))
    r = fake_library().ingest([docs])
    assert r.files_ingested == 3 and fake_library().store.collection.count() == r.chunks_total


def test_a_full_disk_inside_chroma_is_one_line_and_loses_nothing(fake_library, docs, monkeypatch, capsys):
    import chromadb.errors
    from chromadb.api.models.Collection import Collection

    fake_library().ingest([docs])
    (docs / "new.md").write_text("# New\n\nThe Quixel pump needs a new gasket every spring.\n", encoding="utf-8")
    real_add = Collection.add

    def full(self, *a, **kw):  # what the Rust compactor reports when the disk is full
        raise chromadb.errors.InternalError("Error executing plan: Error flushing segment: No space left on device (os error 28)")

    monkeypatch.setattr(Collection, "add", full)
    code, out, err = _cli(monkeypatch, capsys, fake_library(), "ingest", str(docs))
    assert code == 1
    _one_line_error(err, "no space left on the disk that holds", "free some space and run the command again")
    monkeypatch.setattr(Collection, "add", real_add)
    r = fake_library().ingest([docs])
    assert r.files_ingested == 1 and fake_library().store.check().ok


def test_a_full_disk_inside_sqlite_is_one_line(fake_library, docs, monkeypatch, capsys):
    import sqlite3

    from assistant.store import Store

    def full(self, chunks):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "_insert_chunks", full)
    code, out, err = _cli(monkeypatch, capsys, fake_library(), "ingest", str(docs))
    assert code == 1
    _one_line_error(err, "no space left on the disk that holds", "free some space")


def test_explain_leaves_bugs_alone(tmp_path):
    from assistant.faults import explain

    assert explain(KeyError("x"), tmp_path, tmp_path / "state.sqlite") is None
    assert "no space left" in explain(OSError(28, "No space left on device"), tmp_path, tmp_path / "state.sqlite")


def test_a_source_that_yields_a_file_outside_its_root_is_refused(fake_library, docs, tmp_path, monkeypatch):
    from assistant_folder import FolderSource

    outside = tmp_path / "elsewhere.txt"
    outside.write_text("zyxwvut outside the folder\n", encoding="utf-8")
    original = FolderSource.files

    def files(self, root):  # a source plugin that breaks its contract
        yield from original(self, root)
        yield outside

    monkeypatch.setattr(FolderSource, "files", files)
    r = fake_library().ingest([docs])
    assert {f["path"]: f["reason"] for f in r.files_failed} == {
        str(outside): f"refused: at read time it leads outside the folder, to {outside}"}
    assert not fake_library().search("zyxwvut outside", mode="keyword")


def test_output_to_a_closed_pipe_stops_quietly(fake_library, docs, monkeypatch, capsys):
    """`assistant search ... | head -1`: the reader closed the pipe, so a write fails with
    BrokenPipeError; the command stops with 141 (what a shell reports for SIGPIPE), no traceback."""
    from assistant import cli

    fake_library().ingest([docs])

    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "_library", lambda args=None, **kw: fake_library())
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["search", "Zorblax K3 charges minutes"]) == 141
    assert "Traceback" not in capsys.readouterr().err

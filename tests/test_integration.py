"""End-to-end tests on the real stack: real Chroma, the real embedded models, real files."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import CORPORA, run_cli, unshare_works
from formats import FORMAT_CASES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def format_library(tmp_path_factory):
    """Every format built for real, ingested once with the real embedder."""
    import os

    from assistant.config import Config
    from assistant.library import Library
    from assistant.testing import FakeGenerator

    base = tmp_path_factory.mktemp("formats")
    folder = base / "docs"
    folder.mkdir()
    cases = [(suffix, *builder(folder)) for suffix, builder in FORMAT_CASES]
    cfg = Config()
    old = os.environ.get("ASSISTANT_DATA_DIR")
    os.environ["ASSISTANT_DATA_DIR"] = str(base / "data")
    try:
        lib = Library(cfg, generator=FakeGenerator())
        report = lib.ingest([folder])
        yield lib, report, cases
    finally:
        if old is not None:
            os.environ["ASSISTANT_DATA_DIR"] = old


def test_every_format_ingests(format_library):
    _, report, cases = format_library
    assert report.files_failed == []
    assert report.files_ingested == len({str(c[1]) for c in cases})


@pytest.mark.parametrize("index", range(len(FORMAT_CASES)), ids=[s for s, _ in FORMAT_CASES])
def test_fact_is_retrievable_with_its_location(format_library, index, monkeypatch):
    lib, _, cases = format_library
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(lib.config.data_dir))
    suffix, path, fact, page, line = cases[index]
    hits = lib.search(fact, top_k=3)
    match = [h for h in hits if h.path == str(path) and fact.split(" ")[1] in h.text]
    assert match, f"{suffix}: fact not in the top 3: {[h.path for h in hits]}"
    h = match[0]
    assert h.page == page
    assert h.start_line <= line <= h.end_line, (suffix, h.start_line, h.end_line, line)


@pytest.mark.llm
@pytest.mark.skipif(not unshare_works(), reason="`unshare -n` is not permitted here (needs root or user namespaces)")
def test_ingest_and_ask_with_the_network_switched_off(tmp_path):
    """The whole product, offline: the real CLI, real Chroma, real embedder and LLM, no network namespace."""
    corpus = tmp_path / "corpora"
    shutil.copytree(CORPORA, corpus)
    env = {"HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": ""}  # prove the code sets them itself
    ingest = run_cli("ingest", "--json", str(corpus), env=env, prefix=["unshare", "-n"])
    assert ingest.returncode == 0, ingest.stderr
    report = json.loads(ingest.stdout)
    assert report["files_failed"] == [] and report["chunks_total"] > 20
    for question, expected, fact in [
        ("How long does the K3 take to charge?", "k3_manual.md", "95"),  # the demo's own question
        ("Which port does the K3 local REST API listen on?", ("k3_api_guide.rst", "meeting_notes_2024-03-12.txt"), "8470"),
        ("How many employees did Larkspur Robotics have at the end of 2023?", "annual_report_2023.pdf", "63"),
    ]:
        ask = run_cli("ask", "--json", question, env=env, prefix=["unshare", "-n"])
        assert ask.returncode == 0, ask.stderr
        out = json.loads(ask.stdout)
        assert out["sources"][0]["path"].endswith(expected), out["sources"]
        assert out["answer"] and set(out["timings"]) == {"retrieve_s", "first_token_s", "total_s"}
        assert out["model"].startswith("Gemma 3") and "MiniLM" in out["embed_model"]
        # right, and supported by the passage it cites, whether in the model's words or quoted
        assert out["how"] in ("model-verified", "quoted") and fact in out["answer"], out
        assert any(s["cited"] and fact in s["text"] and s["path"].endswith(expected) for s in out["sources"]), out  # the quote's file
    ask = run_cli("ask", "--json", "Who is the CFO of Larkspur Robotics?", env=env, prefix=["unshare", "-n"])
    out = json.loads(ask.stdout)
    assert out["how"] == "not-found" and not out["grounded"], out


def test_cli_errors_are_clear_and_nonzero(tmp_path, write_config):
    r = run_cli("ingest", str(tmp_path / "missing"))
    assert r.returncode == 1 and "no such file or folder" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "empty").mkdir()
    r = run_cli("ingest", str(tmp_path / "empty"))
    assert r.returncode == 1 and "no files to ingest" in r.stderr
    r = run_cli("ask", "anything?")
    assert r.returncode == 1 and "nothing is indexed yet" in r.stderr
    write_config("[retrieval]\ntopk = 3\n")
    r = run_cli("status")
    assert r.returncode == 1 and "unknown key retrieval.topk" in r.stderr
    write_config('[generation]\nmax_tokens = "many"\n')
    r = run_cli("status")
    assert r.returncode == 1 and "generation.max_tokens: expected int" in r.stderr


def test_bad_gguf_paths(tmp_path, write_config):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The quokka lives on Rottnest Island.\n")
    assert run_cli("ingest", str(docs)).returncode == 0
    write_config(f'[generation]\nmodel = "{tmp_path / "missing.gguf"}"\n')
    r = run_cli("ask", "Where does the quokka live?")
    assert r.returncode == 1 and "no such file" in r.stderr and "missing.gguf" in r.stderr
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model at all")
    write_config(f'[generation]\nmodel = "{fake}"\n')
    r = run_cli("ask", "Where does the quokka live?")
    assert r.returncode == 1 and "is not a GGUF file" in r.stderr


def test_reingest_of_unchanged_files_adds_nothing(tmp_path):
    corpus = tmp_path / "c"
    shutil.copytree(CORPORA, corpus)
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7\n garbage")
    r1 = run_cli("ingest", "--json", str(corpus))
    assert r1.returncode == 3, "some files failed: exit code 3, not success"
    first = json.loads(r1.stdout)
    assert [f["path"] for f in first["files_failed"]] == [str(corpus / "broken.pdf")]
    assert first["files_failed"][0]["reason"]
    second = json.loads(run_cli("ingest", "--json", str(corpus)).stdout)
    assert second["chunks_added"] == 0 and second["files_ingested"] == 0
    assert second["chunks_total"] == first["chunks_total"]
    assert second["files_unchanged"] == first["files_seen"] - len(first["files_skipped"]) - len(first["files_failed"])

"""Retrieval as a pipeline of stages (issue #16): one path for search, ask and eval; the built-in stages;
--explain; the filters in SQL; one file-type rule; no unread config keys.

Real store (Chroma + SQLite), real files, the installed plugins; the fast FakeEmbedder."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT

from assistant.config import ConfigError, load_config
from assistant.library import LibraryError
from assistant.retrieve import Filters
from assistant.types import Retrieval

# one section ("Charging") long enough for several chunks of 64 tokens; every line a numbered fact
SECTION = [f"Step {i}: the charger light {word} after {i} minutes of charging the Zorblax." for i, word in
           zip(range(1, 31), ["blinks", "glows", "dims", "flashes", "turns amber", "turns green"] * 5)]
SMALL_CHUNKS = "[ingest]\nchunk_size = 80\nchunk_overlap = 16\n"


def _manual(d):
    d.mkdir(exist_ok=True)
    text = "# Zorblax manual\n\n## Charging\n\n" + "\n".join(SECTION) + "\n\n## Storage\n\nKeep the Zorblax dry.\n"
    (d / "manual.md").write_text(text, encoding="utf-8")
    return d / "manual.md"


def _lines_hold(hit, path) -> None:
    """Line start_line + k of the file is line k of the hit's text."""
    lines = path.read_text(encoding="utf-8").split("\n")
    for k, line in enumerate(hit.text.split("\n")):
        assert lines[hit.start_line - 1 + k].endswith(line) or lines[hit.start_line - 1 + k].startswith(line), (k, line)
    assert hit.end_line == hit.start_line + hit.text.count("\n")


def test_search_ask_and_eval_share_one_path_with_the_configured_stages(write_config, fake_library, tmp_path):
    """The example `boost` stage (an installed plugin) changes what search returns, what ask reads
    and what eval --beir measures: all three take Library.retrieve."""
    from test_plugins import ensure_example_plugins

    from assistant.evaluate import BeirData, evaluate_beir

    ensure_example_plugins()  # examples/assistant-example-plugins, where the `boost` stage lives

    d = tmp_path / "docs"
    d.mkdir()
    (d / "a.txt").write_text("The quarterly report lists the revenue of the Zorblax line.\n", encoding="utf-8")
    (d / "b.txt").write_text("Revenue figures are in the appendix of the quarterly report.\n", encoding="utf-8")
    plain = fake_library()
    plain.ingest([d])
    first_plain = plain.search("quarterly report revenue", top_k=2)[0].path
    other = str(d / ("b.txt" if first_plain.endswith("a.txt") else "a.txt"))
    write_config(f'[retrieval]\nstages = ["boost"]\n[plugins.boost]\npaths = ["{other}"]\nfactor = 100.0\n')
    lib = fake_library()
    found = lib.retrieve("quarterly report revenue", top_k=2)
    assert isinstance(found, Retrieval) and found.stages == ("boost",)
    assert found.hits[0].path == other
    assert list(found.hits[0].scores) == ["dense", "keyword", "fused", "boost"]
    assert found.hits[0].scores["boost"] == pytest.approx(found.hits[0].scores["fused"] * 100)
    assert set(found.timings) == {"candidates", "fusion", "hydrate", "boost"}
    assert lib.ask("quarterly report revenue?").sources[0].hit.path == other
    qrels = {"q1": {other: 1.0}}
    data = BeirData({}, {"q1": "quarterly report revenue"}, qrels)
    assert evaluate_beir(lib, data, depth=5)["mrr@10"] == 1.0
    assert evaluate_beir(plain, data, depth=5)["mrr@10"] == 0.5


def test_neighbours_joins_the_rest_of_the_section_with_the_merged_lines(write_config, fake_library, tmp_path):
    path = _manual(tmp_path / "docs")
    write_config(SMALL_CHUNKS)
    bare = fake_library()
    bare.ingest([path.parent])
    assert len(bare.store.chunks_of(str(path))) >= 4
    query = "charger light turns amber after 17 minutes"
    hit = bare.search(query, top_k=1, mode="keyword")[0]
    write_config(SMALL_CHUNKS + '[retrieval]\nstages = ["neighbours"]\n[plugins.neighbours]\nmax_tokens = 400\n')
    joined = fake_library().search(query, top_k=1, mode="keyword")[0]
    assert joined.chunk_id == hit.chunk_id and joined.score == hit.score
    assert joined.start_line < hit.start_line and joined.end_line > hit.end_line
    assert hit.text in joined.text and len(joined.text) <= len(hit.text) + 400 * 4 + 2
    _lines_hold(joined, path)
    assert "Keep the Zorblax dry" not in joined.text  # another section is never joined
    for line in joined.text.split("\n"):  # the chunks' overlap appears once
        assert joined.text.count(line) == 1 or not line.strip(), line


def test_neighbours_folds_a_lower_hit_in_and_keeps_within_its_budget(write_config, fake_library, tmp_path):
    path = _manual(tmp_path / "docs")
    write_config(SMALL_CHUNKS + '[retrieval]\nstages = ["neighbours"]\n[plugins.neighbours]\nmax_tokens = 400\n')
    lib = fake_library()
    lib.ingest([path.parent])
    hits = lib.search("charger light Zorblax minutes charging", top_k=10, mode="keyword")
    ids = [h.chunk_id for h in hits]
    assert len(ids) == len(set(ids))
    covered = [set(range(h.start_line, h.end_line + 1)) for h in hits if h.path == str(path)]
    assert len(covered) >= 2
    for i, a in enumerate(covered):  # a hit folded into a better one does not come back on its own
        for b in covered[i + 1:]:
            assert not a <= b and not b <= a, (sorted(a), sorted(b))
    assert any(h.end_line - h.start_line > 2 for h in hits)
    write_config(SMALL_CHUNKS + '[retrieval]\nstages = ["neighbours"]\n[plugins.neighbours]\nmax_tokens = 0\n')
    same = fake_library().search("charger light Zorblax minutes charging", top_k=10, mode="keyword")
    write_config(SMALL_CHUNKS)
    assert [(h.chunk_id, h.text) for h in same] == [(h.chunk_id, h.text) for h in fake_library().search(
        "charger light Zorblax minutes charging", top_k=10, mode="keyword")]


def test_diversify_collapses_copies_and_names_them(write_config, fake_library, tmp_path, monkeypatch, capsys):
    d = tmp_path / "docs"
    (d / "old").mkdir(parents=True)
    fact = "The Zorblax warranty lasts 24 months from the date of purchase, parts and labour included.\n"
    (d / "warranty.md").write_text(fact, encoding="utf-8")
    (d / "old" / "warranty copy.md").write_text(fact, encoding="utf-8")
    (d / "other.md").write_text("The Zorblax case is blue and the warranty card is inside.\n", encoding="utf-8")
    write_config('[retrieval]\nstages = ["diversify"]\n')
    lib = fake_library()
    lib.ingest([d])
    hits = lib.search("Zorblax warranty months", top_k=3)
    paths = [h.path for h in hits]
    assert len(hits) == 2 and str(d / "other.md") in paths
    copy = next(h for h in hits if h.path != str(d / "other.md"))
    assert set([copy.path, *copy.also_in]) == {str(d / "warranty.md"), str(d / "old" / "warranty copy.md")}
    from assistant import cli

    cli_lib = fake_library()
    monkeypatch.setattr(cli, "_library", lambda args, **kw: cli_lib)
    assert cli.main(["search", "Zorblax warranty months"]) == 0
    assert f"also in: {copy.also_in[0]}" in capsys.readouterr().out
    assert cli.main(["ask", "How many months does the Zorblax warranty last?"]) == 0
    assert f"also in: {copy.also_in[0]}" in capsys.readouterr().out


def test_a_stage_that_cannot_load_or_raises_is_an_error_naming_it(write_config, fake_library, docs, monkeypatch):
    write_config('[retrieval]\nstages = ["no_such_stage"]\n')
    lib = fake_library()
    lib.ingest([docs])
    with pytest.raises(LibraryError, match="no rerankers plugin named 'no_such_stage'.*neighbours"):
        lib.search("tulips")
    write_config('[retrieval]\nstages = ["cross_encoder"]\n')
    with pytest.raises(LibraryError, match="cross_encoder.*local CrossEncoder folder"):
        fake_library().search("tulips")
    write_config('[retrieval]\nstages = ["diversify"]\n')
    lib = fake_library()

    def boom(self, query, hits, context):
        raise RuntimeError("out of memory")

    monkeypatch.setattr("assistant_rerankers.diversify.Diversify.rerank", boom)
    with pytest.raises(LibraryError, match="retrieval stage 'diversify' failed: RuntimeError: out of memory"):
        lib.search("tulips")
    with pytest.raises(LibraryError, match="stage 'diversify' failed"):
        lib.ask("When are tulips planted?")


def test_cross_encoder_reorders_the_top_candidates_with_a_real_tiny_model(write_config, fake_library, docs, tmp_path):
    from plugin_contracts import build_tiny_cross_encoder
    from sentence_transformers import CrossEncoder

    folder = build_tiny_cross_encoder(tmp_path / "ce")
    write_config(f'[retrieval]\nstages = ["cross_encoder"]\n[plugins.cross_encoder]\nmodel = "{folder}"\ncandidates = 3\nbatch_size = 2\n')
    lib = fake_library()
    lib.ingest([docs])
    query = "how long does the zorblax k3 take to charge"
    hits = lib.search(query, top_k=5)
    direct = CrossEncoder(str(folder), device="cpu").predict([(query, h.text) for h in hits[:3]])
    head = [h.scores["cross_encoder"] for h in hits[:3]]
    assert head == sorted(head, reverse=True)
    assert sorted(head) == pytest.approx(sorted(float(x) for x in direct.reshape(-1)), abs=1e-5)
    assert all(h.scores["cross_encoder"] == h.scores["fused"] for h in hits[3:])  # past `candidates`: untouched


def test_cross_encoder_and_llamacpp_rerank_refuse_a_missing_model_clearly(tmp_path):
    from assistant_rerankers.cross_encoder import CrossEncoderReranker
    from assistant_rerankers.llamacpp_rerank import LlamaCppReranker

    with pytest.raises(FileNotFoundError, match="not a saved CrossEncoder folder"):
        CrossEncoderReranker(model=str(tmp_path / "nothing"))
    with pytest.raises(ValueError, match="nothing is downloaded"):
        LlamaCppReranker()
    with pytest.raises(FileNotFoundError, match="no such file"):
        LlamaCppReranker(model=str(tmp_path / "reranker.gguf"))


def test_search_json_explain_prints_each_steps_score(write_config, fake_library, docs, capsys, monkeypatch):
    from assistant import cli

    write_config('[retrieval]\nstages = ["diversify"]\n')
    lib = fake_library()
    lib.ingest([docs])
    monkeypatch.setattr(cli, "_library", lambda args, **kw: lib)
    assert cli.main(["search", "--json", "--explain", "tulips October"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and set(rows[0]["scores"]) >= {"fused", "diversify"}
    assert list(rows[0]["scores"])[-2:] == ["fused", "diversify"]
    assert cli.main(["search", "--json", "tulips October"]) == 0
    assert "scores" not in json.loads(capsys.readouterr().out)[0]
    assert cli.main(["search", "--explain", "tulips October"]) == 0
    out = capsys.readouterr().out
    assert "scores: " in out and "stages: diversify" in out


def test_filters_run_in_sql_not_over_every_file_row(fake_library, docs, monkeypatch):
    lib = fake_library()
    lib.ingest([docs])
    (docs / "sub" / "extra.MD").write_text("Tulips again, in capitals.\n", encoding="utf-8")
    lib.ingest([docs])

    def no_full_scan(self):
        raise AssertionError("file_rows() read for a filtered query")

    monkeypatch.setattr(type(lib.store), "file_rows", no_full_scan)
    store = lib.store
    assert store.paths_matching("*/sub/*") == sorted([str(docs / "sub" / "garden.md"), str(docs / "sub" / "extra.MD")])
    assert store.paths_matching(None, ("md",)) == sorted(str(docs / p) for p in ("manual.md", "sub/extra.MD", "sub/garden.md"))
    assert store.paths_matching("*/s[!u]b/*") == []
    assert store.paths_matching(None, ("m_",)) == []  # LIKE wildcards in a type are literal
    hits = lib.search("tulips", filters=Filters(path_glob="*/sub/*", file_types=("md",)))
    assert hits and {h.path for h in hits} <= {str(docs / "sub" / "garden.md"), str(docs / "sub" / "extra.MD")}
    assert lib.search("tulips", filters=Filters(file_types=("txt",)))[0].path == str(docs / "notes.txt")


def test_type_filter_is_the_suffix_and_no_reader_type_is_stored(fake_library, docs):
    lib = fake_library()
    lib.ingest([docs])
    got = lib.store.collection.get(include=["metadatas"])
    assert got["metadatas"] and all("file_type" not in m for m in got["metadatas"])
    assert all(m["path"] for m in got["metadatas"])


def test_retrieval_min_score_is_gone_and_stages_are_checked(write_config):
    write_config("[retrieval]\nmin_score = 0.2\n")
    with pytest.raises(ConfigError, match="unknown key retrieval.min_score"):
        load_config()
    write_config('[retrieval]\nstages = "neighbours"\n')
    with pytest.raises(ConfigError, match="retrieval.stages: expected a list"):
        load_config()
    write_config("[retrieval]\npool = 0\n")
    with pytest.raises(ConfigError, match="retrieval.pool"):
        load_config()
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    assert "min_score = 0.0" not in text and "stages = " in text


def test_plugins_lists_the_rerankers_and_loads_only_the_configured_ones(write_config):
    write_config('[retrieval]\nstages = ["neighbours"]\n')
    r = subprocess.run([sys.executable, "-m", "assistant.cli", "plugins", "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = {(row["group"], row["name"]): row for row in json.loads(r.stdout)}
    assert rows[("assistant.rerankers", "neighbours")]["status"] == "ok"
    for name in ("diversify", "cross_encoder", "llamacpp_rerank"):
        assert rows[("assistant.rerankers", name)]["status"] == "not loaded"  # not configured: not a failure


@pytest.mark.integration
def test_llamacpp_rerank_refuses_a_gguf_that_is_not_a_reranker():
    """The built-in Gemma GGUF loads with rank pooling (llama.cpp allows it) and would fail at decode:
    the plugin refuses it by its metadata, naming the file."""
    from assistant_llamacpp import builtin_model_path
    from assistant_rerankers.llamacpp_rerank import LlamaCppReranker
    from plugin_contracts import contract_hits

    hits, context = contract_hits()
    stage = LlamaCppReranker(model=str(builtin_model_path()), n_ctx=256)
    with pytest.raises(RuntimeError, match=r"gemma.*is not a reranker model.*gemma3\.pooling_type is unset"):
        stage.rerank("how long does it charge?", hits, context)

"""Plugins through entry points: the example and broken distributions, the contract suite, the rules.

examples/assistant-example-plugins (installed by scripts/setup.sh) and
examples/broken-plugin are found through their entry points only. Whichever is
missing or stale is pip-installed into a folder of this test session only
(``pip --target``), put first on sys.path and on PYTHONPATH for the CLI
subprocesses, so the virtualenv never keeps the broken plugin (the demo would
warn about it on every run). The install happens at collection, because the
contract tests are parametrised over every plugin the registry finds.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

import plugin_contracts as contracts
from conftest import ROOT, run_cli

from assistant.config import ConfigError, load_config
from assistant.plugins import BUILTIN_DISTRIBUTION, PluginError, PluginRegistry

EXAMPLES = ROOT / "examples"
# distribution name -> (source folder, top-level package)
EXAMPLE_DISTS = {
    "assistant-example-plugins": (EXAMPLES / "assistant-example-plugins", "assistant_example"),
    "assistant-broken-plugin": (EXAMPLES / "broken-plugin", "assistant_broken"),
}
BROKEN_DISTS = {"assistant-broken-plugin"}  # deliberately broken: skipped by the contract suite
# built-in generators that need a server: tests/test_openai_generator.py runs the contract against one
NETWORK_GENERATORS = {"openai"}
ROW_KEYS = {"group", "name", "distribution", "version", "suffixes", "status", "reason"}


# --- installing the example distributions ------------------------------------


def _declared(src: Path) -> tuple[str, set[tuple[str, str, str]]]:
    project = tomllib.loads((src / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    eps = {(g, n, v) for g, table in project.get("entry-points", {}).items() for n, v in table.items()}
    return project["version"], eps


def _is_current(dist_name: str, src: Path, package: str) -> bool:
    """Installed, with the source's version and entry points, and its modules' current text."""
    try:
        dist = md.distribution(dist_name)
    except md.PackageNotFoundError:
        return False
    version, eps = _declared(src)
    if dist.version != version or {(e.group, e.name, e.value) for e in dist.entry_points} != eps:
        return False
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    if direct.get("dir_info", {}).get("editable"):
        return direct.get("url") == src.resolve().as_uri()
    for f in (src / "src" / package).rglob("*.py"):
        installed = Path(dist.locate_file(f.relative_to(src / "src")))
        if not installed.is_file() or installed.read_bytes() != f.read_bytes():
            return False
    return True


SESSION_PLUGINS = Path(tempfile.mkdtemp(prefix="assistant-test-plugins-"))
atexit.register(shutil.rmtree, SESSION_PLUGINS, ignore_errors=True)


def _use_session_plugins() -> None:
    if str(SESSION_PLUGINS) not in sys.path:
        sys.path.insert(0, str(SESSION_PLUGINS))
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SESSION_PLUGINS), os.environ.get("PYTHONPATH")]))
    importlib.invalidate_caches()


def ensure_example_plugins() -> None:
    """pip-install the example distributions that are missing or stale into this session's folder (from a copy)."""
    stale = [(src, pkg) for name, (src, pkg) in EXAMPLE_DISTS.items() if not _is_current(name, src, pkg)]
    if not stale:
        return
    with tempfile.TemporaryDirectory() as tmp:
        copies = []
        for src, _ in stale:  # build from a copy: no build/ or egg-info left in the repository
            dst = Path(tmp) / src.name
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
            copies.append(str(dst))
        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--upgrade",
               "--target", str(SESSION_PLUGINS), "-q", *copies]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"installing the example plugins failed:\n{' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    _use_session_plugins()


ensure_example_plugins()  # at collection: the parametrisation below must see the example plugins


@pytest.fixture(scope="session", autouse=True)
def example_plugins_installed():
    ensure_example_plugins()  # a no-op when collection already did it


def _quiet_registry(settings=None) -> PluginRegistry:
    return PluginRegistry(settings or {}, warn=lambda m: None)


def _contract_params(group: str) -> list:
    params = []
    for info in _quiet_registry().infos:
        if info.group != group or info.status == "shadowed":
            continue
        marks = []
        if info.distribution in BROKEN_DISTS:
            marks.append(pytest.mark.skip(reason=f"{info.distribution} is broken on purpose"))
        if group == "generators" and info.name == "llamacpp" and info.distribution == BUILTIN_DISTRIBUTION:
            marks += [pytest.mark.llm, pytest.mark.integration]
        if group == "rerankers" and info.name == "llamacpp_rerank" and info.distribution == BUILTIN_DISTRIBUTION:
            marks.append(pytest.mark.skip(reason="no GGUF reranker can be had offline; tests/test_stages.py checks its errors"))
        if group == "generators" and info.name in NETWORK_GENERATORS and info.distribution == BUILTIN_DISTRIBUTION:
            marks.append(pytest.mark.skip(reason="needs an OpenAI-compatible server: tests/test_openai_generator.py checks the contract"))
        params.append(pytest.param(info.name, id=f"{info.name}@{info.distribution}", marks=marks))
    return params


def _load(group: str, name: str):
    reg = PluginRegistry(load_config().plugins, warn=lambda m: None)
    try:
        return reg.load(group, name)
    except PluginError as e:
        pytest.fail(f"{group} plugin '{name}' does not load: {e}")


# --- the contract suite, over every registered plugin ----------------------------


def test_examples_are_found_through_entry_points_only():
    infos = {(i.group, i.name): i for i in _quiet_registry().infos}
    expected = {
        ("readers", "org"), ("readers", "li_json"), ("sources", "filelist"),
        ("generators", "extractive"), ("commands", "wordcount"),
    }  # fmt: skip
    for key in expected:
        assert infos[key].distribution == "assistant-example-plugins" and infos[key].version == "0.1.0"
    assert infos[("readers", "broken_reader")].distribution == "assistant-broken-plugin"


@pytest.mark.parametrize("name", _contract_params("readers"))
def test_reader_contract(name, tmp_path):
    reader = _load("readers", name)
    read = contracts.check_reader(reader, tmp_path, who=f"reader '{name}'")
    assert read, f"reader '{name}': no sample file for any of {reader.suffixes}; add a builder to plugin_contracts.SAMPLE_BUILDERS"


@pytest.mark.parametrize("name", _contract_params("sources"))
def test_source_contract(name, tmp_path):
    contracts.check_source(_load("sources", name), tmp_path, who=f"source '{name}'")


@pytest.mark.parametrize("name", _contract_params("generators"))
def test_generator_contract(name):
    # the real llama.cpp generator carries the llm/integration marks: `-m "not integration"` leaves it out
    contracts.check_generator(_load("generators", name), who=f"generator '{name}'")


@pytest.mark.parametrize("name", _contract_params("commands"))
def test_command_contract(name):
    from assistant.cli import build_parser

    cmd = _load("commands", name)
    contracts.check_command(cmd, name, who=f"command '{name}'")
    args = build_parser(_quiet_registry()).parse_args([name])
    assert args.command == name and callable(args.func)


@pytest.mark.parametrize("name", _contract_params("rerankers"))
def test_reranker_contract(name, tmp_path, write_config):
    if name == "cross_encoder":  # the one built-in that needs a model: a tiny random one, built here
        folder = contracts.build_tiny_cross_encoder(tmp_path / "tiny-cross-encoder")
        write_config(f'[plugins.cross_encoder]\nmodel = "{folder}"\n')
    contracts.check_reranker(_load("rerankers", name), who=f"reranker '{name}'")


# --- `assistant plugins` and a broken plugin ---------------------------------------


def test_plugins_json_lists_builtins_examples_and_failures():
    r = run_cli("plugins", "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert rows and all(set(row) == ROW_KEYS for row in rows)
    by = {(row["group"], row["name"]): row for row in rows}

    broken = by[("assistant.readers", "broken_reader")]
    assert broken["status"] == "failed" and broken["distribution"] == "assistant-broken-plugin"
    assert "ModuleNotFoundError" in broken["reason"] and "assistant_broken_missing_dependency" in broken["reason"]
    gen = by[("assistant.generators", "broken_generator")]
    assert gen["status"] == "failed" and gen["reason"].startswith("RuntimeError: BrokenGenerator cannot start")

    for group, name in [("assistant.sources", "folder"), ("assistant.readers", "markdown"),
                        ("assistant.readers", "pdf"), ("assistant.generators", "llamacpp")]:  # fmt: skip
        assert by[(group, name)]["distribution"] == BUILTIN_DISTRIBUTION
        assert by[(group, name)]["status"] == "ok", by[(group, name)]
    org = by[("assistant.readers", "org")]
    assert (org["distribution"], org["version"], org["status"], org["suffixes"]) == ("assistant-example-plugins", "0.1.0", "ok", [".org"])
    assert by[("assistant.commands", "wordcount")]["status"] == "ok"


def test_broken_plugins_fail_alone_in_ingest(fake_library, docs, capsys):
    (docs / "todo.org").write_text("* Errands\nBuy twine for the bean poles.\n", encoding="utf-8")
    lib = fake_library()
    report = lib.ingest([docs])
    assert (report.files_ingested, report.files_failed) == (4, [])
    assert report.files_skipped == []
    broken = lib.registry.info("readers", "broken_reader")
    assert broken.status == "failed" and "No module named 'assistant_broken_missing_dependency'" in broken.reason
    lib.ingest([docs])  # the failure is recorded once, not reported again
    err = capsys.readouterr().err
    assert err.count("readers plugin 'broken_reader' (assistant-broken-plugin) failed: ModuleNotFoundError") == 1
    assert [h.path for h in lib.search("twine bean poles", mode="keyword")][0].endswith("todo.org")


def test_broken_generator_is_a_clear_error_only_when_chosen(write_config, fake_library, docs):
    from assistant.library import LibraryError

    write_config('[generation]\ngenerator = "broken_generator"\n')
    lib = fake_library(generator=None)
    lib.ingest([docs])
    with pytest.raises(LibraryError, match="generators plugin 'broken_generator' failed to load: RuntimeError"):
        lib.ask("How long does the Zorblax K3 take to charge?")


def test_status_starts_with_a_broken_plugin_installed():
    r = run_cli("status", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "files indexed:" in r.stdout


# --- settings ----------------------------------------------------------------------


def test_plugin_settings_are_checked_and_change_behaviour(write_config, fake_library, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    _, fact, _, line = contracts.build_org(folder)

    write_config('[plugins.org]\nkeep_drawers = "yes"\n')
    with pytest.raises(ConfigError, match=r"plugins\.org\.keep_drawers: expected bool, got str"):
        fake_library().ingest([folder])
    write_config("[plugins.org]\nkeep_drawer = true\n")
    with pytest.raises(ConfigError, match=r"plugins\.org\.keep_drawer: unknown setting for plugin 'org' \(known: keep_drawers\)"):
        _quiet_registry(load_config().plugins).load("readers", "org")

    write_config("")
    lib = fake_library()
    lib.ingest([folder])
    assert not lib.search("drawer-secret-4471", mode="keyword")
    hit = lib.search("snowdrop bulbs centimetres", mode="keyword")[0]
    fact_line = hit.start_line + hit.text[: hit.text.index(fact)].count("\n")
    assert (fact_line, hit.heading) == (line, "Garden > Planting")  # the real file line, a clean heading path

    # settings do not re-read unchanged files, so the changed behaviour is shown on a new folder
    other = tmp_path / "notes2"
    other.mkdir()
    contracts.build_org(other)
    write_config("[plugins.org]\nkeep_drawers = true\n")
    lib = fake_library()
    lib.ingest([other])
    hits = lib.search("drawer-secret-4471", mode="keyword")
    assert hits and "PLOT_ID: drawer-secret-4471" in hits[0].text and hits[0].start_line <= 9 <= hits[0].end_line


def test_extractive_generator_answers_without_a_model(write_config, fake_library, docs):
    write_config('[generation]\ngenerator = "extractive"\nn_ctx = 1024\n[plugins.extractive]\nmax_sentences = 1\n')
    lib = fake_library(generator=None)
    lib.ingest([docs])
    assert lib.generator.info().context_length == 1024  # [generation] n_ctx is offered to the plugin
    answer = lib.ask("How many minutes does the Zorblax K3 take to charge?")
    assert "95 minutes" in answer.text and answer.model == "extractive (no model)"
    assert any(s.cited and s.hit.path.endswith("manual.md") for s in answer.sources)

    write_config('[generation]\ngenerator = "extractive"\n[plugins.extractive]\nmax_sentences = "two"\n')
    with pytest.raises(ConfigError, match=r"plugins\.extractive\.max_sentences: expected int"):
        fake_library(generator=None).generator


def test_filelist_source_ingests_only_listed_files_when_folder_is_off(write_config, fake_library, docs):
    (docs / "pick.filelist").write_text("# chosen\nnotes.txt\nsub/*.md\n../escape.txt\n", encoding="utf-8")
    (docs.parent / "escape.txt").write_text("outside\n", encoding="utf-8")
    write_config("[plugins.folder]\nenabled = false\n")
    lib = fake_library()
    report = lib.ingest([docs])
    assert sorted(Path(r.path).name for r in lib.store.file_rows()) == ["garden.md", "notes.txt"]
    assert report.files_seen == 2 and lib.registry.info("sources", "folder").status == "disabled"


def test_wordcount_command_through_the_cli(fake_library, docs):
    lib = fake_library()
    lib.ingest([docs])
    md_chunks = len(lib.store.chunks_of(str(docs / "manual.md"))) + len(lib.store.chunks_of(str(docs / "sub" / "garden.md")))
    lib.store.close()
    r = run_cli("wordcount", "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    counts = json.loads(r.stdout)
    assert set(counts) == {".md", ".txt"}
    assert (counts[".md"]["files"], counts[".md"]["chunks"]) == (2, md_chunks)
    assert counts[".txt"]["files"] == 1 and counts[".txt"]["words"] >= 15
    r = run_cli("wordcount", timeout=120)
    assert r.returncode == 0 and r.stdout.splitlines()[-1].split()[:2] == ["total", "3"]
    r = run_cli("wordcount", "--help", timeout=120)
    assert r.returncode == 0 and "--json" in r.stdout


# --- llama-index glue ----------------------------------------------------------------


def test_llamaindex_reader_through_the_glue_is_ingested_and_searchable(fake_library, tmp_path):
    folder = tmp_path / "geo"
    folder.mkdir()
    path, fact, _, _ = contracts.build_geojson(folder)
    lib = fake_library()
    report = lib.ingest([folder])
    assert report.files_ingested == 1 and report.files_failed == []
    assert lib.store.file(str(path)).reader == "li_json"
    hits = lib.search("heron colony Marrowpike nests", mode="keyword")
    assert hits and fact in hits[0].text and hits[0].start_line >= 1


def test_glue_maps_llamaindex_documents_to_sections():
    from llama_index.core.readers.base import BaseReader
    from llama_index.core.schema import Document as LIDocument

    from assistant.llamaindex_glue import LlamaIndexReader

    class TwoPages(BaseReader):
        def __init__(self, prefix: str = ""):
            self.prefix = prefix

        def load_data(self, file, extra_info=None):
            return [
                LIDocument(text=f"{self.prefix}first page\nline two", metadata={"page_label": "1", "title": "Pages", "file_name": file.name}),
                LIDocument(text="\nsecond page", metadata={"page_label": "2", "nested": {"x": 1}}),
                LIDocument(text="   ", metadata={"page_label": "3"}),
            ]

    class Flat(BaseReader):
        def load_data(self, file, extra_info=None):
            return [LIDocument(text="a\nb"), LIDocument(text="c"), LIDocument(text="roman page", metadata={"page_label": "iv"})]

    doc = LlamaIndexReader(TwoPages, [".PGS"], prefix="> ").read(Path("/x/book.pgs"))
    contracts.check_document(doc)
    assert [(s.page, s.start_line, s.text) for s in doc.sections] == [(1, 1, "> first page\nline two"), (2, 1, "second page")]
    assert doc.title == "Pages" and doc.metadata == {"title": "Pages", "file_name": "book.pgs", "file_type": "pgs"}
    flat = LlamaIndexReader(Flat, (".flat",)).read(Path("f.flat"))
    assert [(s.page, s.start_line) for s in flat.sections] == [(None, 1), (None, 4), (None, 6)]


def test_listing_and_loading_do_not_import_plugin_code_or_llamaindex():
    code = (
        "import sys\n"
        "from assistant.plugins import PluginRegistry\n"
        "reg = PluginRegistry({})\n"
        "assert reg.info('readers', 'org').status == 'not loaded'\n"
        "assert not [m for m in sys.modules if m.startswith(('assistant_example', 'assistant_broken'))]\n"
        "reader = reg.load('readers', 'li_json')\n"
        "assert reader.suffixes == ('.geojson', '.jsonld')\n"
        "assert not [m for m in sys.modules if m.startswith('llama_index')], 'llama_index imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


# --- name and suffix clashes -------------------------------------------------------------

_CLASH_MODULE = '''
from pathlib import Path
from assistant.types import Document, Section


class WholeFile:
    suffixes = (".md", ".markdown")

    def read(self, path):
        text = Path(path).read_text(encoding="utf-8").strip("\\n")
        return Document(sections=[Section(text=text)], metadata={"file_type": "whole"})


class OrgAsText(WholeFile):
    suffixes = (".org",)
'''


@pytest.fixture
def clash_site(tmp_path):
    """A test-only distribution ``aaa-clash-test``, installed as a .dist-info folder on a path entry.

    ``mdplain`` claims .md/.markdown (the built-in markdown reader's suffixes);
    ``org`` has the name of the example distribution's reader.
    """
    site = tmp_path / "clash-site"
    info = site / "aaa_clash_test-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: aaa-clash-test\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        "[assistant.readers]\nmdplain = clash_test_readers:WholeFile\norg = clash_test_readers:OrgAsText\n", encoding="utf-8"
    )
    (site / "clash_test_readers.py").write_text(_CLASH_MODULE, encoding="utf-8")
    return site


def test_name_and_suffix_clash_rules(clash_site, monkeypatch, write_config, fake_library, docs):
    monkeypatch.syspath_prepend(str(clash_site))
    reg = _quiet_registry()
    # name clash between two third-party distributions: the name that sorts first wins
    org = [i for i in reg.infos if i.group == "readers" and i.name == "org"]
    assert [(i.distribution, i.status) for i in org] == [("aaa-clash-test", "not loaded"), ("assistant-example-plugins", "shadowed")]
    assert "also provided by aaa-clash-test, which wins" in org[1].reason
    # suffix clash with a built-in: the third-party reader wins, and it is reported
    table = reg.readers_by_suffix()
    assert table[".md"][0] == table[".markdown"][0] == "mdplain" and table[".org"][0] == "org"
    assert ".md: handled by 'mdplain', not 'markdown'" in reg.suffix_conflicts()
    lib = fake_library()
    lib.ingest([docs])
    assert lib.store.file(str(docs / "manual.md")).reader == "mdplain"
    # turning the winner off gives the suffix back
    write_config("[plugins.mdplain]\nenabled = false\n")
    assert _quiet_registry(load_config().plugins).readers_by_suffix()[".md"][0] == "markdown"


def test_plugins_command_prints_suffix_conflicts_and_shadowing(clash_site):
    r = run_cli("plugins", env={"PYTHONPATH": str(clash_site)}, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "note: .md: handled by 'mdplain', not 'markdown'" in lines
    assert "note: .markdown: handled by 'mdplain', not 'markdown'" in lines
    shadowed = [ln for ln in lines if ln.split()[:3] == ["assistant.readers", "org", "assistant-example-plugins"]]
    assert len(shadowed) == 1 and "shadowed: name 'org' also provided by aaa-clash-test" in shadowed[0]


def test_tui_starts_with_a_broken_plugin_installed_and_shows_it(tmp_path, monkeypatch):
    """The deliberately broken plugins are installed; the TUI still starts and reports them."""
    import asyncio

    from assistant.tui import create_app

    assert any(i.distribution == "assistant-broken-plugin" for i in PluginRegistry().infos)
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "data"))

    async def run():
        app = create_app()  # builds its own Library and registry from the config, as `assistant` does
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert app.startup_error is None and app.is_running
            app.library.registry.load_all("readers")  # what the first ingest does
            await pilot.pause()
            messages = " ".join(str(n.message) for n in app._notifications)
            assert "broken_reader" in messages and "ModuleNotFoundError" in messages

    asyncio.run(run())

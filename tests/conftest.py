"""Shared fixtures. Every test gets its own data folder and config; nothing touches ~/.local."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["ORT_DISABLE_TELEMETRY"] = "1"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """A private data folder and no config file unless a test writes one."""
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASSISTANT_CONFIG", str(_write_config(tmp_path / "config.toml", "")))
    monkeypatch.chdir(tmp_path)


def _write_config(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture
def write_config(tmp_path, monkeypatch):
    def write(body: str) -> Path:
        p = _write_config(tmp_path / "config.toml", body)
        monkeypatch.setenv("ASSISTANT_CONFIG", str(p))
        return p

    return write


@pytest.fixture
def docs(tmp_path) -> Path:
    """A small folder of real files with distinct facts."""
    d = tmp_path / "docs"
    d.mkdir()
    (d / "manual.md").write_text(
        "# Zorblax K3 manual\n\n## Charging\n\nThe Zorblax K3 charges in 95 minutes.\n"
        "Its battery holds 4.2 Ah.\n\n## Price\n\nThe Zorblax K3 costs 1,249 euros.\n",
        encoding="utf-8",
    )
    (d / "notes.txt").write_text(
        "Meeting notes, 4 March.\nAnna Quimby leads the firmware team.\nThe next meeting is on 9 April.\n",
        encoding="utf-8",
    )
    (d / "sub").mkdir()
    (d / "sub" / "garden.md").write_text(
        "# Garden\n\nTulips should be planted in October, six inches deep.\n", encoding="utf-8"
    )
    return d


@pytest.fixture
def fake_library():
    """A Library over the real store and plugins, with the fast fakes for embedder and LLM."""
    from assistant.config import load_config
    from assistant.library import Library
    from assistant.testing import FakeEmbedder, FakeGenerator

    def make(**kw):
        return Library(load_config(), embedder=kw.pop("embedder", FakeEmbedder()), generator=kw.pop("generator", FakeGenerator()), **kw)

    return make


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: int = 600, prefix: list[str] | None = None):
    """Run the real `assistant` console script in a subprocess."""
    exe = shutil.which("assistant", path=str(Path(sys.executable).parent)) or "assistant"
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*(prefix or []), exe, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout
    )


def unshare_works() -> bool:
    """True where ``unshare -n`` (a network namespace with no network) is permitted."""
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False

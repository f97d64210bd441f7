"""The core and the CLI must not import Textual; the TUI imports it only when built."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _run(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize(
    "code",
    [
        "import assistant, sys; assert 'textual' not in sys.modules",
        "import assistant.library, assistant.cli, sys; assert 'textual' not in sys.modules",
        # the package itself is lazy: only create_app()/run_tui() pull Textual in
        "import assistant.tui, sys; assert 'textual' not in sys.modules",
    ],
)
def test_no_textual_on_import(code):
    r = _run(code)
    assert r.returncode == 0, r.stderr


def test_light_commands_do_not_load_the_servers():
    """FastAPI, uvicorn and the mcp SDK are loaded by `assistant serve` / `assistant mcp` only."""
    r = _run(
        "import sys, contextlib, io\n"
        "from assistant.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['serve', '--help'])\n"
        "import assistant.serving\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'uvicorn', 'starlette', 'mcp', 'textual'})\n"
        "assert not loaded, loaded\n"
    )
    assert r.returncode == 0, r.stderr


def test_create_app_builds_without_running():
    r = _run(
        "from assistant.tui import create_app; from textual.app import App; "
        "assert isinstance(create_app(), App)"
    )
    assert r.returncode == 0, r.stderr


# What the light commands must not load: each costs from 0.1 s (numpy) to seconds (torch) at every start.
HEAVY = ("torch", "llama_index", "chromadb", "llama_cpp", "onnxruntime", "textual", "numpy",
         "transformers", "sentence_transformers", "scipy", "bm25s")


def _loaded_after(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``assistant ARGV`` in a fresh interpreter; print the heavy modules it loaded (and its exit code)."""
    code = (
        "import sys, contextlib, io\n"
        "from assistant.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        f"        rc = main({argv!r})\n"
        "    except SystemExit as e:\n"
        "        rc = e.code\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print(rc, ','.join(heavy) or '-', len(out.getvalue()))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["-h"], ["plugins"], ["plugins", "--json"], ["status"], ["status", "--json"], ["ask", "--help"]],
)
def test_light_commands_load_no_heavy_module(argv, tmp_path):
    r = _loaded_after(argv)
    assert r.returncode == 0, r.stderr
    rc, heavy, printed = r.stdout.split()
    assert rc in ("0", "None") and int(printed) > 0, r.stdout + r.stderr
    assert heavy == "-", f"`assistant {' '.join(argv)}` loaded {heavy}"

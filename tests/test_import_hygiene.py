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

#!/usr/bin/env bash
# Create .venv and install the assistant (and, with --test, what the tests need).
# torch is installed first from its CPU build: a bare `torch` requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
if [ "${1:-}" = "--test" ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
  # the example plugin packages: the tests find them through entry points only
  # (tests/test_plugins.py installs the deliberately broken one itself)
  for p in examples/*/; do
    case "$p" in *broken*) continue ;; esac
    if [ -f "$p/pyproject.toml" ]; then .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e "$p"; fi
  done
else
  .venv/bin/python -m pip install -q -e .
fi

#!/usr/bin/env bash
# Install what the tests need and run them all (unit, integration with the real models, offline).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check .  # the rule set is in pyproject.toml ([tool.ruff.lint])
# pytest exits 5 when it collects no test: that is a failure here, as any non-zero code is.
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"

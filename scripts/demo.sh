#!/usr/bin/env bash
# Set up, index the sample corpus with the embedded models, and open the assistant.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/assistant ingest corpora
if [ -t 1 ]; then
  exec .venv/bin/assistant
else
  .venv/bin/assistant ask "How long does the K3 take to charge?"
fi

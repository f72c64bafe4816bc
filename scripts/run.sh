#!/usr/bin/env bash
# Set up .venv if needed, then start the app on http://127.0.0.1:7860 with the packaged all-MiniLM-L6-v2 and
# the bundled sample glossary selected (works offline). Extra arguments go to launch.py (--port, --share, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements.txt
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
exec .venv/bin/python launch.py "$@"

#!/usr/bin/env bash
# Set up .venv if needed, then train the packaged all-MiniLM-L6-v2 on the bundled sample glossary (offline).
# Extra arguments go to `python -m embedgui train`, e.g. --resume.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements.txt
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
exec .venv/bin/python -m embedgui train --config assets/config.example.json "$@"

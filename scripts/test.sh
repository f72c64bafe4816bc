#!/usr/bin/env bash
# Set up .venv with the dev requirements, fetch the Debian test data, then run the whole test suite.
# Extra arguments go to pytest, e.g. -k trainer or -m "not slow".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements-dev.txt
bash scripts/fetch_testdata.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
set +e
.venv/bin/python -m pytest -q "$@"
code=$?
set -e
[ $code -eq 5 ] && { echo "pytest collected no tests"; exit 1; }
exit $code

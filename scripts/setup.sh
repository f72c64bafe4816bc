#!/usr/bin/env bash
# Create or refresh the project's virtual environment in .venv. Sourced by scripts/run.sh and scripts/test.sh.
#   $1 = requirements file (requirements.txt or requirements-dev.txt)
# Re-installs only when the requirements file changed since the last successful install (a stamp in .venv).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
req=${1:-requirements.txt}
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($python --version 2>&1)"
  "$python" -m venv .venv
fi
stamp=.venv/.installed-$(basename "$req")
# Hash with Python: sha256sum is not on macOS, where many users run this on an MPS laptop.
want=$("$python" -c 'import hashlib, sys; print(hashlib.sha256(b"".join(open(f, "rb").read() for f in sys.argv[1:])).hexdigest())' requirements.txt "$req" pyproject.toml)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing $req into .venv (first time takes a few minutes)"
  export PIP_DISABLE_PIP_VERSION_CHECK=1
  # torch first, pinned: with no torch installed, an open range would pull a multi-GB CUDA build on Linux.
  # Set EMBEDGUI_TORCH to another spec (e.g. "torch" for your GPU's build) to choose differently.
  if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/pip install -q "${EMBEDGUI_TORCH:-torch==2.13.0}" 2>&1 | grep -v "^WARNING: Location" || true
    .venv/bin/python -c "import torch" 2>/dev/null || { echo "setup: torch failed to install"; exit 1; }
  fi
  .venv/bin/pip install -q -r "$req" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import transformers, sentence_transformers" \
    || { echo "setup: installing $req failed; see the messages above"; exit 1; }
  # the checkout itself, editable: `python -m embedgui` and the `embedgui` command work from any folder. With the
  # venv's own setuptools first (no index needed), else pip fetches a build backend.
  .venv/bin/pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 \
    || .venv/bin/pip install -q --no-deps -e . 2>&1 | grep -v "^WARNING: Location" || true
  root=$(pwd)
  (cd / && "$root/.venv/bin/python" -c "import embedgui.engine.trainer") \
    || { echo "setup: installing the checkout itself (pip install -e .) failed; see the messages above"; exit 1; }
  echo "$want" > "$stamp"
fi

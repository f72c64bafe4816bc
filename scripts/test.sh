#!/usr/bin/env bash
# Set up .venv with the dev requirements, fetch the Debian test data, then run the whole test suite.
# Extra arguments go to pytest, e.g. -k trainer or -m "not slow".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements-dev.txt
bash scripts/fetch_testdata.sh
# The browser test drives Debian's chromium (Playwright cannot download browsers here); Korean needs a font.
if [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/fonts/truetype/nanum ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test: installing chromium and fonts-nanum for the browser test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-nanum) >/dev/null 2>&1 \
      || echo "test: could not install chromium; the browser test will skip"
  else
    echo "test: /usr/bin/chromium is missing (install Debian's chromium package); the browser test will skip"
  fi
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
set +e
.venv/bin/python -m pytest -q "$@"
code=$?
set -e
[ $code -eq 5 ] && { echo "pytest collected no tests"; exit 1; }
exit $code

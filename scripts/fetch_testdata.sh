#!/usr/bin/env bash
# Unpack the Debian packages that tests and benchmarks read real data from, without installing them system-wide:
#   .cache/testdata/<package>/usr/share/...   (python3.11-doc, git-doc, wordnet-base, manpages-dev)
# Safe to run again: a package already unpacked is skipped. Needs apt-get (Debian/Ubuntu); elsewhere the tests
# that need these files skip and say why.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/testdata
mkdir -p "$dest"
command -v apt-get >/dev/null || { echo "fetch_testdata: apt-get not found; data-dependent tests will skip."; exit 0; }
updated=0
for pkg in python3.11-doc git-doc wordnet-base manpages-dev; do
  [ -d "$dest/$pkg/usr" ] && continue
  if [ $updated = 0 ]; then apt-get update -qq >/dev/null 2>&1 || true; updated=1; fi
  tmp=$(mktemp -d)
  if (cd "$tmp" && apt-get download -qq "$pkg" >/dev/null 2>&1); then
    dpkg-deb -x "$tmp"/"$pkg"_*.deb "$dest/$pkg.partial" && mv "$dest/$pkg.partial" "$dest/$pkg"
    echo "fetch_testdata: unpacked $pkg"
  else
    echo "fetch_testdata: could not download $pkg; tests that need it will skip."
  fi
  rm -rf "$tmp"
done

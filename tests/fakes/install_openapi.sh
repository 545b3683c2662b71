#!/usr/bin/env bash
# Installs GitHub's published OpenAPI description (npm package @octokit/openapi, pinned) into
# tests/fakes/.openapi/ (git-ignored), where tests/fakes/github.py looks for it. The fake GitHub
# checks every response it sends against this description. Safe to run again: it does nothing when
# the pinned version is already there.
set -euo pipefail
VERSION=23.0.2
cd "$(dirname "$0")"
DEST=.openapi
PKG=$DEST/node_modules/@octokit/openapi
FILE=$PKG/generated/api.github.com.json

if [ -f "$FILE" ] && grep -q "\"version\": \"$VERSION\"" "$PKG/package.json" 2>/dev/null; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  else
    echo "install_openapi.sh: npm is needed to fetch @octokit/openapi@$VERSION (e.g. apt-get install npm)" >&2
    exit 1
  fi
fi
rm -rf "$DEST"
mkdir -p "$DEST"
npm install --prefix "$DEST" --no-save --no-audit --no-fund --ignore-scripts --loglevel=error "@octokit/openapi@$VERSION"
# The package also carries GHES/GHEC and dereferenced variants (~380 MB); the tests read one file.
find "$PKG/generated" -type f ! -name api.github.com.json -delete
test -f "$FILE"
echo "GitHub OpenAPI description @octokit/openapi@$VERSION installed in tests/fakes/$FILE"

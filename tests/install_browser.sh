#!/usr/bin/env bash
# Installs Debian's Chromium at /usr/bin/chromium, which tests/test_status_page.py drives through
# Playwright for Python (executable_path; Playwright never downloads a browser here). Safe to run
# again: does nothing when /usr/bin/chromium is already there.
set -euo pipefail
BROWSER=/usr/bin/chromium

if [ -x "$BROWSER" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install_browser.sh: $BROWSER is missing; as root run: apt-get update && apt-get install -y chromium" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
test -x "$BROWSER"
echo "install_browser.sh: $("$BROWSER" --version 2>/dev/null || echo chromium) installed at $BROWSER"

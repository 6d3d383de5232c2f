#!/usr/bin/env bash
# Debian's Chromium (and Japanese fonts) for the console's browser tests (tests/e2e/test_console_browser.py).
# Playwright drives /usr/bin/chromium; `playwright install` is never run (no browser downloads).
# axe-core (pinned, from npm) goes to build/axe/ (gitignored); the browser test injects it into every console page
# it visits and fails on any WCAG 2.1 A/AA violation.
# Idempotent: returns at once when everything is installed.
set -euo pipefail
AXE_VERSION=4.14.1
AXE_DIR="$(cd "$(dirname "$0")/.." && pwd)/build/axe"
if [ ! -f "$AXE_DIR/node_modules/axe-core/axe.min.js" ] \
  || ! grep -q "\"version\": \"$AXE_VERSION\"" "$AXE_DIR/node_modules/axe-core/package.json" 2>/dev/null; then
  if command -v npm >/dev/null 2>&1; then
    mkdir -p "$AXE_DIR"
    echo "installing axe-core@$AXE_VERSION from npm into build/axe…" >&2
    npm install --silent --no-audit --no-fund --no-save --prefix "$AXE_DIR" "axe-core@$AXE_VERSION" >/dev/null
  else
    echo "browser-deps: npm not found; the browser test's accessibility check needs axe-core" >&2
  fi
fi
want=(chromium fonts-noto-cjk)
missing=()
for pkg in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "browser-deps: need root to install ${missing[*]} (or install them yourself); browser tests will be skipped" >&2
  exit 0
fi
echo "installing ${missing[*]} from Debian's packages…" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

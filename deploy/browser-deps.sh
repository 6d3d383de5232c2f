#!/usr/bin/env bash
# Debian's Chromium (and Japanese fonts) for the console's browser tests (tests/e2e/test_console_browser.py).
# Playwright drives /usr/bin/chromium; `playwright install` is never run (no browser downloads).
# Idempotent: returns at once when everything is installed.
set -euo pipefail
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
